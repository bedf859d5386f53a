"""``pivot-spark pair-pivots``: the paper's semantic pivots of each word pair (a word and its translation), written
to ``pair_pivots`` (recomputed on every run).

For each pair of the ``--pairs`` file (the format ``pair-cooccur`` takes), the tokens that co-occur with both
words beyond their background document frequency, ranked by the smaller of the two excesses, the top
``pair_pivots.top_n`` per pair: what the pandas reference :func:`pivot_spark.steps.pivots.pair_pivot_candidates`
defines, as Spark aggregations over the pinned ``cooccurrence`` and ``token_stats`` of one window:

- only positions in spans of ``pivots.languages`` count (never ``zxx``), as for the corpus-level pivot set;
- a word is its tokens as in running text (:func:`pivot_spark.pipeline.pair_cooccur.running_text_ids`); its
  co-occurrence document count with a token is the minimum over its tokens, its document frequency the minimum
  of theirs;
- candidates are pieces that can be words (:func:`pivot_spark.steps.pivots.word_piece_mask`), neither word's
  own tokens.

The word tokens (two short lists per pair) travel to the executors; the edges touching them are summed there and
joined per pair; only the counts come to the driver. The logit lens reads the table (``evaluation.logit_lens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.lake.spark import spark_schema
from pivot_spark.pipeline.catalog import CatalogEntry, require_tokenizer
from pivot_spark.pipeline.pair_cooccur import pairs_digest, read_pairs, running_text_ids
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.schemas import PAIR_PIVOTS
from pivot_spark.steps.pivots import counted_languages, word_piece_mask

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INPUTS = ("cooccurrence", "token_stats", "doc_tokens")
WORDS = pa.schema([pa.field("pair_id", pa.string()), pa.field("side", pa.string()),
                   pa.field("token_id", pa.int32())])


def pair_pivots(cfg: PivotConfig, pairs_file: str, *, quiet: bool = False) -> dict[str, Any]:
    """Per word pair of ``pairs_file``: its top ``pair_pivots.top_n`` pivots -> ``pair_pivots``."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    raw = read_pairs(pairs_file)
    digest = pairs_digest(raw)

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        from pivot_spark.steps.tokenize import get_sp, vocab_pieces

        ctx.catalog = CatalogEntry(tokenizer=tok)
        sp_path = str(ctx.lake.tokenizer_path(tok))
        sp = get_sp(sp_path)
        cooc = ctx.read("cooccurrence").filter(F.col("tokenizer") == tok)
        window = cfg.pair_pivots.window
        if window is None:
            with ctx.describe("find the largest window"):
                row = cooc.agg(F.max("window").alias("w")).first()
            if row is None or row["w"] is None:
                raise ValueError("cooccurrence has no rows for the tokenizer: run `pivot-spark cooccur` first")
            window = int(row["w"])
        stats = ctx.read("token_stats").filter(F.col("tokenizer") == tok)
        with ctx.describe("count documents"):
            n_docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).count()
        words = [(str(r["pair_id"]), running_text_ids(sp, r["word_a"], r["lang_a"]),
                  running_text_ids(sp, r["word_b"], r["lang_b"])) for r in raw]
        keep = word_piece_mask(vocab_pieces(sp_path).tolist(), cfg.pivots.min_piece_chars)
        found = spark_pair_pivots(ctx.spark, cooc.filter(F.col("window") == window), stats, words,
                                  n_docs=n_docs, keep=keep, top_n=cfg.pair_pivots.top_n,
                                  languages=cfg.pivots.languages)
        pieces = ctx.spark.createDataFrame([(i, sp.id_to_piece(i)) for i in range(sp.get_piece_size()) if keep[i]],
                                           "token_id int, piece string")
        meta = ctx.spark.createDataFrame([(r["pair_id"], r["lang_a"], r["word_a"], r["lang_b"], r["word_b"])
                                          for r in raw], "pair_id string, lang_a string, word_a string, "
                                          "lang_b string, word_b string")
        out = spark_schema("pair_pivots")
        # kept for the count after the write (a few rows per pair), so the joins over cooccurrence run once
        rows = (found.join(meta, "pair_id").join(F.broadcast(pieces), "token_id")
                .withColumn("window", F.lit(window).cast("int")).withColumn("tokenizer", F.lit(tok))
                .select(*[F.col(f.name).cast(out[f.name].dataType) for f in PAIR_PIVOTS])
                .persist(StorageLevel.MEMORY_AND_DISK))
        n = ctx.write(rows, "pair_pivots", mode="overwrite")
        with ctx.describe("count the pairs with pivots"):
            with_pivots = rows.select("pair_id").distinct().count()
        rows.unpersist()
        return {"pairs": len(raw), "pairs_with_pivots": with_pivots, "rows": n, "window": window,
                "top_n": cfg.pair_pivots.top_n, "documents": n_docs, "pairs_file_sha": digest, "tokenizer": tok}

    return run_job(cfg, "pair-pivots", body, input_tables=INPUTS,
                   identity={"pairs": digest, "tokenizer": tok}, quiet=quiet)


def spark_pair_pivots(spark: SparkSession, cooc: DataFrame, stats: DataFrame,
                      words: Sequence[tuple[str, Sequence[int], Sequence[int]]], *, n_docs: int, keep: np.ndarray,
                      top_n: int, languages: Sequence[str]) -> DataFrame:
    """:func:`pivot_spark.steps.pivots.pair_pivot_candidates` of every ``(pair_id, ids_a, ids_b)`` in
    ``words``, with ``keep`` and ``languages``, as one DataFrame: ``pair_id, token_id, doc_count_a, doc_count_b,
    excess_a, excess_b, score, rank`` (``rank`` 1..``top_n`` per pair). ``cooc`` holds the rows of one window
    (``token_a, token_b, lang_a, lang_b, doc_count``, any number of rows per pair), ``stats`` the token
    statistics (``token_id, lang, doc_count``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if n_docs <= 0:
        raise ValueError("n_docs must be positive")
    langs = counted_languages(languages)
    rows = [(pid, side, int(t)) for pid, ids_a, ids_b in words for side, ids in (("a", ids_a), ("b", ids_b))
            for t in sorted({int(x) for x in ids})]
    word_tokens = spark.createDataFrame(pa.Table.from_pylist(
        [dict(zip(WORDS.names, r, strict=True)) for r in rows], schema=WORDS))
    wanted = sorted({r[2] for r in rows})
    df = (stats.filter(F.col("lang").isin(langs)).groupBy("token_id").agg(F.sum("doc_count").alias("df")))
    edges = (cooc.filter(F.col("lang_a").isin(langs) & F.col("lang_b").isin(langs))
             .filter(F.col("token_a").isin(wanted) | F.col("token_b").isin(wanted)))
    near = (edges.select(F.col("token_a").alias("token_id"), F.col("token_b").alias("partner"), "doc_count")
            .unionByName(edges.select(F.col("token_b").alias("token_id"), F.col("token_a").alias("partner"),
                                      "doc_count"))
            .filter(F.col("token_id").isin(wanted))
            .groupBy("token_id", "partner").agg(F.sum("doc_count").alias("dc")))
    # a word: its tokens that occur in the statistics, their number and the smallest document frequency
    present = word_tokens.join(df, "token_id")
    word = present.groupBy("pair_id", "side").agg(F.count(F.lit(1)).alias("n_tok"), F.min("df").alias("df_w"))
    # per word and partner: the smallest count over the word's tokens, kept where every token is near it
    side = (present.join(near, "token_id").groupBy("pair_id", "side", "partner")
            .agg(F.min("dc").alias("d"), F.count(F.lit(1)).alias("k"))
            .join(word, ["pair_id", "side"]).filter(F.col("k") == F.col("n_tok"))
            .join(df.withColumnRenamed("token_id", "partner").withColumnRenamed("df", "df_t"), "partner")
            .withColumn("excess", F.col("d").cast("double")
                        - F.col("df_w").cast("double") * (F.col("df_t").cast("double") / F.lit(float(n_docs)))))
    a = side.filter(F.col("side") == "a").select("pair_id", "partner", F.col("d").alias("doc_count_a"),
                                                 F.col("excess").alias("excess_a"))
    b = side.filter(F.col("side") == "b").select("pair_id", "partner", F.col("d").alias("doc_count_b"),
                                                 F.col("excess").alias("excess_b"))
    allowed = spark.createDataFrame([(int(t),) for t in np.flatnonzero(keep)], "partner int")
    own = word_tokens.select("pair_id", F.col("token_id").alias("partner")).distinct()
    both = (a.join(b, ["pair_id", "partner"]).withColumn("score", F.least("excess_a", "excess_b"))
            .filter(F.col("score") > 0).join(F.broadcast(allowed), "partner", "left_semi")
            .join(own, ["pair_id", "partner"], "left_anti"))
    order = Window.partitionBy("pair_id").orderBy(F.desc("score"), F.asc("partner"))
    return (both.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= top_n)
            .select("pair_id", F.col("partner").alias("token_id"), "doc_count_a", "doc_count_b", "excess_a",
                    "excess_b", "score", "rank"))

