"""``pivot-spark pivots``: the semantic pivot set, the hub tokens of the cross-lingual co-occurrence graph of one
window (counts summed over snapshots), written to ``pivots`` under its label (partition ``pivot_set``).

The ranking of the pandas reference :func:`pivot_spark.steps.pivots.build_pivots`, as Spark aggregations over the
pinned ``cooccurrence`` and ``token_stats`` (both backends read them through :meth:`RunContext.read`):

- Only the rows of the span languages ``pivots.languages`` are read (never ``zxx``, code and markup).
- ``token_stats`` summed per (token, language) and per token give the count filters (``rare``,
  ``too_frequent``, ``function_word`` with each language's document count); the piece filters (``not_content``,
  ``no_letters``, ``piece_too_short``) are one table of the vocabulary, made on the driver and broadcast.
- The edges, summed per (token, language) pair, get their two nodes' marginals by joins; the association is
  computed per Arrow batch by :func:`~pivot_spark.steps.pivots.association_values`, element-wise, so exactly as
  the reference computes it.
- Each token's strong edges are brought together (a shuffle by token), sorted in the reference's canonical order
  and summed per token by :func:`~pivot_spark.steps.pivots.hub_stats`: the floating-point sums run in one
  order whatever the partitioning, so the scores are the reference's to the last bit.
- Only the ``top_k`` pivots, the drop-reason counts and a few totals come to the driver.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pivot_spark.config import PivotConfig, PivotsConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import PIVOTS_JOB, CatalogEntry, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.pivots import (
    HALF_COLUMNS,
    MARGINAL,
    PAIR_KEYS,
    PIVOT_COLUMNS,
    association_values,
    check_association,
    counted_languages,
    hub_stats,
    piece_table,
)
from pivot_spark.steps.tokenize import content_and_stops, vocab_pieces

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INPUTS = ("cooccurrence", "token_stats", "doc_tokens", "doc_lang")
VOCAB = pa.schema([pa.field("token_id", pa.int32()), pa.field("piece", pa.string()),
                   pa.field("piece_reason", pa.string())])
HUBS = pa.schema([pa.field("token_id", pa.int32()), pa.field("strength", pa.float64()),
                  pa.field("degree", pa.int64()), pa.field("n_langs", pa.int64()),
                  pa.field("eff_langs", pa.float64()), pa.field("score", pa.float64())])


def pivots(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    pc_ = cfg.pivots
    pins = {t: lake.version(t) for t in INPUTS}
    label = pc_.pivot_set or "ps-" + hashlib.sha256(
        json.dumps({"cfg": pc_.model_dump(mode="json"), "pins": pins, "tok": tok}, sort_keys=True).encode()
    ).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F

        ctx.catalog = CatalogEntry(tokenizer=tok, pivot_set=label)
        sp_path = str(ctx.lake.tokenizer_path(tok))
        content, stops = content_and_stops(sp_path, cfg.cooccur.stop_list)
        cooc = ctx.read("cooccurrence").filter((F.col("tokenizer") == tok) & (F.col("window") == pc_.window))
        stats = ctx.read("token_stats").filter(F.col("tokenizer") == tok)
        with ctx.describe("count documents, in all and per language"):
            n_docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).count()
            docs_by_lang = {r["lang"]: int(r["count"]) for r in  # a row per language
                            ctx.read("doc_lang").filter(F.col("lang").isNotNull()).groupBy("lang").count().collect()}
        vocab = piece_table(vocab_pieces(sp_path).tolist(), content, stops, pc_.min_piece_chars)
        with ctx.describe("token filters, association, hub ranking"):
            res = spark_pivots(ctx.spark, cooc, stats, n_docs=n_docs, docs_by_lang=docs_by_lang, vocab=vocab,
                               cfg=pc_, pivot_set=label, tokenizer=tok)
        table = pa.Table.from_pandas(res.pivots, preserve_index=False)
        ctx.write_arrow(table, "pivots", mode="overwrite", replace_where={"pivot_set": label})
        top = res.pivots.head(20)
        return {"pivot_set": label, "tokenizer": tok, "window": pc_.window, "pivots": len(res.pivots),
                "graph_edges": res.edges, "documents": n_docs, "dropped": res.dropped,
                "top20": " ".join(top["piece"].tolist())}

    return run_job(cfg, PIVOTS_JOB, body, input_tables=INPUTS, identity={"pivot_set": label}, quiet=quiet)


@dataclass(frozen=True)
class SparkPivots:
    """What :func:`spark_pivots` brings to the driver: the pivots (``PIVOT_COLUMNS``, ``top_k`` rows at most),
    the drop-reason counts (as :meth:`pivot_spark.steps.pivots.PivotResult.dropped`) and the number of edges."""

    pivots: pd.DataFrame
    dropped: dict[str, int]
    edges: int


def spark_pivots(
    spark: SparkSession,
    cooc: DataFrame,
    stats: DataFrame,
    *,
    n_docs: int,
    docs_by_lang: Mapping[str, int],
    vocab: pd.DataFrame,
    cfg: PivotsConfig,
    pivot_set: str,
    tokenizer: str,
) -> SparkPivots:
    """:func:`pivot_spark.steps.pivots.build_pivots` in Spark (module docstring): ``cooc`` holds the rows of
    ``cfg.window`` (``PAIR_KEYS, count, doc_count``, any number of rows per pair), ``stats`` the token statistics
    (``token_id, lang, count, doc_count``), ``vocab`` the :func:`~pivot_spark.steps.pivots.piece_table`."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if n_docs <= 0:
        raise ValueError("n_docs must be positive")
    check_association(cfg.association, cfg.window)
    held: list[DataFrame] = []

    def hold(df: DataFrame) -> DataFrame:
        held.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return df

    langs = counted_languages(cfg.languages)  # positions of these span languages only, as build_pivots
    cooc = cooc.filter(F.col("lang_a").isin(langs) & F.col("lang_b").isin(langs))
    stats = stats.filter(F.col("lang").isin(langs))
    try:
        node = hold(stats.groupBy("token_id", "lang")
                    .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count")))
        edges = cooc.filter(F.col("lang_a") != F.col("lang_b")) if cfg.cross_lingual_only else cooc
        edges = edges.groupBy(*PAIR_KEYS).agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count"))
        marginal = MARGINAL[cfg.association]
        for side in ("a", "b"):
            edges = edges.join(node.select(F.col("token_id").alias(f"token_{side}"), F.col("lang").alias(f"lang_{side}"),
                                           F.col(marginal).alias(f"m_{side}")),
                               [f"token_{side}", f"lang_{side}"], "left")
        edges = hold(edges)
        e = edges.agg(F.count(F.lit(1)).alias("n"),
                      F.count_if(F.col("m_a").isNull() | F.col("m_b").isNull()).alias("missing")).first()
        t = node.agg(F.min("token_id").alias("lo"), F.max("token_id").alias("hi"),
                     F.sum("count").alias("total")).first()
        assert e is not None and t is not None
        if e["n"] == 0:
            raise ValueError(f"no co-occurrence counts for window {cfg.window}: run `pivot-spark cooccur` with "
                             f"cooccur.windows including {cfg.window}")
        if e["missing"]:
            raise ValueError("co-occurrence rows whose (token, lang) is missing from token_stats: "
                             "the two tables come from different inputs")
        if t["lo"] < 0 or t["hi"] >= len(vocab):
            raise ValueError(f"token_stats has token ids outside the content mask's vocabulary of {len(vocab)}")

        tokens = hold(_token_reasons(spark, node, n_docs=n_docs, docs_by_lang=docs_by_lang, vocab=vocab, cfg=cfg))
        kept = tokens.filter(F.col("reason").isNull()).select("token_id")
        candidates = edges.filter(F.col("count") >= cfg.min_pair_count)
        for side in ("a", "b"):
            candidates = candidates.join(F.broadcast(kept.withColumnRenamed("token_id", f"token_{side}")),
                                         f"token_{side}", "left_semi")
        strong = (candidates.mapInArrow(_association_task(cfg, total=float(t["total"]), n_docs=n_docs),
                                        "token_a int, token_b int, lang_a string, lang_b string, assoc double")
                  .filter(F.col("assoc") >= cfg.min_assoc))
        hubs = _hubs(strong)
        ranked = hold(
            tokens.join(hubs, "token_id", "left")
            .select("token_id", "piece",
                    F.coalesce(F.col("score"), F.lit(0.0)).alias("score"),
                    F.coalesce(F.col("degree"), F.lit(0)).alias("degree"),
                    F.coalesce(F.col("n_langs"), F.lit(0)).alias("n_langs"),
                    F.coalesce(F.col("reason"),
                               F.when(F.coalesce(F.col("degree"), F.lit(0)) == 0, F.lit("no_strong_association")),
                               F.when(F.coalesce(F.col("n_langs"), F.lit(0)) < cfg.min_langs, F.lit("few_langs")))
                    .alias("reason"))
        )
        top: pd.DataFrame = (ranked.filter(F.col("reason").isNull())
                             .orderBy(F.desc("score"), F.asc("token_id")).limit(cfg.top_k)
                             .select("token_id", "piece", "score", "degree", "n_langs").toPandas())
        counts = {r["reason"]: int(r["count"]) for r in ranked.groupBy("reason").count().collect()}  # per reason
    finally:
        for df in held:
            df.unpersist()
    n_candidates = counts.pop(None, 0)
    if n_candidates > cfg.top_k:
        counts["below_top_k"] = n_candidates - cfg.top_k
    out = pd.DataFrame({
        "token_id": top["token_id"].astype(np.int32), "piece": top["piece"].astype(object),
        "score": top["score"].astype(np.float64), "degree": top["degree"].astype(np.int64),
        "n_langs": top["n_langs"].astype(np.int32), "rank": np.arange(1, len(top) + 1, dtype=np.int32),
        "pivot_set": pivot_set, "tokenizer": tokenizer,
    })
    return SparkPivots(out[PIVOT_COLUMNS], counts, int(e["n"]))


def _token_reasons(spark: SparkSession, node: DataFrame, *, n_docs: int, docs_by_lang: Mapping[str, int],
                   vocab: pd.DataFrame, cfg: PivotsConfig) -> DataFrame:
    """Per token: ``token_id, piece, reason`` (the first filter that drops it, as in
    :func:`pivot_spark.steps.pivots.token_filter`; null: kept)."""
    from pyspark.sql import functions as F

    per_token = node.groupBy("token_id").agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count"))
    big = {lang: n for lang, n in docs_by_lang.items() if n >= max(cfg.min_lang_docs, 1)}
    lang_doc_freq = F.lit(0.0)
    if big:
        docs = F.create_map(*[x for lang, n in sorted(big.items()) for x in (F.lit(lang), F.lit(float(n)))])
        share = F.least(F.col("doc_count") / F.element_at(docs, F.col("lang")), F.lit(1.0))
        per_lang = (node.filter(F.col("lang").isin(sorted(big))).groupBy("token_id")
                    .agg(F.max(share).alias("lang_doc_freq")))
        per_token = per_token.join(per_lang, "token_id", "left")
        lang_doc_freq = F.coalesce(F.col("lang_doc_freq"), F.lit(0.0))
    pieces = spark.createDataFrame(pa.Table.from_pandas(vocab[VOCAB.names], schema=VOCAB, preserve_index=False))
    doc_freq = F.least(F.col("doc_count") / F.lit(n_docs), F.lit(1.0))
    reason = F.coalesce(
        F.col("piece_reason"),
        F.when(F.col("count") < cfg.min_token_count, F.lit("rare")),
        F.when(doc_freq > cfg.max_doc_freq, F.lit("too_frequent")),
        F.when(lang_doc_freq > cfg.max_lang_doc_freq, F.lit("function_word")),
    )
    return per_token.join(F.broadcast(pieces), "token_id").select("token_id", "piece", reason.alias("reason"))


def _association_task(cfg: PivotsConfig, *, total: float, n_docs: int) -> Any:
    """The ``mapInArrow`` function that gives each edge its association (and drops the marginals)."""
    association, window = cfg.association, cfg.window

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            assoc = association_values(
                association, b.column("count").to_numpy(), b.column("doc_count").to_numpy(),
                b.column("m_a").to_numpy().astype(np.float64), b.column("m_b").to_numpy().astype(np.float64),
                window=window, total=total, n_docs=n_docs)
            yield pa.RecordBatch.from_arrays([*(b.column(k) for k in PAIR_KEYS), pa.array(assoc, pa.float64())],
                                             names=[*PAIR_KEYS, "assoc"])

    return run


def _hubs(strong: DataFrame) -> DataFrame:
    """Per token with a strong edge: ``HUBS``. Each edge is split into its two half edges, which a shuffle by
    token brings together; sorted in the canonical order of :func:`~pivot_spark.steps.pivots.half_edges`, each
    partition's tokens are summed a whole token at a time."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    sides = [
        strong.select(F.col(own).alias("token_id"), F.col(f"lang_{own[-1]}").alias("lang"),
                      F.col(other).alias("partner"), F.col(f"lang_{other[-1]}").alias("partner_lang"),
                      "assoc", F.lit(side).alias("side"), "lang_a", "lang_b")
        for side, (own, other) in enumerate([("token_a", "token_b"), ("token_b", "token_a")])
    ]
    half = (sides[0].unionByName(sides[1]).repartition("token_id")
            .sortWithinPartitions("token_id", "side", "partner", "lang_a", "lang_b")
            .select(*HALF_COLUMNS))
    return half.mapInArrow(_hub_task, from_arrow_schema(HUBS))


def _hub_task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Inside a task: half edges sorted by token in, :func:`hub_stats` per token out; a token's rows may span
    batches, so the last token of a batch waits for the next one."""
    carry: pa.Table | None = None
    for b in batches:
        rows = pa.Table.from_batches([b]) if carry is None else pa.concat_tables([carry, pa.Table.from_batches([b])])
        ids = rows.column("token_id").to_numpy()
        if not len(ids):
            continue
        whole = int(np.searchsorted(ids, ids[-1], side="left"))  # rows before the last token's
        if whole:
            yield _hub_batch(rows.slice(0, whole))
        carry = rows.slice(whole)
    if carry is not None and carry.num_rows:
        yield _hub_batch(carry)


def _hub_batch(half: pa.Table) -> pa.RecordBatch:
    hubs = hub_stats(half.to_pandas())
    return pa.RecordBatch.from_pandas(hubs[HUBS.names], schema=HUBS, preserve_index=False)
