"""The evaluator's queries over the lake's tables (co-occurrence, token statistics, pair counts).

Every function takes a :class:`pivot_spark.lake.reader.TableReader` (``open_reader(uri)``: a lake or an offline
bundle), which reads each table at one pinned version however many queries touch it; the versions read are in
``reader.pinned()``. Co-occurrence counts are additive per snapshot, so per-pair counts are summed over
snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark.lake.reader import TableReader


def cooccurrence_near(reader: TableReader, ids: Iterable[int], *, window: int | None, tokenizer: str | None
                      ) -> tuple[pd.DataFrame, int]:
    """Rows of ``cooccurrence`` touching any of ``ids`` (both columns), for one window (default: the largest
    in the table, the closest to the paper's 100-token window) and tokenizer; (rows, window used)."""
    ids = sorted({int(i) for i in ids})
    id_arr = pa.array(ids, pa.int32())
    flt = pc.field("token_a").isin(id_arr) | pc.field("token_b").isin(id_arr)
    if tokenizer:
        flt &= pc.field("tokenizer") == tokenizer
    if window is not None:
        flt &= pc.field("window") == window
    t = reader.read("cooccurrence", ["token_a", "token_b", "lang_a", "lang_b", "window", "count", "doc_count"], flt)
    df = t.to_pandas()
    if df.empty:
        return df, window or 0
    w = int(window if window is not None else df["window"].max())
    return df[df["window"] == w].reset_index(drop=True), w


def token_doc_counts(reader: TableReader, tokenizer: str | None) -> pd.DataFrame:
    flt = pc.field("tokenizer") == tokenizer if tokenizer else None
    return reader.read("token_stats", ["token_id", "lang", "count", "doc_count"], flt).to_pandas()


def tokenizers_in(reader: TableReader, name: str) -> list[str]:
    t = reader.read(name, ["tokenizer"])
    return sorted(set(t.column("tokenizer").to_pylist()))


def n_documents(reader: TableReader) -> int:
    """Documents the co-occurrence counts were made from: ``doc_tokens`` rows (``documents`` if absent)."""
    try:
        return reader.row_count("doc_tokens")
    except FileNotFoundError:
        return reader.row_count("documents")


def pair_frequencies(reader: TableReader, *, window: int | None, column: str = "count"
                     ) -> tuple[pd.DataFrame, int | None]:
    """``pair_cooccurrence`` summed per pair_id for one window (default: the largest); (pair_id -> freq, window)."""
    t = reader.read("pair_cooccurrence", ["pair_id", "window", "count", "doc_count", "tokenizer"]).to_pandas()
    if t.empty:
        return pd.DataFrame({"pair_id": [], "freq": []}), window
    w = int(window if window is not None else t["window"].max())
    if w not in set(t["window"]):
        raise ValueError(f"pair_cooccurrence has windows {sorted(set(t['window']))}, not {w}")
    sel = t[t["window"] == w]
    n_tok = sel["tokenizer"].nunique()
    if n_tok > 1:
        raise ValueError(f"pair_cooccurrence has {n_tok} tokenizers for window {w}; counts are not comparable")
    freq = sel.groupby("pair_id", as_index=False)[column].sum().rename(columns={column: "freq"})
    freq["freq"] = freq["freq"].astype(np.int64)
    return freq, w
