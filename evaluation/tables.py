"""Reading the lake's Delta tables without Spark (delta-rs + pyarrow), for the evaluator.

Tables are read at their latest version through the active files delta-rs lists (never a plain Parquet folder
read, which would pick up removed files). Co-occurrence counts are additive per snapshot, so per-pair counts
are summed over snapshots. Every function also takes a device bundle (:mod:`pivot_spark.bundle`) in place of
the lake: its trimmed copies were taken from one pinned version of each table, and are read with pyarrow alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pivot_spark.bundle import Bundle, is_bundle

log = logging.getLogger(__name__)


def table_uri(lake: str | Path, name: str) -> str:
    return f"{str(lake).rstrip('/')}/{name}"


def open_table(lake: str | Path, name: str) -> Any:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = table_uri(lake, name)
    try:
        return DeltaTable(uri)
    except TableNotFoundError as err:
        raise FileNotFoundError(f"no Delta table {name!r} in lake {lake}: run the pivot-spark job that writes it "
                                f"({uri})") from err


def read(lake: str | Path, name: str, columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
    """One table at its latest version, with column projection and a pyarrow filter pushed down."""
    if is_bundle(lake):
        return Bundle.open(lake).read(name, columns, filter)
    dataset: ds.Dataset = open_table(lake, name).to_pyarrow_dataset()
    return dataset.to_table(columns=list(columns) if columns else None, filter=filter)


def batches(lake: str | Path, name: str, columns: Sequence[str], batch_size: int = 1024) -> Iterable[pa.RecordBatch]:
    if is_bundle(lake):
        yield from Bundle.open(lake).read(name, columns).to_batches(max_chunksize=batch_size)
        return
    yield from open_table(lake, name).to_pyarrow_dataset().to_batches(columns=list(columns), batch_size=batch_size)


def row_count(lake: str | Path, name: str) -> int:
    """Rows of a table from the Delta log's per-file statistics (no data read)."""
    if is_bundle(lake):
        return Bundle.open(lake).row_count(name)
    actions = pa.table(open_table(lake, name).get_add_actions(flatten=True))
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def cooccurrence_near(lake: str | Path, ids: Iterable[int], *, window: int | None, tokenizer: str | None
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
    t = read(lake, "cooccurrence", ["token_a", "token_b", "lang_a", "lang_b", "window", "count", "doc_count"], flt)
    df = t.to_pandas()
    if df.empty:
        return df, window or 0
    w = int(window if window is not None else df["window"].max())
    return df[df["window"] == w].reset_index(drop=True), w


def token_doc_counts(lake: str | Path, tokenizer: str | None) -> pd.DataFrame:
    flt = pc.field("tokenizer") == tokenizer if tokenizer else None
    return read(lake, "token_stats", ["token_id", "lang", "count", "doc_count"], flt).to_pandas()


def tokenizers_in(lake: str | Path, name: str) -> list[str]:
    t = read(lake, name, ["tokenizer"])
    return sorted(set(t.column("tokenizer").to_pylist()))


def n_documents(lake: str | Path) -> int:
    """Documents the co-occurrence counts were made from: ``doc_tokens`` rows (``documents`` if absent)."""
    try:
        return row_count(lake, "doc_tokens")
    except FileNotFoundError:
        return row_count(lake, "documents")


def pair_frequencies(lake: str | Path, *, window: int | None, column: str = "count"
                     ) -> tuple[pd.DataFrame, int | None]:
    """``pair_cooccurrence`` summed per pair_id for one window (default: the largest); (pair_id -> freq, window)."""
    t = read(lake, "pair_cooccurrence", ["pair_id", "window", "count", "doc_count", "tokenizer"]).to_pandas()
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
