"""``pivot-spark score``: each document's pivot proportion for a pivot set (the share of its content tokens in
spans of ``pivots.languages`` that are pivots, :func:`pivot_spark.steps.score.score_docs`), written to
``doc_pivot`` (partition ``pivot_set``, recomputed for the set on every run).

On the bridge backend the tasks read the pinned ``doc_tokens`` row groups themselves (``score.direct_read``, as
``cooccur`` does): the token arrays never pass through the JVM, whose heap would otherwise hold a vectorized
reader batch of them (4,096 documents) per task, and need no shuffle to spread the work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.lake.spark import plan_read_units, read_unit_batches
from pivot_spark.pipeline.catalog import CatalogEntry, require_pivot_set, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.pipeline.tasks import ship_file, shipped_path
from pivot_spark.schemas import DOC_PIVOT
from pivot_spark.steps.tokenize import content_and_stops


def score(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    label = require_pivot_set(lake, cfg, "first")

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.score import score_docs

        ctx.catalog = CatalogEntry(tokenizer=tok, pivot_set=label)
        piv = ctx.read_arrow("pivots", partition_filters=[("pivot_set", "=", label)], columns=["token_id"])
        if piv.num_rows == 0:
            raise ValueError(f"pivot set {label} is empty or absent from `pivots`")
        pivot_ids = piv["token_id"].to_numpy()
        languages = list(cfg.pivots.languages)  # positions of these span languages only, as pivots counts them
        sp_file = ship_file(ctx.spark, str(ctx.lake.tokenizer_path(tok)))
        # the stop list travels like the tokenizer (cooccur ships it the same way)
        stop_file = ship_file(ctx.spark, cfg.cooccur.stop_list) if cfg.cooccur.stop_list else None
        columns = ["doc_id", "token_ids", "token_langs"]

        def score_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            content, stops = content_and_stops(shipped_path(sp_file), shipped_path(stop_file) if stop_file else None)
            for b in batches:
                yield from score_docs(b, pivot_ids=pivot_ids, content=content, pivot_set=label,
                                      stop_ids=stops, languages=languages).to_batches()

        sc = ctx.spark.sparkContext
        if ctx.backend == "bridge" and cfg.score.direct_read:
            units = plan_read_units(ctx.lake, "doc_tokens", ctx.pin("doc_tokens"), sc.defaultParallelism * 4)
            uri, so = ctx.lake.table_uri("doc_tokens"), ctx.lake.storage_options

            def read(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                for b in ids:
                    for uid in b.column(0).to_pylist():
                        for rb in read_unit_batches(uri, "doc_tokens", units[uid], ["tokenizer", *columns], so,
                                                    batch_size=1024):
                            yield rb.filter(pc.equal(rb.column(0), tok)).select(columns)

            def run(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                yield from score_batches(read(ids))

            # one row per read unit and one partition per row: partition u reads exactly unit u
            scored = ctx.spark.range(0, max(len(units), 1), 1, numPartitions=max(len(units), 1)).filter(
                F.col("id") < len(units)).mapInArrow(run, from_arrow_schema(DOC_PIVOT))
        else:
            docs = (ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select(*columns)
                    .repartition(sc.defaultParallelism * 4))
            scored = docs.mapInArrow(score_batches, from_arrow_schema(DOC_PIVOT))
        n = ctx.write(scored, "doc_pivot", mode="overwrite", partition_filters=[("pivot_set", "=", label)])
        return {"pivot_set": label, "documents": n, "pivot_tokens": len(pivot_ids)}

    return run_job(cfg, "score", body, input_tables=("doc_tokens", "pivots"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)
