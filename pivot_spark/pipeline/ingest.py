"""``pivot-spark ingest``: local files -> ``documents`` + ``quarantine``.

Files are the unit of parallelism (a compressed JSON Lines shard cannot be split). Each task reads its files with
:func:`pivot_spark.steps.normalize.ingest_files`, so every record comes out as a document or a quarantine row.
Exact duplicates (same content hash) within the input and against the pinned ``documents`` are dropped and counted:
records in = documents + duplicates + quarantined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pivot_spark.config import REPO_ROOT, PivotConfig
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.normalize import INGEST_ROW, ingest_files, list_input_files


def resolve_input(path: str | None) -> str:
    if not path:
        raise FileNotFoundError("ingest needs an input: --input PATH or ingest.input=PATH (a file or a folder)")
    p = Path(path)
    if not p.exists() and not p.is_absolute() and (REPO_ROOT / p).exists():
        p = REPO_ROOT / p  # presets name repository paths (the fixture) relative to the repository
    return str(p)


def snapshot_name(cfg: PivotConfig, run_id: str) -> str:
    return cfg.ingest.snapshot or cfg.run.snapshot or f"snap-{run_id.rsplit('-', 1)[-1][:10]}"


def ingest(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    src = resolve_input(cfg.ingest.input)
    files = list_input_files(src)
    identity = {"input": src, "files": files}

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        spark = ctx.spark
        snapshot = snapshot_name(cfg, ctx.run_id)
        source_default = Path(src).name or "local"
        max_bytes, preview = cfg.ingest.max_text_bytes, cfg.ingest.raw_preview_chars
        n_tasks = max(1, min(len(files), spark.sparkContext.defaultParallelism * 4))
        listing = spark.createDataFrame([(i, f[0]) for i, f in enumerate(files)], "i long, path string")
        listing = listing.repartitionByRange(n_tasks, "i")

        def read(batches):
            for b in batches:
                yield from ingest_files(b.column("path").to_pylist(), source_default=source_default,
                                        max_text_bytes=max_bytes, preview_chars=preview)

        from pyspark.sql.pandas.types import from_arrow_schema

        rows = listing.mapInArrow(read, from_arrow_schema(INGEST_ROW)).persist(StorageLevel.MEMORY_AND_DISK)
        kinds = {r["kind"]: r["n"] for r in rows.groupBy("kind").agg(F.count("*").alias("n")).collect()}
        docs = rows.filter(F.col("kind") == "doc")
        # Exact duplicates: keep the first occurrence by (file, record) within this input ...
        w = Window.partitionBy("content_hash").orderBy("file", "record")
        docs = docs.withColumn("_n", F.row_number().over(w)).filter("_n = 1").drop("_n")
        # ... and drop those already in the lake.
        existing = ctx.read("documents").select("content_hash")
        docs = docs.join(existing, "content_hash", "left_anti")
        docs = (docs.withColumn("run_id", F.lit(ctx.run_id)).withColumn("snapshot", F.lit(snapshot))
                .persist(StorageLevel.MEMORY_AND_DISK))
        n_docs = docs.count()
        quarantine = (rows.filter(F.col("kind") == "quarantine")
                      .withColumn("run_id", F.lit(ctx.run_id)).withColumn("snapshot", F.lit(snapshot)))
        by_reason = {r["reason"]: r["n"] for r in
                     quarantine.groupBy("reason").agg(F.count("*").alias("n")).collect()}
        n_quarantined = sum(by_reason.values())
        records = sum(kinds.values())
        ctx.counts.update({
            "files": len(files), "records": records, "documents": n_docs,
            "duplicates": kinds.get("doc", 0) - n_docs, "quarantined": n_quarantined,
            "quarantine_reasons": by_reason, "snapshot": snapshot,
        })
        if n_docs:
            ctx.counts["documents_by_source"] = {
                r["source"]: r["n"] for r in docs.groupBy("source").agg(F.count("*").alias("n")).collect()}
        assert records == n_docs + ctx.counts["duplicates"] + n_quarantined
        # All Spark work is done before the first commit, so a failure above commits nothing.
        if n_quarantined:
            ctx.write(quarantine, "quarantine", mode="append")
        if n_docs:
            ctx.write(docs, "documents", mode="append")
        rows.unpersist()
        docs.unpersist()
        return {}

    return run_job(cfg, "ingest", body, input_tables=("documents",), output_tables=("documents", "quarantine"),
                   identity=identity, quiet=quiet)
