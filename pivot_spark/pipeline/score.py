"""``pivot-spark score``: each document's pivot proportion for a pivot set (the share of its content tokens in
spans of ``pivots.languages`` that are pivots, :func:`pivot_spark.steps.score.score_docs`), written to
``doc_pivot`` (partition ``pivot_set``, recomputed for the set on every run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
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
        docs = (ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
                .select("doc_id", "token_ids", "token_langs")
                .repartition(ctx.spark.sparkContext.defaultParallelism * 4))

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            content, stops = content_and_stops(shipped_path(sp_file), shipped_path(stop_file) if stop_file else None)
            for b in batches:
                yield from score_docs(b, pivot_ids=pivot_ids, content=content, pivot_set=label,
                                      stop_ids=stops, languages=languages).to_batches()

        scored = docs.mapInArrow(run, from_arrow_schema(DOC_PIVOT))
        n = ctx.write(scored, "doc_pivot", mode="overwrite", partition_filters=[("pivot_set", "=", label)])
        return {"pivot_set": label, "documents": n, "pivot_tokens": len(pivot_ids)}

    return run_job(cfg, "score", body, input_tables=("doc_tokens", "pivots"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)
