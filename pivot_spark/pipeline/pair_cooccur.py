"""``pivot-spark pair-cooccur``: windowed co-occurrence of given word pairs (the evaluation's dictionary pairs)
over all of ``doc_tokens``, written to ``pair_cooccurrence`` (recomputed on every run).

Each word is a token sequence: the tokenizer's encoding of the word as it appears in running text. Tasks count
every pair in every window with :func:`pivot_spark.steps.cooccur.pair_cooccurrence`; Spark sums the counts per
pair and window, and pairs that never co-occur get rows of zeros.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import CatalogEntry, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.schemas import PAIR_COOCCURRENCE

WORD_START = "\u2581"  # SentencePiece's word-start marker


def pair_cooccur(cfg: PivotConfig, pairs_file: str, *, quiet: bool = False) -> dict[str, Any]:
    """Windowed co-occurrence of word pairs (each word a token sequence) over all of ``doc_tokens``."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    raw = read_pairs(pairs_file)
    windows = sorted(set(cfg.cooccur.windows))
    digest = pairs_digest(raw)

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.cooccur import PAIR_WINDOW_COUNTS
        from pivot_spark.steps.cooccur import pair_cooccurrence as count_word_pairs
        from pivot_spark.steps.tokenize import get_sp

        ctx.catalog = CatalogEntry(tokenizer=tok)
        sp = get_sp(str(ctx.lake.tokenizer_path(tok)))
        specs = [(f"{r['pair_id']}|{a_variant}{b_variant}", r["lang_a"], ids_a, r["lang_b"], ids_b)
                 for r in raw
                 for a_variant, ids_a in word_variants(sp, r["word_a"], r["lang_a"])
                 for b_variant, ids_b in word_variants(sp, r["word_b"], r["lang_b"])]
        docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select("token_ids", "token_langs")
        docs = docs.repartition(ctx.spark.sparkContext.defaultParallelism * 4)
        specs_b = ctx.spark.sparkContext.broadcast(specs)  # a small list of ids, not a model

        def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for b in batches:
                yield from count_word_pairs(b, specs_b.value, window=windows).to_batches()

        counts = (docs.mapInArrow(count, from_arrow_schema(PAIR_WINDOW_COUNTS))
                  # spec ids are "<pair_id>|<variants>": drop only the last field (pair ids may hold "|")
                  .withColumn("pair_id", F.regexp_replace("pair_id", r"\|[^|]*$", ""))
                  .groupBy("pair_id", "window").agg(F.sum("count").alias("count"),
                                                    F.sum("doc_count").alias("doc_count")))
        meta = ctx.spark.createDataFrame([(r["pair_id"], r["lang_a"], r["word_a"], r["lang_b"], r["word_b"])
                                          for r in raw], "pair_id string, lang_a string, word_a string, "
                                          "lang_b string, word_b string")
        grid = meta.crossJoin(ctx.spark.createDataFrame([(w,) for w in windows], "window int"))
        rows = (grid.join(counts, ["pair_id", "window"], "left").fillna(0, ["count", "doc_count"])
                .withColumn("tokenizer", F.lit(tok)).select(*PAIR_COOCCURRENCE.names))
        n = ctx.write(rows, "pair_cooccurrence", mode="overwrite")
        with ctx.describe("count the pairs that co-occur"):
            nonzero = rows.filter(F.col("count") > 0).count()
        return {"pairs": len(raw), "windows": windows, "rows": n, "pairs_with_cooccurrence": nonzero,
                "pairs_file_sha": digest, "tokenizer": tok}

    return run_job(cfg, "pair-cooccur", body, input_tables=("doc_tokens",),
                   identity={"pairs": digest, "tokenizer": tok}, quiet=quiet)


def read_pairs(pairs_file: str) -> list[dict[str, Any]]:
    """The word pairs of a ``--pairs`` file (JSON Lines: ``pair_id, lang_a, word_a, lang_b, word_b``)."""
    raw = [json.loads(line) for line in Path(pairs_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(raw):
        missing = {"pair_id", "lang_a", "word_a", "lang_b", "word_b"} - set(r)
        if missing:
            raise ValueError(f"{pairs_file} line {i + 1}: missing {sorted(missing)}")
    return raw


def pairs_digest(raw: list[dict[str, Any]]) -> str:
    """A short content hash of word pairs (part of a run's identity)."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]


def running_text_ids(sp: Any, word: str, lang: str) -> list[int]:
    """The token ids of ``word`` as it appears in running text of its language (the ``m`` variant of
    :func:`word_variants`)."""
    return dict(word_variants(sp, word, lang)).get("m", [])


def word_variants(sp: Any, word: str, lang: str) -> list[tuple[str, list[int]]]:
    """The token sequences searched for ``word``, as ``(variant, ids)``: ``m``, the word as it appears in running
    text (with SentencePiece's word-start marker; without it for zh and ja, whose words follow other characters
    directly), and ``b``, the bare spelling without the marker, where it differs."""
    marked = sp.encode(" " + word.strip()) if not word.startswith(" ") else sp.encode(word)
    marked = [i for i in marked if sp.id_to_piece(i) != WORD_START] if lang in ("zh", "ja") else marked
    bare = sp.encode(word.strip())
    if bare and sp.id_to_piece(bare[0]).startswith(WORD_START):
        first = sp.id_to_piece(bare[0])[1:]
        bare = ([sp.piece_to_id(first)] if first and sp.piece_to_id(first) != sp.unk_id() else []) + bare[1:]
    out = [("m", list(marked))]
    if bare and bare != marked:
        out.append(("b", list(bare)))
    return [(k, v) for k, v in out if v]
