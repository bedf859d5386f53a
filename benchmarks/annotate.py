"""Benchmark: the Spark ``annotate`` job against a plain single-process loop doing the same work.

    .venv/bin/python benchmarks/annotate.py [--corpus data/corpus] [--mb 20] [--workdir .cache/benchmarks]

1. Takes ``--mb`` MB of document text from the corpus build (round-robin over its shards, so every source and
   language in it contributes), ingests it into a scratch lake and trains the tokenizer with the project's
   ``train-tokenizer`` job (or uses ``--tokenizer FILE``). Both are cached in the work folder.
2. Plain loop: one Python process reads ``documents`` with delta-rs, calls
   :func:`pivot_spark.steps.annotate.annotate_batch` (the function the Spark tasks call: the same fastText and
   SentencePiece code) batch after batch, and writes ``doc_lang`` and ``doc_tokens`` with delta-rs: the job's
   whole work (read, annotate, write), in the simplest single-core form.
3. Spark: the ``annotate`` job on a fresh copy of the lake, once with master ``local[1]`` and once with
   ``local[2]``, each in a new SparkSession. The timer starts after the session is up (start-up and a warm-up
   job excluded) and covers the whole ``annotate(cfg)`` call: planning, the Spark job, the Delta commits and the
   ``runs`` row.
4. Checks that Spark and the plain loop produced the same rows (doc ids, languages, token ids).

Per-core throughput: Spark ``docs / wall / N`` for ``local[N]``, plain ``docs / wall``. Last line:
``RESULT annotate_spark_vs_plain <Spark local[2] per-core docs/s / plain docs/s>`` (target >= 0.75).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_CORPUS,
    DEFAULT_WORKDIR,
    base_lake,
    bench_config,
    clone_tables,
    cpu_seconds,
    fresh_session,
    log,
    machine_line,
    stop_session,
)

from pivot_spark import artifacts
from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.annotate import annotate, lid_path

PLAIN_BATCH = 2000  # rows per annotate_batch call: the session's spark.sql.execution.arrow.maxRecordsPerBatch


def plain_loop(src: Path, out: Path, model: Path, cfg: PivotConfig) -> dict[str, Any]:
    """Read, annotate and write in one process, one core, no Spark."""
    import pyarrow as pa

    from pivot_spark.schemas import DOC_LANG, DOC_TOKENS
    from pivot_spark.steps.annotate import annotate_batch

    clone_tables(src, out, [])
    tok_hash = artifacts.file_hash(model)
    t0, c0 = time.perf_counter(), cpu_seconds()
    dataset = Lake(str(src)).delta("documents").to_pyarrow_dataset()
    lang_parts, token_parts = [], []
    n_docs = 0
    busy = 0.0
    for batch in dataset.to_batches(columns=["doc_id", "text", "snapshot"], batch_size=PLAIN_BATCH):
        t = time.perf_counter()
        lang, tokens, _counts = annotate_batch(batch, lid_path=lid_path(cfg), sp_path=str(model),
                                               tok_hash=tok_hash, cfg=cfg.langid)
        busy += time.perf_counter() - t
        lang_parts.append(lang)
        token_parts.append(tokens)
        n_docs += lang.num_rows
    t = time.perf_counter()
    lake = Lake(str(out))
    lake.write_arrow("doc_lang", pa.Table.from_batches(lang_parts, DOC_LANG), mode="append", app_id="plain")
    lake.write_arrow("doc_tokens", pa.Table.from_batches(token_parts, DOC_TOKENS), mode="append", app_id="plain")
    end = time.perf_counter()
    return {"docs": n_docs, "wall": end - t0, "cpu": cpu_seconds() - c0, "annotate": busy, "write": end - t}


def spark_run(src: Path, lake: Path, model: Path, master: str) -> dict[str, Any]:
    """The annotate job on a fresh copy of ``documents``, in a new session with ``master``."""
    clone_tables(src, lake, ["documents"])
    cfg = bench_config(lake, master, f"tokenizer.model_path={model}")
    _spark, startup = fresh_session(cfg)
    t0, c0 = time.perf_counter(), cpu_seconds()
    res = annotate(cfg, quiet=True)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    stop_session()
    if res["status"] != "ok":
        raise RuntimeError(f"annotate on {lake} did not run: {res['status']}")
    return {"docs": res["counts"]["documents"], "tokens": res["counts"]["tokens"], "wall": wall, "cpu": cpu,
            "startup": startup, "langs": res["counts"]["docs_by_lang"]}


def same_rows(a: Path, b: Path) -> tuple[int, int]:
    """(rows compared, rows that differ) between two lakes' doc_lang + doc_tokens, matched on doc_id."""
    def load(lake: Path) -> dict[str, Any]:
        lk = Lake(str(lake))
        tokens = lk.read_arrow("doc_tokens", columns=["doc_id", "token_ids", "token_langs"]).sort_by("doc_id")
        langs = lk.read_arrow("doc_lang", columns=["doc_id", "lang"]).sort_by("doc_id")
        if tokens["doc_id"] != langs["doc_id"]:
            raise SystemExit(f"{lake}: doc_lang and doc_tokens hold different documents")
        return {"doc_id": tokens["doc_id"], "token_ids": tokens["token_ids"],
                "token_langs": tokens["token_langs"], "lang": langs["lang"]}

    ta, tb = load(a), load(b)
    n = len(ta["doc_id"])
    if ta["doc_id"] != tb["doc_id"]:
        return max(n, len(tb["doc_id"])), max(n, len(tb["doc_id"]))
    differ = 0
    for col in ("token_ids", "token_langs", "lang"):
        x, y = ta[col].to_pylist(), tb[col].to_pylist()
        differ = max(differ, sum(u != v for u, v in zip(x, y, strict=True)))
    return n, differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus build (JSON Lines shards)")
    ap.add_argument("--mb", type=float, default=20.0, help="MB of document text to annotate")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch lakes and caches")
    ap.add_argument("--vocab", type=int, default=32000, help="tokenizer vocabulary (the local preset's)")
    ap.add_argument("--tokenizer", help="an existing SentencePiece BPE model instead of training one")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    log(machine_line())

    base, model = base_lake(args.workdir, args.corpus, args.mb, args.vocab, args.tokenizer)
    log("plain loop (one process, no Spark) ...")
    plain = plain_loop(base, args.workdir / "annotate-plain", model, bench_config(base, "local[1]"))
    log(f"plain: {plain['docs']} docs in {plain['wall']:.1f} s (annotate_batch {plain['annotate']:.1f} s, "
        f"Delta writes {plain['write']:.1f} s)")
    runs: dict[int, dict[str, Any]] = {}
    for cores in (1, 2):
        log(f"Spark annotate job on local[{cores}] ...")
        runs[cores] = spark_run(base, args.workdir / f"annotate-local{cores}", model, f"local[{cores}]")
        log(f"local[{cores}]: {runs[cores]['docs']} docs in {runs[cores]['wall']:.1f} s "
            f"(session start-up {runs[cores]['startup']:.1f} s, not counted)")
    compared, differ = same_rows(args.workdir / "annotate-plain", args.workdir / "annotate-local2")
    if differ:
        raise SystemExit(f"Spark and the plain loop disagree on {differ} of {compared} documents")

    plain_rate = plain["docs"] / plain["wall"]
    per_core = {c: r["docs"] / r["wall"] / c for c, r in runs.items()}
    scaling = (runs[2]["docs"] / runs[2]["wall"]) / (runs[1]["docs"] / runs[1]["wall"])
    print()
    print(machine_line())
    print(f"documents: {runs[2]['docs']} ({runs[2]['tokens']} tokens); languages: {runs[2]['langs']}")
    print(f"identical output: Spark local[2] and the plain loop agree on all {compared} documents "
          "(languages, token ids, token languages)")
    print(f"plain loop      : {plain_rate:8.1f} docs/s per core  (wall {plain['wall']:.1f} s, 1 core; "
          f"{plain['cpu']:.1f} CPU s, {plain['docs'] / plain['cpu']:.1f} docs per CPU s)")
    for c, r in runs.items():
        print(f"Spark local[{c}] : {per_core[c]:8.1f} docs/s per core  (wall {r['wall']:.1f} s, {c} cores, "
              f"{r['docs'] / r['wall']:.1f} docs/s in all; {r['cpu']:.1f} CPU s, "
              f"{r['docs'] / r['cpu']:.1f} docs per CPU s; session start-up {r['startup']:.1f} s excluded)")
    print(f"scaling local[1] -> local[2]: {scaling:.2f}x")
    print(f"Spark per core / plain at local[1]: {per_core[1] / plain_rate:.3f}")
    print(f"CPU efficiency (docs per CPU s), Spark local[2] / plain: "
          f"{(runs[2]['docs'] / runs[2]['cpu']) / (plain['docs'] / plain['cpu']):.3f} "
          "(less sensitive to other load than wall time)")
    print(f"RESULT annotate_spark_vs_plain {per_core[2] / plain_rate:.3f}")


if __name__ == "__main__":
    main()
