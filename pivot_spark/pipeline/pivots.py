"""``pivot-spark pivots``: the semantic pivot set, the hub tokens of the cross-lingual co-occurrence graph of one
window (counts summed over snapshots), written to ``pivots`` under its label (partition ``pivot_set``).

The graph is read at the pinned versions and summed by (token, language) pair, by delta-rs on the driver with the
bridge backend (a large window's graph exceeds what Spark may return to the driver) or by a Spark aggregation with
the native backend; the ranking itself (:func:`pivot_spark.steps.pivots.build_pivots`) is a global computation on
the driver.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark import models
from pivot_spark.config import PivotConfig, PivotsConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import PIVOTS_JOB, CatalogEntry, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.tokenize import content_and_stops, vocab_pieces

INPUTS = ("cooccurrence", "token_stats", "doc_tokens", "doc_lang")
PAIR_KEYS = ["token_a", "token_b", "lang_a", "lang_b"]


@dataclass(frozen=True)
class Graph:
    """The summed co-occurrence graph of one window and what the association scores need besides it."""

    cooc: pa.Table  # PAIR_KEYS, count, doc_count
    stats: pa.Table  # token_id, lang, count, doc_count (token_stats summed over snapshots)
    n_docs: int  # documents of the tokenizer
    docs_by_lang: dict[str, int]


def pivots(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    pc_ = cfg.pivots
    pins = {t: lake.version(t) for t in INPUTS}
    label = pc_.pivot_set or "ps-" + hashlib.sha256(
        json.dumps({"cfg": pc_.model_dump(mode="json"), "pins": pins, "tok": tok}, sort_keys=True).encode()
    ).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pivot_spark.steps.pivots import build_pivots

        ctx.catalog = CatalogEntry(tokenizer=tok, pivot_set=label)
        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        content, stops = content_and_stops(sp_path, cfg.cooccur.stop_list)
        graph = _graph_delta_rs(ctx, tok, pc_) if ctx.backend == "bridge" else _graph_spark(ctx, tok, pc_)
        # Pivot discovery is a global ranking over the summed graph of one window, on the driver. Sorted, so
        # float sums run in one order whatever the partitioning: a cluster and local mode give identical scores.
        cooc_pd = graph.cooc.to_pandas().sort_values(PAIR_KEYS).reset_index(drop=True)
        stats_pd = graph.stats.to_pandas().sort_values(["token_id", "lang"]).reset_index(drop=True)
        if cooc_pd.empty:
            raise ValueError(f"no co-occurrence counts for window {pc_.window}: run `pivot-spark cooccur` with "
                             f"cooccur.windows including {pc_.window}")
        res = build_pivots(cooc_pd, stats_pd, n_docs=graph.n_docs, pieces=vocab_pieces(sp_path).tolist(),
                           content=content, cfg=pc_, pivot_set=label, tokenizer=tok, stop_ids=stops,
                           docs_by_lang=graph.docs_by_lang)
        table = pa.Table.from_pandas(res.pivots, preserve_index=False)
        ctx.write_arrow(table, "pivots", mode="overwrite", predicate=f"pivot_set = '{label}'")
        top = res.pivots.head(20)
        return {"pivot_set": label, "tokenizer": tok, "window": pc_.window, "pivots": len(res.pivots),
                "graph_edges": len(cooc_pd), "documents": graph.n_docs, "dropped": res.dropped(),
                "top20": " ".join(top["piece"].tolist())}

    return run_job(cfg, PIVOTS_JOB, body, input_tables=INPUTS, identity={"pivot_set": label}, quiet=quiet)


def _graph_delta_rs(ctx: RunContext, tok: str, pc_: PivotsConfig) -> Graph:
    """Bridge backend: driver-side reads of the pinned versions with delta-rs, so the graph never passes through
    the JVM; same-language rows are dropped at read time when only cross-lingual edges count."""
    from pivot_spark.steps.cooccur import sum_counts

    flt = (pc.field("tokenizer") == tok) & (pc.field("window") == pc_.window)
    if pc_.cross_lingual_only:  # the association step drops same-language rows anyway
        flt = flt & (pc.field("lang_a") != pc.field("lang_b"))
    cooc = sum_counts([ctx.read_arrow("cooccurrence", columns=[*PAIR_KEYS, "count", "doc_count"], filter=flt)],
                      PAIR_KEYS)
    stats = sum_counts([ctx.read_arrow("token_stats", columns=["token_id", "lang", "count", "doc_count"],
                                       filter=pc.field("tokenizer") == tok)], ["token_id", "lang"])
    n_docs = ctx.read_arrow("doc_tokens", columns=["tokenizer"], filter=pc.field("tokenizer") == tok).num_rows
    langs = ctx.read_arrow("doc_lang", columns=["lang"])["lang"].value_counts().to_pylist()
    return Graph(cooc, stats, n_docs, {str(d["values"]): int(d["counts"]) for d in langs})


def _graph_spark(ctx: RunContext, tok: str, pc_: PivotsConfig) -> Graph:
    """Native backend: Spark sums the graph of the pinned versions; the sums come to the driver as Arrow."""
    from pyspark.sql import functions as F

    cooc_df = ctx.read("cooccurrence").filter((F.col("tokenizer") == tok) & (F.col("window") == pc_.window))
    if pc_.cross_lingual_only:
        cooc_df = cooc_df.filter(F.col("lang_a") != F.col("lang_b"))
    cooc = (cooc_df.groupBy(*PAIR_KEYS).agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count"))
            .toArrow())
    stats = (ctx.read("token_stats").filter(F.col("tokenizer") == tok).groupBy("token_id", "lang")
             .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count")).toArrow())
    n_docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).count()
    docs_by_lang = {r["lang"]: int(r["count"]) for r in ctx.read("doc_lang").groupBy("lang").count().collect()}
    return Graph(cooc, stats, n_docs, docs_by_lang)
