"""The packed form of co-occurrence counts that the ``cooccur`` job moves between its tasks (numpy/Arrow only).

A map task counts its documents into packed int64 keys (:func:`pivot_spark.steps.cooccur.pair_key_counts` and
:func:`~pivot_spark.steps.cooccur.token_key_counts`, every batch remapped to one run-wide language table) and
holds them in :class:`Partials`, which merges them before anything leaves the task. What leaves is
:data:`PACKED` rows: five fixed-width columns. :func:`route_packed` splits them by a hash of the key into the
reduce partitions; a reduce task sums its rows (:func:`sum_packed`), prunes pairs by ``min_count`` and decodes
the keys into ``cooccurrence`` and ``token_stats`` rows (:func:`decode_packed`). Counts are integers, so the
result does not depend on how rows were split between tasks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from pivot_spark.schemas import COOCCURRENCE, TOKEN_STATS
from pivot_spark.steps.cooccur import decode_pair_keys, decode_token_keys, merge_key_counts

# ``snap`` indexes the run's snapshot list, ``window`` 0 marks token rows, ``key`` is a packed pair key or token
# key (token ids and codes of the run-wide language table).
PACKED = pa.schema([
    pa.field("snap", pa.int32()), pa.field("window", pa.int32()), pa.field("key", pa.int64()),
    pa.field("count", pa.int64()), pa.field("doc_count", pa.int64()),
])
# Decoded pair rows, token rows and summary counts in one schema (``kind`` tells them apart): what a reduce task
# returns when Spark, not the task, writes the tables. Token rows carry ``token_id``/``lang`` in
# ``token_a``/``lang_a``; the summary row carries its counts as JSON in ``piece``.
PARTIAL = pa.schema([
    pa.field("kind", pa.string()), pa.field("snapshot", pa.string()), pa.field("window", pa.int32()),
    pa.field("token_a", pa.int32()), pa.field("token_b", pa.int32()),
    pa.field("lang_a", pa.string()), pa.field("lang_b", pa.string()),
    pa.field("count", pa.int64()), pa.field("doc_count", pa.int64()), pa.field("piece", pa.string()),
])
MERGE_ROWS = 4_000_000  # partial rows a map task holds before merging them (bounds task memory)
EMIT_ROWS = 500_000  # rows per emitted batch

KeyCounts = tuple[np.ndarray, np.ndarray, np.ndarray]  # (keys, count, doc_count)


class Partials:
    """A map task's packed partial counts per (snapshot, window), merged in place whenever they grow past
    ``limit`` rows; what is still too large after a merge is handed on (emitted before the shuffle)."""

    def __init__(self, limit: int = MERGE_ROWS) -> None:
        self.limit = limit
        self.parts: dict[tuple[int, int], list[KeyCounts]] = {}
        self.rows = 0

    def add(self, snap: int, window: int, part: KeyCounts) -> Iterator[pa.RecordBatch]:
        """Hold ``part`` (the counts of snapshot ``snap``, window ``window``, 0 for token counts); yields the
        merged partials when they no longer fit."""
        if len(part[0]) == 0:
            return
        self.parts.setdefault((snap, window), []).append(part)
        self.rows += len(part[0])
        if self.rows < self.limit:
            return
        self.rows = 0
        for k, ps in self.parts.items():
            merged = merge_key_counts(ps)
            self.parts[k] = [merged]
            self.rows += len(merged[0])
        if self.rows >= self.limit:
            yield from self.drain()

    def drain(self) -> Iterator[pa.RecordBatch]:
        """Every held partial, merged, as :data:`PACKED` batches; empties the holder."""
        for (snap, window), ps in self.parts.items():
            keys, count, doc_count = merge_key_counts(ps)
            n = len(keys)
            for lo in range(0, n, EMIT_ROWS):
                hi = min(lo + EMIT_ROWS, n)
                yield pa.RecordBatch.from_arrays(
                    [pa.array(np.full(hi - lo, snap, np.int32)), pa.array(np.full(hi - lo, window, np.int32)),
                     pa.array(keys[lo:hi]), pa.array(count[lo:hi]), pa.array(doc_count[lo:hi])], schema=PACKED)
        self.parts, self.rows = {}, 0


def route_packed(rb: pa.RecordBatch, n: int) -> Iterator[tuple[int, bytes]]:
    """Split packed rows by reduce partition (a multiplicative hash of ``key``, the same in every task), each
    part as ``(partition, Arrow IPC stream bytes)``."""
    if rb.num_rows == 0:
        return
    key = rb.column(2).to_numpy().astype(np.uint64)
    dest = ((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(33)) % np.uint64(n)
    order = np.argsort(dest, kind="stable")
    bounds = np.searchsorted(dest[order], np.arange(n + 1, dtype=np.uint64))
    table = pa.Table.from_batches([rb]).take(pa.array(order))
    for r in range(n):
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        if hi > lo:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, PACKED) as w:
                w.write_table(table.slice(lo, hi - lo))
            yield r, sink.getvalue().to_pybytes()


def sum_packed(t: pa.Table) -> tuple[np.ndarray, ...]:
    """Sum ``count`` and ``doc_count`` of packed rows by (snap, window, key): one numpy sort of a combined
    int64 when it fits (the usual case), else Arrow's hash group-by. Returns (snap, window, key, count,
    doc_count) arrays."""
    snap, window, key = (t[c].to_numpy() for c in ("snap", "window", "key"))
    count, doc_count = t["count"].to_numpy(), t["doc_count"].to_numpy()
    if len(key) == 0:
        return snap, window, key, count, doc_count
    gid_space = (int(snap.max()) + 1) * (int(window.max()) + 1)
    if int(key.max()) < (1 << 62) // gid_space:
        combined = key * gid_space + snap.astype(np.int64) * (int(window.max()) + 1) + window
        order = np.argsort(combined, kind="stable")
        combined = combined[order]
        first = np.flatnonzero(np.concatenate([[True], combined[1:] != combined[:-1]]))
        idx = order[first]
        return (snap[idx], window[idx], key[idx], np.add.reduceat(count[order], first),
                np.add.reduceat(doc_count[order], first))
    g = t.group_by(["snap", "window", "key"], use_threads=False).aggregate([("count", "sum"),
                                                                            ("doc_count", "sum")])
    return (g["snap"].to_numpy(), g["window"].to_numpy(), g["key"].to_numpy(), g["count_sum"].to_numpy(),
            g["doc_count_sum"].to_numpy())


def decode_packed(t: pa.Table, snaps: Sequence[str], vocab: int, lang_names: Sequence[str], pieces: np.ndarray,
                  min_count: int, tok: str) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Packed rows of one reduce partition -> ``cooccurrence`` rows (summed, pruned by ``min_count``),
    ``token_stats`` rows (``pieces``: the vocabulary's pieces by id) and the partition's summary counts (before
    pruning: ``pair_occurrences.<w>``, ``distinct_pairs.<w>``, ``kept_pairs.<w>``, ``token_rows``)."""
    snap, window, key, count, doc_count = sum_packed(t)
    snap_names = np.array(snaps, dtype=object)
    summary: dict[str, int] = {}
    is_pair = window > 0
    for w in np.unique(window[is_pair]):
        sel = window == w
        summary[f"pair_occurrences.{w}"] = int(count[sel].sum())
        summary[f"distinct_pairs.{w}"] = int(sel.sum())
        summary[f"kept_pairs.{w}"] = int((count[sel] >= min_count).sum())
    summary["token_rows"] = int((~is_pair).sum())

    kept = np.flatnonzero(is_pair & (count >= min_count))
    token_a, token_b, lang_a, lang_b = decode_pair_keys(key[kept], vocab, lang_names)
    n = len(kept)
    pairs = pa.table({
        "snapshot": pa.array(snap_names[snap[kept]].tolist() if n else [], pa.string()),
        "tokenizer": pa.array([tok] * n, pa.string()), "window": pa.array(window[kept]),
        "token_a": token_a, "token_b": token_b, "lang_a": lang_a, "lang_b": lang_b,
        "count": pa.array(count[kept]), "doc_count": pa.array(doc_count[kept])})
    toks = np.flatnonzero(~is_pair)
    token_id, lang = decode_token_keys(key[toks], lang_names)
    m = len(toks)
    stats = pa.table({
        "snapshot": pa.array(snap_names[snap[toks]].tolist() if m else [], pa.string()),
        "tokenizer": pa.array([tok] * m, pa.string()), "token_id": token_id, "lang": lang,
        "piece": pa.array(pieces[token_id.to_numpy()].tolist() if m else [], pa.string()),
        "count": pa.array(count[toks]), "doc_count": pa.array(doc_count[toks])})
    return (pairs.select(COOCCURRENCE.names).cast(COOCCURRENCE),
            stats.select(TOKEN_STATS.names).cast(TOKEN_STATS), summary)


def as_partial(pairs: pa.Table, stats: pa.Table, counts: dict[str, Any]) -> pa.Table:
    """Decoded pair and token rows (and one row of summary counts) in the :data:`PARTIAL` schema."""
    n, m = pairs.num_rows, stats.num_rows
    p = pa.table({"kind": pa.array(["pair"] * n), "snapshot": pairs["snapshot"], "window": pairs["window"],
                  "token_a": pairs["token_a"], "token_b": pairs["token_b"], "lang_a": pairs["lang_a"],
                  "lang_b": pairs["lang_b"], "count": pairs["count"], "doc_count": pairs["doc_count"],
                  "piece": pa.nulls(n, pa.string())}, schema=PARTIAL)
    t = pa.table({"kind": pa.array(["token"] * m), "snapshot": stats["snapshot"],
                  "window": pa.array(np.zeros(m, np.int32)), "token_a": stats["token_id"],
                  "token_b": pa.array(np.full(m, -1, np.int32)), "lang_a": stats["lang"],
                  "lang_b": pa.array([""] * m), "count": stats["count"], "doc_count": stats["doc_count"],
                  "piece": stats["piece"]}, schema=PARTIAL)
    c = pa.Table.from_pylist([{"kind": "counts", "piece": json.dumps(counts)}], schema=PARTIAL)
    return pa.concat_tables([p, t, c])
