"""An experiment's offline bundle: what its models and report stages read, exported from the lake, and adopted
into a workdir on the machine that reads it (docs/offline-bundle.md).

The bundle (:mod:`pivot_spark.bundle`) holds the arms' ``train_set`` files, the tokenizer, the evaluation data set,
the word-pair counts and, with ``eval.lens_pivots``, the co-occurrence rows touching the lens words and the word
pairs' pivots (``pair_pivots``). Its manifest
carries :func:`experiment.plan.bundle_key`; the models stage refuses a bundle made for other data settings.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from experiment.plan import bundle_key, model_runs
from experiment.recipe import Recipe
from pivot_spark.config import ConfigError

EXPERIMENT = "experiment/"  # bundle-relative folder of the experiment's own files


def experiment_files(work: Path, items: Path, subset: Path | None) -> dict[str, Path]:
    """The experiment's own inputs a bundle carries (bundle-relative path -> file)."""
    out = {f"{EXPERIMENT}dataset/items-v1.jsonl": items,
           f"{EXPERIMENT}dataset/pairs.jsonl": work / "dataset" / "pairs.jsonl",
           f"{EXPERIMENT}facts.json": work / "facts.json"}
    if subset is not None:
        out[f"{EXPERIMENT}dataset/corpus-items.txt"] = subset
    indomain = work / "dataset" / "indomain"
    if (indomain / "manifest.json").exists():
        for name in ("indomain-items.jsonl", "manifest.json", "RULE.txt"):
            out[f"{EXPERIMENT}dataset/indomain/{name}"] = indomain / name
    return out


def export_bundle(r: Recipe, lake: str, storage_options: dict[str, str], *, tokenizer: str | None,
                  items: Path, files: dict[str, Path], out: Path) -> dict[str, Any]:
    """Write the bundle of recipe ``r`` from ``lake`` at ``out`` (the data stage must be done: ``tokenizer`` is
    the one it found, ``items`` its data set) and return its manifest; refused over ``bundle.max_mib``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pivot_spark.bundle import Trimmed, export
    from pivot_spark.lake.reader import open_reader

    if not tokenizer:
        raise ValueError("the data stage's facts name no tokenizer: run the data stage first")
    reader = open_reader(lake, storage_options=storage_options)
    e = r.eval
    trimmed = {"pair_cooccurrence": Trimmed(pc.field("window") == e.behaviour_window,
                                            ["pair_id", "window", "count", "doc_count", "tokenizer"],
                                            f"behaviours: the word pairs' counts at window {e.behaviour_window}")}
    counts: list[str] = []
    if e.lens_pivots:
        from evaluation.dataset import read_items
        from evaluation.logit_lens import lens_word_ids
        from pivot_spark.steps.tokenize import hf_tokenizer

        lens_items = read_items(items)[:e.lens_items]
        hf = hf_tokenizer(str(reader.tokenizer_path(tokenizer)))
        ids = pa.array(sorted({i for v in lens_word_ids(hf, lens_items).values() for i in v}), pa.int32())
        near = pc.field("token_a").isin(ids) | pc.field("token_b").isin(ids)
        trimmed["cooccurrence"] = Trimmed(
            near & (pc.field("tokenizer") == tokenizer) & (pc.field("window") == e.lens_window),
            ["token_a", "token_b", "lang_a", "lang_b", "window", "count", "doc_count", "tokenizer"],
            f"logit lens: rows touching the {len(ids)} token ids of the first {len(lens_items)} items' words, "
            f"window {e.lens_window}")
        trimmed["token_stats"] = Trimmed(pc.field("tokenizer") == tokenizer,
                                         ["token_id", "lang", "count", "doc_count", "tokenizer"],
                                         "logit lens: document frequencies of the tokenizer's tokens")
        counts.append("doc_tokens")
        try:
            reader.version("pair_pivots")
        except FileNotFoundError:
            pass  # a lake from before pair-pivots: the lens computes the pivots from the rows above
        else:
            trimmed["pair_pivots"] = Trimmed(
                (pc.field("tokenizer") == tokenizer) & (pc.field("window") == e.lens_window),
                ["pair_id", "token_id", "rank", "window", "tokenizer"],
                f"logit lens: the word pairs' pivots (pivot-spark pair-pivots), window {e.lens_window}")
    max_bytes = None if r.bundle.max_mib is None else int(r.bundle.max_mib * 2**20)
    return export(reader, out, train=[(m.selection, m.arm) for m in model_runs(r)], trimmed=trimmed,
                  counts=counts, tokenizers=[tokenizer], files=files,
                  meta={"recipe": r.name, "bundle_key": bundle_key(r)}, max_bytes=max_bytes)


def adopt_bundle(r: Recipe, uri: str, work: Path) -> None:
    """On the machine with the bundle: check that it fits recipe ``r`` and is intact, and make its data set and
    facts the workdir's (once)."""
    from pivot_spark.bundle import Bundle

    b = Bundle.open(uri)
    meta = b.manifest.get("meta", {})
    if meta.get("bundle_key") != bundle_key(r):
        raise ConfigError(f"bundle {b.root} was made for recipe {meta.get('recipe')!r} with other data settings "
                          f"(key {meta.get('bundle_key')}, this recipe {bundle_key(r)}): export it again with this "
                          "recipe")
    problems = b.verify()
    if problems:
        raise ValueError(f"bundle {b.root} is damaged: " + "; ".join(problems[:5]))
    for rel in b.manifest["files"]:
        if rel.startswith(EXPERIMENT):
            dst = work / rel.removeprefix(EXPERIMENT)
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(b.root / rel, dst)

