"""``pivot-spark ingest``: files from any filesystem URI -> ``documents`` + ``quarantine``.

1. **Listing** (driver): one recursive listing of ``ingest.input`` through ``pyarrow.fs`` (:mod:`pivot_spark.io.fs`;
   a path, ``file://``, ``s3://``, ``gs://``, ``hdfs://``, ``abfs://``, ``az://``), sizes and modification times
   included. The listing ``(uri, size, mtime)`` of the files read is part of the run identity. Files whose name
   is no input format, or that ``ingest.exclude`` leaves out, are counted (with an example), not read.
2. **Units** (driver): a file is one unit, except Parquet files over ``ingest.parquet_split_bytes``, which are
   split into row-group ranges (their footers read in parallel). Units are dealt to ``ingest.partitions`` tasks of
   similar byte size.
3. **Reading** (tasks): each task opens its units itself (the storage options travel in the task closure, never
   in a log or the ``runs`` table), maps fields (``ingest.fields`` / ``ingest.format_preset``) and validates every
   record (:func:`pivot_spark.steps.normalize.ingest_units`): a document, a quarantine row with a reason, or a
   skipped record (WARC requests, redirects), never an exception.
4. **Exact dedup** on content hashes, shuffling keys, not texts: the first ``(file, record)`` per hash survives,
   unless the hash is already in the pinned ``documents`` (only its ``content_hash`` column is read). Up to
   ``ingest.dedup_broadcast_rows`` duplicates are removed with a broadcast anti-join, so the rows never move;
   beyond that the rows are semi-joined with the surviving keys.

records in = documents + duplicates + quarantined + skipped; the job asserts it and reports each term.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from pivot_spark.config import REPO_ROOT, PivotConfig
from pivot_spark.io.fs import ListedFile, list_files, location, redact_uri
from pivot_spark.io.readers import Unit, deal_units, plan_units
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.normalize import INGEST_ROW, FieldMap, ingest_units


def resolve_input(uri: str | None) -> str:
    if not uri:
        raise FileNotFoundError("ingest needs an input: --input URI or ingest.input=URI (a file or a folder: a "
                                "path, file://, s3://, gs://, hdfs://, abfs://)")
    if "://" in uri:
        return uri
    p = Path(uri)
    if not p.exists() and not p.is_absolute() and (REPO_ROOT / p).exists():
        p = REPO_ROOT / p  # presets name repository paths (the fixture) relative to the repository
    return str(p)


def default_source(uri: str) -> str:
    """The last path component of the input (``s3://bucket/corpus`` -> ``corpus``)."""
    return uri.split("://", 1)[-1].rstrip("/").rsplit("/", 1)[-1] or "local"


def snapshot_name(cfg: PivotConfig, run_id: str) -> str:
    """``ingest.snapshot`` or ``run.snapshot`` when set; else ``snap-`` and a given run id whole (parts of two
    given ids may be equal), or the hash part of a derived one (``ingest-<hash>``)."""
    if cfg.ingest.snapshot or cfg.run.snapshot:
        return str(cfg.ingest.snapshot or cfg.run.snapshot)
    if cfg.run.run_id:
        return f"snap-{cfg.run.run_id}"
    return f"snap-{run_id.rsplit('-', 1)[-1][:10]}"


def check_snapshot_is_new(ctx: RunContext, snapshot: str) -> None:
    """A snapshot holds the documents of one ingest run: cooccur counts each snapshot once, so documents added
    to a snapshot already counted would never be counted. ValueError when the pinned ``documents`` hold
    documents of another run in ``snapshot`` (only that partition's ``run_id`` column is read)."""
    other = ctx.read_arrow("documents", columns=["run_id"], partition_filters=[("snapshot", "=", snapshot)],
                           filter=pc.field("run_id") != ctx.run_id)
    if other.num_rows:
        raise ValueError(f"snapshot {snapshot!r} already holds the documents of ingest run "
                         f"{other.column(0)[0].as_py()!r}; each ingest writes a snapshot of its own: give this one "
                         "another --snapshot (ingest.snapshot), or none to derive it from the run id")


def _skipped_summary(unknown: list[ListedFile], excluded: list[ListedFile]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, files in (("unknown_format", unknown), ("excluded", excluded)):
        if files:
            exts: dict[str, int] = {}
            for f in files:
                base = f.path.rsplit("/", 1)[-1]
                ext = "." + base.split(".", 1)[1] if "." in base.lstrip(".") else "(none)"
                exts[ext] = exts.get(ext, 0) + 1
            out[name] = {"count": len(files), "example": redact_uri(files[0].uri),
                         "by_extension": dict(sorted(exts.items(), key=lambda kv: (-kv[1], kv[0]))[:10])}
    return out


def ingest(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    ic = cfg.ingest
    src = resolve_input(ic.input)
    options = ic.effective_storage_options(cfg.lake)
    loc = location(src, options)
    listed, excluded = list_files(loc, exclude=ic.exclude)
    units, unknown_idx = plan_units(loc.fs, [(f.path, f.uri, f.size) for f in listed],
                                    forced_format=None if ic.format == "auto" else ic.format,
                                    parquet_split_bytes=ic.parquet_split_bytes)
    unknown_set = set(unknown_idx)
    files = [f for i, f in enumerate(listed) if i not in unknown_set]
    skipped_files = _skipped_summary([listed[i] for i in unknown_idx], excluded)
    if not files:
        raise FileNotFoundError(f"no input files under {redact_uri(src)} (.jsonl, .ndjson, .json, each also "
                                f".gz/.zst/.bz2; .parquet; .txt; .warc, .warc.gz); skipped: {skipped_files}")
    identity = {"input": redact_uri(src), "files": [(f.uri, f.size, f.mtime_ns) for f in files]}
    formats: dict[str, int] = {}
    for u in units:
        if u.row_groups is None or u.row_groups[0] == 0:
            formats[u.fmt] = formats.get(u.fmt, 0) + 1

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        spark = ctx.spark
        snapshot = snapshot_name(cfg, ctx.run_id)
        source_default = ic.source or default_source(src)
        max_bytes, preview = ic.max_text_bytes, ic.raw_preview_chars
        fields = FieldMap.from_config(ic.fields.model_dump())
        n_tasks = ic.partitions or spark.sparkContext.defaultParallelism * 4
        tasks = deal_units(units, n_tasks)
        plan = spark.sparkContext.broadcast(tasks)

        def read(batches):
            from pivot_spark.io.fs import location as task_location

            for b in batches:
                for t in b.column("id").to_pylist():
                    mine: list[Unit] = plan.value[t]
                    if mine:
                        task_fs = task_location(src, options).fs  # the executor opens its files itself
                        yield from ingest_units(task_fs, mine, source_default=source_default,
                                                max_text_bytes=max_bytes, preview_chars=preview, fields=fields)

        # One row per task id and one partition per row: partition t reads exactly the units dealt to task t.
        ids = spark.range(0, len(tasks), 1, numPartitions=len(tasks))
        rows = ids.mapInArrow(read, from_arrow_schema(INGEST_ROW)).persist(StorageLevel.MEMORY_AND_DISK)
        with ctx.describe("read and check the input records"):
            tally = rows.groupBy("kind", "reason").agg(F.count("*").alias("n")).collect()
        kinds: dict[str, int] = {}
        reasons: dict[str, dict[str, int]] = {"quarantine": {}, "skip": {}}
        for r in tally:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + r["n"]
            if r["kind"] in reasons:
                reasons[r["kind"]][r["reason"]] = r["n"]
        n_doc_rows = kinds.get("doc", 0)
        docs = rows.filter(F.col("kind") == "doc")

        # Exact dedup over (content_hash, file_no, record) keys only: the first occurrence per hash, by listing
        # order and record number, unless the lake already has the hash.
        on = ["file_no", "record"]
        keys = docs.select("content_hash", *on)
        first = keys.groupBy("content_hash").agg(F.min(F.struct(*on)).alias("k"))
        existing = ctx.read("documents").select("content_hash")
        keep = (first.join(existing, "content_hash", "left_anti")
                .select(F.col("k.file_no").alias("file_no"), F.col("k.record").alias("record"))
                .persist(StorageLevel.MEMORY_AND_DISK))
        with ctx.describe("drop duplicate texts"):
            n_docs = keep.count()
        n_dups = n_doc_rows - n_docs
        if n_dups == 0:
            new_docs = docs
        elif n_dups <= ic.dedup_broadcast_rows:
            drop = keys.select(*on).join(keep, on, "left_anti")
            new_docs = docs.join(F.broadcast(drop), on, "left_anti")
        else:
            new_docs = docs.join(keep, on, "left_semi")
        new_docs = (new_docs.withColumn("run_id", F.lit(ctx.run_id)).withColumn("snapshot", F.lit(snapshot))
                    .persist(StorageLevel.MEMORY_AND_DISK))
        quarantine = (rows.filter(F.col("kind") == "quarantine")
                      .withColumn("run_id", F.lit(ctx.run_id)).withColumn("snapshot", F.lit(snapshot)))
        n_quarantined = kinds.get("quarantine", 0)
        n_skipped = kinds.get("skip", 0)
        records = sum(kinds.values())
        ctx.counts.update({
            "files": len(files), "units": len(units), "files_by_format": dict(sorted(formats.items())),
            "records": records, "documents": n_docs, "duplicates": n_dups, "quarantined": n_quarantined,
            "quarantine_reasons": dict(sorted(reasons["quarantine"].items())), "snapshot": snapshot,
        })
        if n_skipped:
            ctx.counts.update({"skipped": n_skipped, "skipped_reasons": dict(sorted(reasons["skip"].items()))})
        if skipped_files:
            ctx.counts["skipped_files"] = skipped_files
        if n_docs:
            with ctx.describe("count new documents by source"):
                ctx.counts["documents_by_source"] = {
                    r["source"]: r["n"] for r in new_docs.groupBy("source").agg(F.count("*").alias("n")).collect()}
        if records != n_docs + n_dups + n_quarantined + n_skipped:
            raise AssertionError(f"ingest accounting: {records} records != {n_docs} documents + {n_dups} "
                                 f"duplicates + {n_quarantined} quarantined + {n_skipped} skipped")
        if n_docs:
            check_snapshot_is_new(ctx, snapshot)
        # All Spark work is done before the first commit, so a failure above commits nothing.
        if n_quarantined:
            ctx.write(quarantine, "quarantine", mode="append")
        if n_docs:
            ctx.write(new_docs, "documents", mode="append")
        for df in (rows, keep, new_docs):
            df.unpersist()
        plan.destroy()
        return {}

    return run_job(cfg, "ingest", body, input_tables=("documents",), output_tables=("documents", "quarantine"),
                   identity=identity, quiet=quiet)
