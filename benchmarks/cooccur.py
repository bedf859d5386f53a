"""Benchmark: the Spark ``cooccur`` job against the straightforward Spark formulation, on the same documents.

    .venv/bin/python benchmarks/cooccur.py [--corpus data/corpus] [--mb 5] [--workdir .cache/benchmarks]

1. Annotated documents: ``--mb`` MB of the corpus build ingested, a tokenizer trained and the ``annotate`` job
   run on them (the set-up of ``benchmarks/annotate.py``, cached in the same work folder; ``--mb 20`` counts
   exactly the documents the annotate benchmark annotates). The default is 5 MB (about 1.2 M tokens) so that
   both formulations finish within minutes on a 2-core machine: the naive one grows with the number of
   candidate pairs, nine per content token at window 10.
2. The job: ``cooccur`` (window ``--window``, the ``local`` preset's ``min_count``) on a fresh lake holding a copy
   of ``doc_tokens``: vectorized numpy counting inside each task, partial counts merged before the shuffle, a
   groupBy-sum, the ``min_count`` prune and the Delta writes of ``cooccurrence`` and ``token_stats``.
3. The naive formulation, in plain DataFrame operations: ``posexplode`` every (position, token, language),
   keep content tokens (the job's content mask and stop list, a broadcast join), self-join each position with
   the ones ``1..W-1`` after it in the same document (an equi-join on the exploded target position: the
   range join ``b.pos BETWEEN a.pos+1 AND a.pos+W-1`` would compare every pair of positions of a document),
   drop equal tokens, order each pair, ``groupBy(...).agg(count, countDistinct(doc_id))``, prune by
   ``min_count`` and write the result as Parquet.
4. Both in one SparkSession on ``local[2]`` (the job first, so any JVM warm-up favours the naive run), each timed
   from its first Spark call to its last write. Shuffle bytes come from the Spark UI's REST API (the session runs
   with ``spark.ui.enabled=true``): the sum of ``shuffleWriteBytes`` over the stages each run completed.
5. Checks that every pruned pair row (snapshot, tokens, languages, count, doc_count) is identical in both.

Pairs per second per core = the pair occurrences counted (the job's ``pair_occurrences``, the same for both:
same documents, same window) / wall / 2. Last line: ``RESULT cooccur_speedup_vs_naive <naive wall / job wall>``
(target >= 5).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    shuffle_write_bytes,
    stop_session,
)

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.annotate import annotate
from pivot_spark.pipeline.cooccur import cooccur
from pivot_spark.steps.cooccur import keep_mask
from pivot_spark.steps.tokenize import content_and_stops

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

CORES = 2
KEYS = ["snapshot", "token_a", "token_b", "lang_a", "lang_b"]


def annotated_lake(workdir: Path, corpus: Path, mb: float, vocab: int, tokenizer: str | None) -> tuple[Path, Path]:
    """``doc_tokens`` of the benchmark corpus from the project's annotate job (cached); returns lake, model."""
    base, model = base_lake(workdir, corpus, mb, vocab, tokenizer)
    lake, marker = base.with_name(f"annotated-{base.name}"), base.with_name(f"annotated-{base.name}.json")
    key = json.loads(base.with_name(f"{base.name}.json").read_text())
    if marker.exists() and json.loads(marker.read_text()) == key:
        return lake, model
    clone_tables(base, lake, ["documents"])
    cfg = bench_config(lake, f"local[{CORES}]", f"tokenizer.model_path={model}")
    fresh_session(cfg)
    t0 = time.perf_counter()
    res = annotate(cfg, quiet=True)
    log(f"annotate: {res['counts']['documents']} documents, {res['counts']['tokens']} tokens "
        f"({time.perf_counter() - t0:.0f} s)")
    stop_session()
    marker.write_text(json.dumps(key))
    return lake, model


def naive_pairs(spark: SparkSession, cfg: PivotConfig, model: Path, window: int) -> DataFrame:
    """The textbook DataFrame formulation of :func:`pivot_spark.pipeline.cooccur.cooccur`'s pair counts."""
    from pyspark.sql import functions as F

    from pivot_spark.lake.spark import read_table

    lake = Lake(cfg.lake.uri)
    content, stops = content_and_stops(str(model), cfg.cooccur.stop_list)
    keep = spark.createDataFrame([(int(i),) for i in keep_mask(content, stops).nonzero()[0]], "tok int")
    docs = read_table(spark, lake, "doc_tokens").select("doc_id", "snapshot", "token_ids", "token_langs")
    pos = (docs.select("doc_id", "snapshot", F.posexplode(F.arrays_zip("token_ids", "token_langs")))
           .select("doc_id", "snapshot", "pos", F.col("col.token_ids").alias("tok"),
                   F.col("col.token_langs").alias("lang")))
    if cfg.cooccur.max_doc_tokens:
        pos = pos.filter(F.col("pos") < cfg.cooccur.max_doc_tokens)
    pos = pos.join(F.broadcast(keep), "tok")
    a = (pos.withColumn("d", F.explode(F.sequence(F.lit(1), F.lit(window - 1))))
         .select("doc_id", "snapshot", (F.col("pos") + F.col("d")).alias("pos"),
                 F.col("tok").alias("tok_1"), F.col("lang").alias("lang_1")))
    b = pos.select("doc_id", "pos", F.col("tok").alias("tok_2"), F.col("lang").alias("lang_2"))
    pairs = a.join(b, ["doc_id", "pos"]).filter(F.col("tok_1") != F.col("tok_2"))
    first = F.col("tok_1") < F.col("tok_2")
    pairs = pairs.select(
        "doc_id", "snapshot",
        F.least("tok_1", "tok_2").alias("token_a"), F.greatest("tok_1", "tok_2").alias("token_b"),
        F.when(first, F.col("lang_1")).otherwise(F.col("lang_2")).alias("lang_a"),
        F.when(first, F.col("lang_2")).otherwise(F.col("lang_1")).alias("lang_b"))
    return (pairs.groupBy(*KEYS).agg(F.count("*").alias("count"), F.countDistinct("doc_id").alias("doc_count"))
            .filter(F.col("count") >= cfg.cooccur.min_count))


def measured(spark: SparkSession, fn: Any) -> dict[str, Any]:
    shuffle0, c0, t0 = shuffle_write_bytes(spark), cpu_seconds(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"wall": wall, "cpu": cpu, "shuffle": shuffle_write_bytes(spark) - shuffle0, "out": out}


def compare(spark: SparkSession, lake: Path, naive_dir: Path, window: int) -> tuple[int, int, int]:
    """(job rows, naive rows, rows that differ) of the pruned pair counts."""
    from pyspark.sql import functions as F

    from pivot_spark.lake.spark import read_table

    job = (read_table(spark, Lake(str(lake)), "cooccurrence").filter(F.col("window") == window)
           .select(*KEYS, F.col("count").alias("c1"), F.col("doc_count").alias("d1")))
    naive = spark.read.parquet(str(naive_dir)).select(*KEYS, F.col("count").alias("c2"),
                                                      F.col("doc_count").alias("d2"))
    both = job.join(naive, KEYS, "full_outer")
    differ = both.filter(~(F.col("c1").eqNullSafe(F.col("c2")) & F.col("d1").eqNullSafe(F.col("d2")))).count()
    return job.count(), naive.count(), differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus build (JSON Lines shards)")
    ap.add_argument("--mb", type=float, default=5.0, help="MB of document text")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch lakes and caches")
    ap.add_argument("--vocab", type=int, default=32000, help="tokenizer vocabulary (the local preset's)")
    ap.add_argument("--tokenizer", help="an existing SentencePiece BPE model instead of training one")
    ap.add_argument("--window", type=int, default=10, help="co-occurrence window in tokens")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    log(machine_line())

    src, model = annotated_lake(args.workdir, args.corpus, args.mb, args.vocab, args.tokenizer)
    lake = args.workdir / "cooccur-lake"
    clone_tables(src, lake, ["doc_tokens"])
    cfg = bench_config(lake, f"local[{CORES}]", f"tokenizer.model_path={model}",
                       f"cooccur.windows=[{args.window}]", ui=True)
    spark, startup = fresh_session(cfg)
    log(f"session local[{CORES}] up in {startup:.1f} s (not counted)")
    n_tokens = Lake(str(lake)).read_arrow("doc_tokens", columns=["n_tokens"])["n_tokens"].to_numpy().sum()

    log("cooccur job ...")
    job = measured(spark, lambda: cooccur(cfg, quiet=True))
    res = job["out"]
    if res["status"] != "ok":
        raise RuntimeError(f"cooccur on {lake} did not run: {res['status']}")
    pair_occ = res["counts"]["pair_occurrences"][str(args.window)]
    log(f"job: {pair_occ} pair occurrences, {res['counts']['cooccurrence_rows']} rows kept, "
        f"{job['wall']:.1f} s")

    log("naive DataFrame formulation ...")
    naive_dir = args.workdir / "cooccur-naive"
    naive = measured(spark, lambda: naive_pairs(spark, cfg, model, args.window)
                     .write.mode("overwrite").parquet(str(naive_dir)))
    log(f"naive: {naive['wall']:.1f} s")
    job_rows, naive_rows, differ = compare(spark, lake, naive_dir, args.window)
    stop_session()
    if differ:
        raise SystemExit(f"the job and the naive formulation disagree on {differ} rows "
                         f"(job {job_rows}, naive {naive_rows})")

    print()
    print(machine_line())
    print(f"input: {n_tokens} tokens, window {args.window}, min_count {cfg.cooccur.min_count}; "
          f"{pair_occ} pair occurrences; {job_rows} pair rows kept")
    print(f"identical output: all {job_rows} pruned rows (tokens, languages, count, doc_count) agree")
    for name, r in (("cooccur job", job), ("naive      ", naive)):
        print(f"{name}: {pair_occ / r['wall'] / CORES:12.0f} pairs/s per core  (wall {r['wall']:.1f} s on "
              f"local[{CORES}], {r['cpu']:.1f} CPU s); shuffle {r['shuffle'] / 1e6:.1f} MB = "
              f"{r['shuffle'] / n_tokens:.2f} bytes per input token")
    print(f"CPU ratio naive / job: {naive['cpu'] / job['cpu']:.2f} (less sensitive to other load than wall time)")
    print(f"RESULT cooccur_speedup_vs_naive {naive['wall'] / job['wall']:.2f}")


if __name__ == "__main__":
    main()
