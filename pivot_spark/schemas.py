"""Table contracts of the lake, as Arrow schemas.

These names and columns are a contract between the Spark jobs, the trainer and the evaluator, which all read
them (docs/pipeline.md lists the columns added beyond the original table design). This module imports neither
pyspark nor torch, so every side can use it.
"""

from __future__ import annotations

import pyarrow as pa

SPAN = pa.struct(
    [
        pa.field("start", pa.int32()),  # character offset, inclusive
        pa.field("end", pa.int32()),  # character offset, exclusive
        pa.field("lang", pa.string()),
        pa.field("score", pa.float32()),
    ]
)

LANG_PROB = pa.struct([pa.field("lang", pa.string()), pa.field("score", pa.float32())])

DOCUMENTS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("record_id", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("uri", pa.string()),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("n_bytes", pa.int64(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("lang_hint", pa.string()),
        pa.field("align_group", pa.string()),
        pa.field("metadata", pa.string()),  # JSON object of the record's other fields
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("uri", pa.string()),
        pa.field("record", pa.int64()),  # record number inside the file (line number for JSON Lines, 1-based)
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),  # truncated raw record, decoded with replacement
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

DOC_LANG = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_score", pa.float32()),
        pa.field("top_langs", pa.list_(LANG_PROB)),
        pa.field("spans", pa.list_(SPAN)),
        pa.field("lid_model", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

DOC_TOKENS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
        pa.field("token_ids", pa.list_(pa.int32())),
        pa.field("token_langs", pa.list_(pa.string())),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("lid_model", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

TOKEN_STATS = pa.schema(
    [
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("piece", pa.string()),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

COOCCURRENCE = pa.schema(
    [
        pa.field("token_a", pa.int32(), nullable=False),
        pa.field("token_b", pa.int32(), nullable=False),
        pa.field("lang_a", pa.string(), nullable=False),
        pa.field("lang_b", pa.string(), nullable=False),
        pa.field("window", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
        pa.field("snapshot", pa.string(), nullable=False),
    ]
)

PAIR_COOCCURRENCE = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("lang_a", pa.string(), nullable=False),
        pa.field("word_a", pa.string(), nullable=False),
        pa.field("lang_b", pa.string(), nullable=False),
        pa.field("word_b", pa.string(), nullable=False),
        pa.field("window", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
    ]
)

PIVOTS = pa.schema(
    [
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("piece", pa.string()),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("degree", pa.int64(), nullable=False),
        pa.field("n_langs", pa.int32(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("pivot_set", pa.string(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
    ]
)

# The paper's semantic pivots of each evaluation word pair (pivot-spark pair-pivots; the logit lens reads them):
# tokens co-occurring with both words beyond their background document frequency, ranked by the smaller excess.
PAIR_PIVOTS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("lang_a", pa.string(), nullable=False),
        pa.field("word_a", pa.string(), nullable=False),
        pa.field("lang_b", pa.string(), nullable=False),
        pa.field("word_b", pa.string(), nullable=False),
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("piece", pa.string()),
        pa.field("doc_count_a", pa.int64(), nullable=False),  # documents where the token is near word a
        pa.field("doc_count_b", pa.int64(), nullable=False),
        pa.field("excess_a", pa.float64(), nullable=False),  # doc_count_a - df(a) * df(token) / N
        pa.field("excess_b", pa.float64(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # min(excess_a, excess_b)
        pa.field("rank", pa.int32(), nullable=False),  # 1..pair_pivots.top_n within the pair
        pa.field("window", pa.int32(), nullable=False),
        pa.field("tokenizer", pa.string(), nullable=False),
    ]
)

DOC_PIVOT = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("n_content_tokens", pa.int32(), nullable=False),
        pa.field("n_pivot_tokens", pa.int32(), nullable=False),
        pa.field("pivot_proportion", pa.float64(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("pivot_set", pa.string(), nullable=False),
    ]
)

TRAIN_SET = pa.schema(
    [
        pa.field("selection", pa.string(), nullable=False),
        pa.field("arm", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("token_ids", pa.list_(pa.int32())),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("shard", pa.int32(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("tokenizer", pa.string(), nullable=False),  # content hash of the SentencePiece model in the lake
    ]
)

# One (snapshot, window) pair counted by a cooccur run.
COUNTED = pa.struct([pa.field("snapshot", pa.string()), pa.field("window", pa.int32())])

RUNS = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("config", pa.string()),  # JSON of the effective config
        pa.field("inputs", pa.string()),  # JSON {table: version}
        pa.field("outputs", pa.string()),  # JSON {table: version}
        pa.field("counts", pa.string()),  # JSON {name: number}
        pa.field("status", pa.string(), nullable=False),
        pa.field("message", pa.string()),
        pa.field("started", pa.timestamp("us", tz="UTC")),
        pa.field("finished", pa.timestamp("us", tz="UTC")),
        # The run catalog (pivot_spark.pipeline.catalog): what the run made or worked with, typed. Null in rows
        # written before these columns existed (their counts JSON holds the same facts).
        pa.field("tokenizer", pa.string()),  # content hash of the SentencePiece model
        pa.field("pivot_set", pa.string()),
        pa.field("counted", pa.list_(COUNTED)),  # cooccur: the (snapshot, window) pairs this run counted
    ]
)

# name -> (schema, partition columns)
TABLES: dict[str, tuple[pa.Schema, list[str]]] = {
    "documents": (DOCUMENTS, ["snapshot"]),
    "quarantine": (QUARANTINE, ["snapshot"]),
    "doc_lang": (DOC_LANG, ["snapshot"]),
    "doc_tokens": (DOC_TOKENS, ["snapshot"]),
    "token_stats": (TOKEN_STATS, ["snapshot"]),
    "cooccurrence": (COOCCURRENCE, ["snapshot"]),
    "pair_cooccurrence": (PAIR_COOCCURRENCE, []),
    "pivots": (PIVOTS, ["pivot_set"]),
    "pair_pivots": (PAIR_PIVOTS, []),
    "doc_pivot": (DOC_PIVOT, ["pivot_set"]),
    "train_set": (TRAIN_SET, ["selection", "arm"]),
    "runs": (RUNS, []),
}


def schema_of(table: str) -> pa.Schema:
    return TABLES[table][0]


def partitions_of(table: str) -> list[str]:
    return TABLES[table][1]
