"""``cooccur``, ``pair-cooccur``, ``pivots``, ``score`` and ``select``: from tokens to a training selection.

- cooccur: per snapshot not yet counted for the current tokenizer and windows, each task counts its documents'
  windowed pairs with the vectorized :func:`~pivot_spark.steps.cooccur.count_pairs` and merges its batches'
  partial counts before anything is shuffled; Spark sums the partials by key and prunes by ``min_count``.
  Counts are additive: each snapshot's rows are its own, so an incremental rebuild counts only new documents.
- pivots: the hub tokens of the cross-lingual graph of one window (counts summed over snapshots).
- score: each document's pivot proportion for a pivot set.
- select: arms filled to one token budget from per-document metadata; rows joined back to ``doc_tokens``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark import models
from pivot_spark.config import PivotConfig
from pivot_spark.lake import FileEntry, Lake
from pivot_spark.lake.spark import (
    FILE_META,
    ReadPiece,
    file_prefix_of,
    make_file_writer,
    plan_read_units,
    read_unit_batches,
)
from pivot_spark.pipeline.annotate import _ship, _shipped, current_tokenizer
from pivot_spark.pipeline.runner import RunContext, ok_runs, run_job
from pivot_spark.schemas import COOCCURRENCE, DOC_PIVOT, PAIR_COOCCURRENCE, TOKEN_STATS
from pivot_spark.steps.langcodes import UNDETERMINED

# cooccur's shuffle: fixed-width rows only. ``snap`` indexes the run's snapshot list, ``window`` 0 marks token
# rows, ``key`` is a packed pair key (token ids and codes of one run-wide language table) or token key.
PACKED = pa.schema([
    pa.field("snap", pa.int32()), pa.field("window", pa.int32()), pa.field("key", pa.int64()),
    pa.field("count", pa.int64()), pa.field("doc_count", pa.int64()),
])
# cooccur's decoded rows (native backend): pair rows and token rows in one schema (kind tells them apart).
PARTIAL = pa.schema([
    pa.field("kind", pa.string()), pa.field("snapshot", pa.string()), pa.field("window", pa.int32()),
    pa.field("token_a", pa.int32()), pa.field("token_b", pa.int32()),
    pa.field("lang_a", pa.string()), pa.field("lang_b", pa.string()),
    pa.field("count", pa.int64()), pa.field("doc_count", pa.int64()), pa.field("piece", pa.string()),
])
TASK_OUT = pa.schema([pa.field("table", pa.string()), *FILE_META, pa.field("counts", pa.string())])
MERGE_ROWS = 4_000_000  # partial rows a map task holds before merging them (bounds task memory)


def _need_tokenizer(lake: Lake, cfg: PivotConfig) -> str:
    tok = current_tokenizer(lake, cfg)
    if tok is None:
        raise FileNotFoundError("no tokenizer in this lake: run `pivot-spark train-tokenizer` and `annotate` first")
    return tok


def _stop_ids(sp: Any, stop_list: str | None) -> list[int]:
    if not stop_list:
        return []
    pieces = [p.strip() for p in Path(stop_list).read_text(encoding="utf-8").splitlines() if p.strip()]
    ids = [sp.piece_to_id(p) for p in pieces]
    return [i for i in ids if i != sp.unk_id()]


_KEEP: dict[tuple[str, str | None], tuple[np.ndarray, list[int]]] = {}


def content_and_stops(sp_path: str, stop_list: str | None) -> tuple[np.ndarray, list[int]]:
    """The content mask and stop ids of a tokenizer, computed once per Python worker."""
    from pivot_spark.steps.tokenize import content_mask, get_sp

    key = (sp_path, stop_list)
    if key not in _KEEP:
        sp = get_sp(sp_path)
        _KEEP[key] = (content_mask(sp), _stop_ids(sp, stop_list))
    return _KEEP[key]


def counted_snapshots(lake: Lake, tok: str) -> set[tuple[str, int]]:
    """(snapshot, window) pairs already counted with tokenizer ``tok`` (from the runs of cooccur)."""
    done: set[tuple[str, int]] = set()
    for r in ok_runs(lake, "cooccur"):
        c = json.loads(r["counts"])
        if c.get("tokenizer") == tok:
            done |= {(s, int(w)) for s, ws in c.get("counted", {}).items() for w in ws}
    return done


class _Partials:
    """A map task's packed partial counts per (snapshot, window), merged in place whenever they grow past
    ``limit`` rows; what is still too large after a merge is handed on (emitted before the shuffle)."""

    def __init__(self, limit: int = MERGE_ROWS) -> None:
        self.limit = limit
        self.parts: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.rows = 0

    def add(self, snap: int, window: int, part: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Iterator[pa.RecordBatch]:
        from pivot_spark.steps.cooccur import _merge

        if len(part[0]) == 0:
            return
        self.parts.setdefault((snap, window), []).append(part)
        self.rows += len(part[0])
        if self.rows < self.limit:
            return
        self.rows = 0
        for k, ps in self.parts.items():
            merged = _merge(ps)
            self.parts[k] = [merged]
            self.rows += len(merged[0])
        if self.rows >= self.limit:
            yield from self.drain()

    def drain(self) -> Iterator[pa.RecordBatch]:
        from pivot_spark.steps.cooccur import _merge

        for (snap, window), ps in self.parts.items():
            keys, count, doc_count = _merge(ps)
            n = len(keys)
            for lo in range(0, n, 500_000):
                hi = min(lo + 500_000, n)
                yield pa.RecordBatch.from_arrays(
                    [pa.array(np.full(hi - lo, snap, np.int32)), pa.array(np.full(hi - lo, window, np.int32)),
                     pa.array(keys[lo:hi]), pa.array(count[lo:hi]), pa.array(doc_count[lo:hi])], schema=PACKED)
        self.parts, self.rows = {}, 0


def _sum_packed(t: pa.Table) -> tuple[np.ndarray, ...]:
    """Sum ``count`` and ``doc_count`` of packed rows by (snap, window, key): one numpy sort of a combined
    int64 when it fits (the usual case), else Arrow's hash group-by."""
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


def _decode_packed(t: pa.Table, snaps: list[str], vocab: int, lang_names: list[str], pieces: np.ndarray,
                   min_count: int, tok: str) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Summed packed rows of one reduce partition -> ``cooccurrence`` rows (pruned by ``min_count``),
    ``token_stats`` rows and the partition's summary counts (before pruning)."""
    from pivot_spark.steps.cooccur import decode_pair_keys, decode_token_keys

    snap, window, key, count, doc_count = _sum_packed(t)
    snap_names = np.array(snaps, dtype=object)
    summary: dict[str, Any] = {}
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


_PIECES: dict[str, np.ndarray] = {}


def _pieces(sp_path: str) -> np.ndarray:
    """Every piece of the vocabulary, indexed by id (once per Python worker)."""
    from pivot_spark.steps.tokenize import get_sp

    if sp_path not in _PIECES:
        sp = get_sp(sp_path)
        _PIECES[sp_path] = np.array([sp.id_to_piece(i) for i in range(sp.get_piece_size())], dtype=object)
    return _PIECES[sp_path]


def cooccur(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    """Count the windowed pairs of every (snapshot, window) not yet counted for the current tokenizer.

    Map tasks count their documents with numpy into packed int64 keys (one run-wide language table) and merge
    them before anything leaves the task; the shuffle carries five fixed-width columns, hash-partitioned by key;
    each reduce task sums its partition with Arrow, prunes by ``min_count``, decodes the keys and (bridge
    backend) writes its ``cooccurrence`` and ``token_stats`` files itself, so no row goes back through the JVM.
    """
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    windows = sorted(set(cfg.cooccur.windows))
    done = counted_snapshots(lake, tok)

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.cooccur import (
            TokenBatch,
            keep_mask,
            pair_key_counts,
            pair_key_space,
            token_key_counts,
        )
        from pivot_spark.steps.tokenize import get_sp

        cc = cfg.cooccur
        sc = ctx.spark.sparkContext
        n_map = cc.partitions or sc.defaultParallelism * 4
        # bridge tables are plain Parquet files: tasks can read their row groups directly
        direct = ctx.backend == "bridge" and cc.direct_read
        if direct:
            ctx.read("doc_tokens")  # pins the version
            version = ctx.inputs["doc_tokens"]
            units = plan_read_units(ctx.lake, "doc_tokens", version, n_map)
            uri, so = ctx.lake.table_uri("doc_tokens"), ctx.lake.storage_options

            def unit_rows(uids: Iterable[int], columns: list[str], keep_units: list[list[ReadPiece]]
                          ) -> Iterator[pa.RecordBatch]:
                for uid in uids:
                    for rb in read_unit_batches(uri, "doc_tokens", keep_units[uid], ["tokenizer", *columns], so):
                        yield rb.filter(pc.equal(rb.column(0), tok)).select(columns)

            def langs_and_snaps(uids: Iterable[int]) -> Iterator[tuple[str, str | None]]:
                langs: set[str | None] = set()
                snaps_seen: set[str] = set()
                for rb in unit_rows(uids, ["token_langs", "snapshot"], units):
                    if rb.num_rows:
                        langs |= set(pc.unique(pc.list_flatten(rb.column(0))).to_pylist())
                        snaps_seen |= set(pc.unique(rb.column(1)).to_pylist())
                yield from [("lang", v) for v in langs] + [("snapshot", v) for v in snaps_seen]

            found = [dict(zip(("kind", "value"), kv, strict=True)) for kv in set(
                sc.parallelize(range(len(units)), max(len(units), 1)).mapPartitions(langs_and_snaps).collect())]
            snaps = sorted(str(r["value"]) for r in found if r["kind"] == "snapshot" and r["value"] is not None)
            lang_set = {r["value"] for r in found if r["kind"] == "lang"}
        else:
            docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
            snaps = sorted(r["snapshot"] for r in docs.select("snapshot").distinct().collect())
        todo = {s: [w for w in windows if (s, w) not in done] for s in snaps}
        todo = {s: ws for s, ws in todo.items() if ws}
        if not todo:
            return {"tokenizer": tok, "counted": {}, "note": "every snapshot is already counted"}
        if not direct:
            docs = docs.filter(F.col("snapshot").isin(list(todo))).select("token_ids", "token_langs", "snapshot")
            # the run-wide language table: every code a counted token carries (tiny, from one column)
            lang_set = {r["l"] for r in docs.select(F.explode(F.array_distinct("token_langs")).alias("l"))
                        .distinct().collect()}
        lang_names = sorted(v for v in lang_set if v is not None)
        if UNDETERMINED not in lang_names:
            lang_names.append(UNDETERMINED)  # null languages count as und
        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        vocab = get_sp(sp_path).get_piece_size()
        if pair_key_space(vocab, len(lang_names)) >= 1 << 62:
            raise ValueError(f"vocabulary {vocab} x {len(lang_names)} languages does not fit a packed pair key")
        sp_name = _ship(ctx, sp_path)
        stop_list = cc.stop_list
        if stop_list:
            sc.addFile(stop_list)
            stop_list = Path(stop_list).name
        max_doc_tokens = cc.max_doc_tokens
        snap_list: list[str] = sorted(todo)
        todo_idx = {snap_list.index(s): ws for s, ws in todo.items()}
        snap_of = {s: i for i, s in enumerate(snap_list)}

        def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            content, stops = content_and_stops(_shipped(sp_name), _shipped(stop_list) if stop_list else None)
            keep = keep_mask(content, stops)
            acc = _Partials()
            for b in batches:
                if not b.num_rows:
                    continue
                t = pa.Table.from_batches([b])
                for snap in pc.unique(t["snapshot"]).to_pylist():
                    part = t.filter(pc.equal(t["snapshot"], snap))
                    batch = TokenBatch.from_arrow(part).with_lang_names(lang_names).truncate(max_doc_tokens)
                    i = snap_of[snap]
                    yield from acc.add(i, 0, token_key_counts(batch, keep=keep))
                    for w in todo_idx[i]:
                        yield from acc.add(i, w, pair_key_counts(batch, window=w, keep=keep))
            yield from acc.drain()

        min_count = cc.min_count
        summary: dict[str, int] = {}
        if direct:
            todo_units = [[pc_ for pc_ in u if pc_[2].get("snapshot") in todo] for u in units]
            todo_units = [u for u in todo_units if u]
            input_bytes = sum(_unit_bytes(ctx.lake, u) for u in todo_units)
            # one reduce task per 8 MB of token data (uncompressed row-group bytes), at least one per core
            n_reduce = cc.reduce_partitions or max(sc.defaultParallelism, -(-input_bytes // (8 << 20)))
            prefix = file_prefix_of(ctx.app_id("cooccurrence"))
            writers = {t: make_file_writer(ctx.lake.table_uri(t), t, prefix, ctx.lake.storage_options)
                       for t in ("cooccurrence", "token_stats")}

            def count_units(uids: Iterable[int]) -> Iterator[tuple[int, bytes]]:
                for rb in count(unit_rows(uids, ["token_ids", "token_langs", "snapshot"], todo_units)):
                    yield from _route(rb, n_reduce)

            def reduce(items: Iterable[tuple[int, bytes]]) -> Iterator[dict[str, Any]]:
                parts = [b for _, blob in items for b in pa.ipc.open_stream(blob)]
                if not parts:
                    return
                pairs, stats, counts = _decode_packed(pa.Table.from_batches(parts, PACKED), snap_list, vocab,
                                                      lang_names, _pieces(_shipped(sp_name)), min_count, tok)
                for table, data in (("cooccurrence", pairs), ("token_stats", stats)):
                    if data.num_rows:
                        for meta in writers[table](iter(data.to_batches(max_chunksize=1_000_000))):
                            yield from ({"table": table, **r} for r in meta.to_pylist())
                yield {"table": None, "counts": counts}

            # Spark moves the partial counts as Arrow IPC blobs routed by key hash: the JVM only copies bytes.
            out = (sc.parallelize(range(len(todo_units)), len(todo_units)).mapPartitions(count_units)
                   .partitionBy(n_reduce, _identity).mapPartitions(reduce).collect())
            files: dict[str, list[FileEntry]] = {"cooccurrence": [], "token_stats": []}
            for r in out:
                if r["table"] is None:
                    for k, v in r["counts"].items():
                        summary[k] = summary.get(k, 0) + int(v)
                else:
                    files[r["table"]].append(FileEntry(r["path"], r["size"], json.loads(r["partition_values"]),
                                                       r["num_records"], r["stats"]))
            n_pairs = sum(f.num_records for f in files["cooccurrence"])
            ctx.stage_files("cooccurrence", files["cooccurrence"])
            # token_stats is per snapshot and window-independent: (re)write the snapshots counted now.
            ctx.stage_files("token_stats", files["token_stats"], mode="overwrite",
                            partition_filters=[("snapshot", "in", snap_list)])
        else:
            from pyspark import StorageLevel

            if cc.partitions:
                docs = docs.repartition(cc.partitions)
            n_reduce = cc.reduce_partitions or int(ctx.spark.conf.get("spark.sql.shuffle.partitions") or 200)
            shuffled = docs.mapInArrow(count, from_arrow_schema(PACKED)).repartition(n_reduce, "key")

            def reduce_rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
                parts = [b for b in batches if b.num_rows]
                if not parts:
                    return
                pairs, stats, counts = _decode_packed(pa.Table.from_batches(parts), snap_list, vocab,
                                                      lang_names, _pieces(_shipped(sp_name)), min_count, tok)
                yield from _as_partial(pairs, stats, counts).to_batches(max_chunksize=200_000)

            rows_df = shuffled.mapInArrow(reduce_rows, from_arrow_schema(PARTIAL)).persist(StorageLevel.MEMORY_AND_DISK)
            for row in rows_df.filter(F.col("kind") == "counts").select("piece").collect():
                for k, v in json.loads(row["piece"]).items():
                    summary[k] = summary.get(k, 0) + int(v)
            pairs_df = (rows_df.filter(F.col("kind") == "pair").withColumn("tokenizer", F.lit(tok))
                        .select(*COOCCURRENCE.names))
            stats_df = (rows_df.filter(F.col("kind") == "token").withColumnRenamed("token_a", "token_id")
                        .withColumnRenamed("lang_a", "lang").withColumn("tokenizer", F.lit(tok))
                        .select(*TOKEN_STATS.names))
            n_pairs = ctx.write(pairs_df, "cooccurrence")
            ctx.write(stats_df, "token_stats", mode="overwrite", partition_filters=[("snapshot", "in", snap_list)])
            rows_df.unpersist()
        return {
            "tokenizer": tok, "counted": todo, "cooccurrence_rows": n_pairs, "languages": len(lang_names),
            "pair_occurrences": {str(w): summary.get(f"pair_occurrences.{w}", 0) for w in windows},
            "distinct_pairs": {str(w): summary.get(f"distinct_pairs.{w}", 0) for w in windows},
            "kept_pairs": {str(w): summary.get(f"kept_pairs.{w}", 0) for w in windows},
            "token_rows": summary.get("token_rows", 0),
        }

    return run_job(cfg, "cooccur", body, input_tables=("doc_tokens",),
                   identity={"tokenizer": tok, "windows": windows}, quiet=quiet)


def _identity(r: int) -> int:
    return r


def _route(rb: pa.RecordBatch, n: int) -> Iterator[tuple[int, bytes]]:
    """Split packed rows by reduce partition (a multiplicative hash of ``key``), each part as Arrow IPC bytes."""
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


def _unit_bytes(lake: Lake, unit: list[ReadPiece]) -> int:
    """Uncompressed bytes of a read unit's row groups (for sizing the reduce side; re-reads the footers
    ``plan_read_units`` read, which on the driver costs one small read per file)."""
    import pyarrow.parquet as pq

    from pivot_spark.lake.spark import filesystem

    fs, root = filesystem(lake.table_uri("doc_tokens"), lake.storage_options)
    total = 0
    for path, rgs, _pv in unit:
        with fs.open_input_file(f"{root}/{path}") as f:
            md = pq.ParquetFile(f).metadata
        total += sum(md.row_group(i).total_byte_size for i in rgs)
    return total


def _as_partial(pairs: pa.Table, stats: pa.Table, counts: dict[str, Any]) -> pa.Table:
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


def pair_cooccur(cfg: PivotConfig, pairs_file: str, *, quiet: bool = False) -> dict[str, Any]:
    """Windowed co-occurrence of word pairs (each word a token sequence) over all of ``doc_tokens``."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    raw = [json.loads(line) for line in Path(pairs_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(raw):
        missing = {"pair_id", "lang_a", "word_a", "lang_b", "word_b"} - set(r)
        if missing:
            raise ValueError(f"{pairs_file} line {i + 1}: missing {sorted(missing)}")
    windows = sorted(set(cfg.cooccur.windows))
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.cooccur import PAIR_WINDOW_COUNTS
        from pivot_spark.steps.cooccur import pair_cooccurrence as count_word_pairs
        from pivot_spark.steps.tokenize import get_sp

        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        sp = get_sp(sp_path)
        # A word as it appears in running text: with SentencePiece's word-start marker (no marker for zh/ja,
        # whose words follow other characters directly, so both spellings are searched).
        specs = []
        for r in raw:
            for a_variant, ids_a in _word_variants(sp, r["word_a"], r["lang_a"]):
                for b_variant, ids_b in _word_variants(sp, r["word_b"], r["lang_b"]):
                    specs.append((f"{r['pair_id']}|{a_variant}{b_variant}", r["lang_a"], ids_a, r["lang_b"],
                                  ids_b))
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
        nonzero = rows.filter(F.col("count") > 0).count()
        return {"pairs": len(raw), "windows": windows, "rows": n, "pairs_with_cooccurrence": nonzero,
                "pairs_file_sha": digest, "tokenizer": tok}

    return run_job(cfg, "pair-cooccur", body, input_tables=("doc_tokens",),
                   identity={"pairs": digest, "tokenizer": tok}, quiet=quiet)


def _word_variants(sp: Any, word: str, lang: str) -> list[tuple[str, list[int]]]:
    marked = sp.encode(" " + word.strip()) if not word.startswith(" ") else sp.encode(word)
    marked = [i for i in marked if sp.id_to_piece(i) != "\u2581"] if lang in ("zh", "ja") else marked
    bare = sp.encode(word.strip())
    if bare and sp.id_to_piece(bare[0]).startswith("\u2581"):
        first = sp.id_to_piece(bare[0])[1:]
        bare = ([sp.piece_to_id(first)] if first and sp.piece_to_id(first) != sp.unk_id() else []) + bare[1:]
    out = [("m", list(marked))]
    if bare and bare != marked:
        out.append(("b", list(bare)))
    return [(k, v) for k, v in out if v]


def current_pivot_set(lake: Lake) -> str | None:
    runs = ok_runs(lake, "pivots")
    return json.loads(runs[-1]["counts"])["pivot_set"] if runs else None


def pivots(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    pc_ = cfg.pivots
    pins = {t: lake.version(t) for t in ("cooccurrence", "token_stats", "doc_tokens", "doc_lang")}
    label = pc_.pivot_set or "ps-" + hashlib.sha256(
        json.dumps({"cfg": pc_.model_dump(mode="json"), "pins": pins, "tok": tok}, sort_keys=True).encode()
    ).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F

        from pivot_spark.steps.cooccur import sum_counts
        from pivot_spark.steps.pivots import build_pivots

        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        content, stops = content_and_stops(sp_path, cfg.cooccur.stop_list)
        keys = ["token_a", "token_b", "lang_a", "lang_b"]
        if ctx.backend == "bridge":
            # Driver-side reads of the pinned versions with delta-rs: the graph never passes through the JVM
            # (a window-50 graph is larger than spark.driver.maxResultSize).
            flt = (pc.field("tokenizer") == tok) & (pc.field("window") == pc_.window)
            if pc_.cross_lingual_only:  # the association step drops same-language rows anyway
                flt = flt & (pc.field("lang_a") != pc.field("lang_b"))
            cooc_t = sum_counts([ctx.read_arrow("cooccurrence", columns=[*keys, "count", "doc_count"],
                                                filter=flt)], keys)
            stats_t = sum_counts([ctx.read_arrow("token_stats", columns=["token_id", "lang", "count", "doc_count"],
                                             filter=pc.field("tokenizer") == tok)], ["token_id", "lang"])
            n_docs = ctx.read_arrow("doc_tokens", columns=["tokenizer"], filter=pc.field("tokenizer") == tok).num_rows
            langs = ctx.read_arrow("doc_lang", columns=["lang"])["lang"].value_counts().to_pylist()
            docs_by_lang = {str(d["values"]): int(d["counts"]) for d in langs}
        else:
            cooc_df = ctx.read("cooccurrence").filter((F.col("tokenizer") == tok) & (F.col("window") == pc_.window))
            if pc_.cross_lingual_only:
                cooc_df = cooc_df.filter(F.col("lang_a") != F.col("lang_b"))
            cooc_t = (cooc_df.groupBy(*keys).agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count"))
                      .toArrow())
            stats_t = (ctx.read("token_stats").filter(F.col("tokenizer") == tok).groupBy("token_id", "lang")
                       .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count")).toArrow())
            n_docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).count()
            docs_by_lang = {r["lang"]: int(r["count"]) for r in ctx.read("doc_lang").groupBy("lang").count().collect()}
        # Pivot discovery is a global ranking over the summed graph of one window, on the driver. Sorted, so
        # float sums run in one order whatever the partitioning: a cluster and local mode give identical scores.
        cooc_pd = cooc_t.to_pandas().sort_values(keys).reset_index(drop=True)
        stats_pd = stats_t.to_pandas().sort_values(["token_id", "lang"]).reset_index(drop=True)
        if cooc_pd.empty:
            raise ValueError(f"no co-occurrence counts for window {pc_.window}: run `pivot-spark cooccur` with "
                             f"cooccur.windows including {pc_.window}")
        pieces = _pieces(sp_path).tolist()
        res = build_pivots(cooc_pd, stats_pd, n_docs=n_docs, pieces=pieces, content=content, cfg=pc_,
                           pivot_set=label, tokenizer=tok, stop_ids=stops, docs_by_lang=docs_by_lang)
        table = pa.Table.from_pandas(res.pivots, preserve_index=False)
        ctx.write_arrow(table, "pivots", mode="overwrite", predicate=f"pivot_set = '{label}'")
        top = res.pivots.head(20)
        return {"pivot_set": label, "tokenizer": tok, "window": pc_.window, "pivots": len(res.pivots),
                "graph_edges": len(cooc_pd), "documents": n_docs, "dropped": res.dropped(),
                "top20": " ".join(top["piece"].tolist())}

    return run_job(cfg, "pivots", body, input_tables=("cooccurrence", "token_stats", "doc_tokens", "doc_lang"),
                   identity={"pivot_set": label}, quiet=quiet)


def _need_pivot_set(lake: Lake, cfg: PivotConfig, then: str) -> str:
    label = cfg.score.pivot_set or current_pivot_set(lake)
    if label is None:
        raise FileNotFoundError(f"no pivot set in this lake: run `pivot-spark pivots` {then}")
    return label


def score(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    label = _need_pivot_set(lake, cfg, "first")

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.score import score_docs

        piv = ctx.read_arrow("pivots", partition_filters=[("pivot_set", "=", label)], columns=["token_id"])
        if piv.num_rows == 0:
            raise ValueError(f"pivot set {label} is empty or absent from `pivots`")
        pivot_ids = piv["token_id"].to_numpy()
        sp_name = _ship(ctx, str(models.tokenizer_path(ctx.lake.uri, tok)))
        stop_list = cfg.cooccur.stop_list
        docs = (ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
                .select("doc_id", "token_ids", "token_langs")
                .repartition(ctx.spark.sparkContext.defaultParallelism * 4))

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            content, stops = content_and_stops(_shipped(sp_name), stop_list)
            for b in batches:
                yield from score_docs(b, pivot_ids=pivot_ids, content=content, pivot_set=label,
                                      stop_ids=stops).to_batches()

        scored = docs.mapInArrow(run, from_arrow_schema(DOC_PIVOT))
        n = ctx.write(scored, "doc_pivot", mode="overwrite", partition_filters=[("pivot_set", "=", label)])
        return {"pivot_set": label, "documents": n, "pivot_tokens": len(pivot_ids)}

    return run_job(cfg, "score", body, input_tables=("doc_tokens", "pivots"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)


def select(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    label = _need_pivot_set(lake, cfg, "and `score` first")
    sc = cfg.select

    def body(ctx: RunContext) -> dict[str, Any]:
        import pandas as pd
        from pyspark.sql import functions as F

        from pivot_spark.steps.select import assign_shards, lang_mix, select_arm

        meta: pd.DataFrame = (ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)])
                .filter(F.col("n_tokens") >= sc.min_tokens)
                .select("doc_id", "n_tokens", "pivot_proportion", "lang").toPandas())
        if meta.empty:
            raise ValueError(f"no scored documents for pivot set {label}: run `pivot-spark score`")
        meta = meta.sort_values("doc_id", kind="stable").reset_index(drop=True)
        chosen: dict[str, list[str]] = {}
        report: dict[str, Any] = {}
        for arm in sc.arms:
            ref = lang_mix(meta, chosen["pivot"]) if arm == "langmatch" and "pivot" in chosen else None
            if arm == "langmatch" and ref is None:
                ref_ids = select_arm(meta, "pivot", token_budget=sc.token_budget, seed=sc.seed,
                                     pivot_random_share=sc.pivot_random_share)
                ref = lang_mix(meta, ref_ids)
            ids = select_arm(meta, arm, token_budget=sc.token_budget, seed=sc.seed,  # type: ignore[arg-type]
                             pivot_random_share=sc.pivot_random_share,
                             reference_lang_mix=_as_mix(ref) if ref is not None else None)
            chosen[arm] = ids
            mix = lang_mix(meta, ids)
            sub = meta.set_index("doc_id").loc[ids]
            report[arm] = {"documents": len(ids), "tokens": int(sub["n_tokens"].sum()),
                           "mean_pivot_proportion": round(float(sub["pivot_proportion"].mean()), 4),
                           "lang_mix": _mix_summary(mix)}
        rows = []
        for arm, ids in chosen.items():
            shards = assign_shards(ids, sc.n_shards, sc.seed)
            rows.append(pd.DataFrame({"arm": arm, "doc_id": ids, "shard": shards.astype("int32")}))
        picks = ctx.spark.createDataFrame(pd.concat(rows, ignore_index=True))
        toks = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select("doc_id", "token_ids", "n_tokens")
        lang = ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)]).select("doc_id", "lang")
        out = (picks.join(toks, "doc_id").join(lang, "doc_id", "left")
               .withColumn("selection", F.lit(sc.selection)).withColumn("tokenizer", F.lit(tok)))
        n = ctx.write(out, "train_set", mode="overwrite", partition_filters=[("selection", "=", sc.selection)])
        if not quiet:
            for arm, r in report.items():
                print(f"arm {arm:10s} docs {r['documents']:8,d}  tokens {r['tokens']:12,d}  "
                      f"pivot proportion {r['mean_pivot_proportion']:.3f}  languages {r['lang_mix']}")
        return {"selection": sc.selection, "pivot_set": label, "rows": n, "token_budget": sc.token_budget,
                "arms": report, "tokenizer": tok}

    return run_job(cfg, "select", body, input_tables=("doc_pivot", "doc_tokens"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)


def _as_mix(mix: Any) -> dict[str, float]:
    if isinstance(mix, dict):
        return mix
    df = mix
    col = "token_share" if "token_share" in df.columns else df.columns[-1]
    return {str(k): float(v) for k, v in zip(df["lang"], df[col], strict=True)}


def _mix_summary(mix: Any) -> str:
    m = _as_mix(mix)
    top = sorted(m.items(), key=lambda kv: -kv[1])[:6]
    return " ".join(f"{k}:{v:.2f}" for k, v in top)
