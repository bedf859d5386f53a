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
from pivot_spark.lake.spark import map_read_units
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

        if ctx.backend == "bridge" and cfg.score.direct_read:
            def of_tokenizer(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                return score_batches(rb.filter(pc.equal(rb.column(0), tok)).select(columns) for rb in batches)

            scored = map_read_units(ctx.spark, ctx.lake, "doc_tokens", ctx.pin("doc_tokens"), of_tokenizer,
                                    from_arrow_schema(DOC_PIVOT), columns=["tokenizer", *columns], batch_size=1024)
        else:
            docs = (ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select(*columns)
                    .repartition(ctx.spark.sparkContext.defaultParallelism * 4))
            scored = docs.mapInArrow(score_batches, from_arrow_schema(DOC_PIVOT))
        n = ctx.write(scored, "doc_pivot", mode="overwrite", partition_filters=[("pivot_set", "=", label)])
        return {"pivot_set": label, "documents": n, "pivot_tokens": len(pivot_ids)}

    return run_job(cfg, "score", body, input_tables=("doc_tokens", "pivots"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)
