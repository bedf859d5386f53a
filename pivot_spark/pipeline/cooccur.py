"""``pivot-spark cooccur``: windowed pair counts of every (snapshot, window) not yet counted for the current
tokenizer, written to ``cooccurrence``, with the per-token counts in ``token_stats``.

Counts are additive: each snapshot's rows are its own, so an incremental rebuild counts only the new documents;
``token_stats`` is per snapshot and window-independent, so the snapshots counted now are rewritten there. Map
tasks count their documents with numpy into packed int64 keys of one run-wide language table and merge them before
anything leaves the task; reduce tasks sum their keys, prune pairs by ``min_count`` and decode them
(:mod:`pivot_spark.steps.cooccur_packed`). Two plans run these kernels, sharing one :class:`CountPlan`:

- **direct** (bridge backend with ``cooccur.direct_read``, the default there): tasks read the row groups of the
  pinned ``doc_tokens`` files with pyarrow, the partials travel as Arrow IPC blobs routed by key hash
  (``RDD.partitionBy``: Spark's shuffle moves bytes, not rows), and each reduce task writes its ``cooccurrence``
  and ``token_stats`` files itself.
- **DataFrame** (native backend, or ``cooccur.direct_read=false``): ``mapInArrow`` over the table as Spark reads
  it, ``repartition`` by key, a ``mapInArrow`` reduce, and the decoded rows written through the lake layer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.lake.spark import (
    ReadPiece,
    file_prefix_of,
    make_file_writer,
    plan_read_units,
    read_unit_batches,
    unit_bytes,
)
from pivot_spark.pipeline.catalog import COOCCUR_JOB, CatalogEntry, counted, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.pipeline.tasks import collect_task_output, counts_row, file_rows, ship_file, shipped_path
from pivot_spark.schemas import COOCCURRENCE, TOKEN_STATS
from pivot_spark.steps.cooccur import TokenBatch, keep_mask, pair_key_counts, pair_key_space, token_key_counts
from pivot_spark.steps.cooccur_packed import (
    PACKED,
    PARTIAL,
    Partials,
    as_partial,
    decode_packed,
    route_packed,
)
from pivot_spark.steps.langcodes import UNDETERMINED
from pivot_spark.steps.tokenize import content_and_stops, get_sp, vocab_pieces

OUTPUTS = ("cooccurrence", "token_stats")


@dataclass(frozen=True)
class CountPlan:
    """What the counting and reduce tasks of one run share (pickled into them): the snapshots and windows to
    count, the run-wide language table, the shipped tokenizer (and stop list) and the pruning threshold."""

    tokenizer: str
    todo: dict[str, list[int]]  # snapshot -> windows to count
    lang_names: list[str]
    vocab: int
    model_file: str  # shipped names (pivot_spark.pipeline.tasks.ship_file)
    stop_file: str | None
    max_doc_tokens: int | None
    min_count: int

    @property
    def snapshots(self) -> list[str]:
        """The snapshots counted, sorted: packed rows carry an index into this list."""
        return sorted(self.todo)

    def count(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Map side: the packed partial counts (:data:`PACKED`) of documents (``token_ids``, ``token_langs``,
        ``snapshot``; snapshots of the plan only), merged within the task."""
        content, stops = content_and_stops(shipped_path(self.model_file),
                                           shipped_path(self.stop_file) if self.stop_file else None)
        keep = keep_mask(content, stops)
        snap_of = {s: i for i, s in enumerate(self.snapshots)}
        acc = Partials()
        for b in batches:
            if not b.num_rows:
                continue
            t = pa.Table.from_batches([b])
            for snap in pc.unique(t["snapshot"]).to_pylist():
                part = t.filter(pc.equal(t["snapshot"], snap))
                batch = TokenBatch.from_arrow(part).with_lang_names(self.lang_names).truncate(self.max_doc_tokens)
                i = snap_of[snap]
                yield from acc.add(i, 0, token_key_counts(batch, keep=keep))
                for w in self.todo[snap]:
                    yield from acc.add(i, w, pair_key_counts(batch, window=w, keep=keep))
        yield from acc.drain()

    def reduce(self, packed: pa.Table) -> tuple[pa.Table, pa.Table, dict[str, int]]:
        """Reduce side: the ``cooccurrence`` and ``token_stats`` rows of one partition's packed rows, and its
        summary counts."""
        return decode_packed(packed, self.snapshots, self.vocab, self.lang_names,
                             vocab_pieces(shipped_path(self.model_file)), self.min_count, self.tokenizer)


def cooccur(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    """Count the windowed pairs of every (snapshot, window) not yet counted for the current tokenizer."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    windows = sorted(set(cfg.cooccur.windows))
    done = counted(lake, tok)

    def body(ctx: RunContext) -> dict[str, Any]:
        # bridge tables are plain Parquet files: tasks can read their row groups directly
        if ctx.backend == "bridge" and cfg.cooccur.direct_read:
            return _count_direct(ctx, tok, windows, done)
        return _count_dataframe(ctx, tok, windows, done)

    return run_job(cfg, COOCCUR_JOB, body, input_tables=("doc_tokens",),
                   identity={"tokenizer": tok, "windows": windows}, quiet=quiet)


def _count_direct(ctx: RunContext, tok: str, windows: list[int], done: set[tuple[str, int]]) -> dict[str, Any]:
    """The direct plan: read units of the pinned ``doc_tokens`` files, Arrow IPC blobs shuffled by key hash,
    reduce tasks that write the table files; the driver stages the files its tasks report."""
    cc = ctx.cfg.cooccur
    sc = ctx.spark.sparkContext
    units = plan_read_units(ctx.lake, "doc_tokens", ctx.pin("doc_tokens"), cc.partitions or sc.defaultParallelism * 4)
    uri, so = ctx.lake.table_uri("doc_tokens"), ctx.lake.storage_options

    def rows(uids: Iterable[int], columns: list[str], of: list[list[ReadPiece]]) -> Iterator[pa.RecordBatch]:
        """``columns`` of the rows of this run's tokenizer in the units ``uids`` of ``of``."""
        for uid in uids:
            for rb in read_unit_batches(uri, "doc_tokens", of[uid], ["tokenizer", *columns], so):
                yield rb.filter(pc.equal(rb.column(0), tok)).select(columns)

    def langs_and_snaps(uids: Iterable[int]) -> Iterator[tuple[str, str | None]]:
        langs: set[str | None] = set()
        snaps_seen: set[str] = set()
        for rb in rows(uids, ["token_langs", "snapshot"], units):
            if rb.num_rows:
                langs |= set(pc.unique(pc.list_flatten(rb.column(0))).to_pylist())
                snaps_seen |= set(pc.unique(rb.column(1)).to_pylist())
        yield from [("lang", v) for v in langs] + [("snapshot", v) for v in snaps_seen]

    # A first small stage: the snapshots of this tokenizer and the run-wide language table.
    with ctx.describe("find the languages and snapshots"):
        found = set(sc.parallelize(range(len(units)), max(len(units), 1)).mapPartitions(langs_and_snaps).collect())
    todo = _pending(ctx, tok, sorted(str(v) for k, v in found if k == "snapshot" and v is not None), windows, done)
    if not todo:
        return _nothing_to_count(tok)
    plan = _plan(ctx, tok, todo, {v for k, v in found if k == "lang"})

    todo_units = [[piece for piece in u if piece[2].get("snapshot") in todo] for u in units]
    todo_units = [u for u in todo_units if u]
    input_bytes = sum(unit_bytes(ctx.lake, "doc_tokens", u) for u in todo_units)
    # one reduce task per 8 MB of token data (uncompressed row-group bytes), at least one per core
    n_reduce = cc.reduce_partitions or max(sc.defaultParallelism, -(-input_bytes // (8 << 20)))
    prefix = file_prefix_of(ctx.app_id("cooccurrence"))
    writers = {t: make_file_writer(ctx.lake.table_uri(t), t, prefix, ctx.lake.storage_options) for t in OUTPUTS}

    def count(uids: Iterable[int]) -> Iterator[tuple[int, bytes]]:
        for rb in plan.count(rows(uids, ["token_ids", "token_langs", "snapshot"], todo_units)):
            yield from route_packed(rb, n_reduce)

    def reduce(items: Iterable[tuple[int, bytes]]) -> Iterator[dict[str, Any]]:
        parts = [b for _, blob in items for b in pa.ipc.open_stream(blob)]
        if not parts:
            return
        pairs, stats, counts = plan.reduce(pa.Table.from_batches(parts, PACKED))
        for table, data in zip(OUTPUTS, (pairs, stats), strict=True):
            if data.num_rows:
                for rb in file_rows(table, writers[table], iter(data.to_batches(max_chunksize=1_000_000))):
                    yield from rb.to_pylist()
        yield from counts_row(counts).to_pylist()

    with ctx.describe("count pairs, shuffle, sum, write files"):
        out = collect_task_output(sc.parallelize(range(len(todo_units)), len(todo_units)).mapPartitions(count)
                                  .partitionBy(n_reduce, _identity).mapPartitions(reduce).collect(), OUTPUTS)
    ctx.stage_files("cooccurrence", out.files["cooccurrence"])
    ctx.stage_files("token_stats", out.files["token_stats"], mode="overwrite",
                    partition_filters=[("snapshot", "in", plan.snapshots)])
    return _summary(plan, windows, out.rows("cooccurrence"), out.counts)


def _count_dataframe(ctx: RunContext, tok: str, windows: list[int], done: set[tuple[str, int]]
                     ) -> dict[str, Any]:
    """The DataFrame plan: the same counting and reduce kernels over the table as Spark reads it, the decoded
    rows written through :meth:`RunContext.write` (Delta's writer on the native backend)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    cc = ctx.cfg.cooccur
    docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
    with ctx.describe("find the snapshots"):
        snapshots = sorted(r["snapshot"] for r in docs.select("snapshot").distinct().collect())
    todo = _pending(ctx, tok, snapshots, windows, done)
    if not todo:
        return _nothing_to_count(tok)
    docs = docs.filter(F.col("snapshot").isin(list(todo))).select("token_ids", "token_langs", "snapshot")
    # the run-wide language table: every code a counted token carries (tiny, from one column)
    with ctx.describe("find the languages"):
        lang_set = {r["l"] for r in docs.select(F.explode(F.array_distinct("token_langs")).alias("l"))
                    .distinct().collect()}
    plan = _plan(ctx, tok, todo, lang_set)
    if cc.partitions:
        docs = docs.repartition(cc.partitions)
    n_reduce = cc.reduce_partitions or int(ctx.spark.conf.get("spark.sql.shuffle.partitions") or 200)
    shuffled = docs.mapInArrow(plan.count, from_arrow_schema(PACKED)).repartition(n_reduce, "key")

    def reduce(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        parts = [b for b in batches if b.num_rows]
        if not parts:
            return
        yield from as_partial(*plan.reduce(pa.Table.from_batches(parts))).to_batches(max_chunksize=200_000)

    rows = shuffled.mapInArrow(reduce, from_arrow_schema(PARTIAL)).persist(StorageLevel.MEMORY_AND_DISK)
    counts: Counter[str] = Counter()
    with ctx.describe("count pairs, shuffle, sum"):
        for row in rows.filter(F.col("kind") == "counts").select("piece").collect():
            counts.update(json.loads(row["piece"]))
    pairs = (rows.filter(F.col("kind") == "pair").withColumn("tokenizer", F.lit(tok)).select(*COOCCURRENCE.names))
    stats = (rows.filter(F.col("kind") == "token").withColumnRenamed("token_a", "token_id")
             .withColumnRenamed("lang_a", "lang").withColumn("tokenizer", F.lit(tok)).select(*TOKEN_STATS.names))
    n_pairs = ctx.write(pairs, "cooccurrence")
    ctx.write(stats, "token_stats", mode="overwrite", partition_filters=[("snapshot", "in", plan.snapshots)])
    rows.unpersist()
    return _summary(plan, windows, n_pairs, counts)


def _pending(ctx: RunContext, tok: str, snapshots: list[str], windows: list[int], done: set[tuple[str, int]]
             ) -> dict[str, list[int]]:
    """The windows still to count per snapshot (snapshots with none left out), recorded as the run's catalog
    entry."""
    todo = {s: [w for w in windows if (s, w) not in done] for s in snapshots}
    todo = {s: ws for s, ws in todo.items() if ws}
    ctx.catalog = CatalogEntry(tokenizer=tok, counted=tuple((s, w) for s in sorted(todo) for w in todo[s]))
    return todo


def _nothing_to_count(tok: str) -> dict[str, Any]:
    return {"tokenizer": tok, "counted": {}, "note": "every snapshot is already counted"}


def _plan(ctx: RunContext, tok: str, todo: dict[str, list[int]], lang_set: set[str | None]) -> CountPlan:
    """The run's :class:`CountPlan`: the language table (``und`` included: null languages count as und), the
    tokenizer and stop list shipped to the tasks."""
    cc = ctx.cfg.cooccur
    lang_names = sorted(v for v in lang_set if v is not None)
    if UNDETERMINED not in lang_names:
        lang_names.append(UNDETERMINED)
    sp_path = str(ctx.lake.tokenizer_path(tok))
    vocab = get_sp(sp_path).get_piece_size()
    if pair_key_space(vocab, len(lang_names)) >= 1 << 62:
        raise ValueError(f"vocabulary {vocab} x {len(lang_names)} languages does not fit a packed pair key")
    model_file = ship_file(ctx.spark, sp_path)
    stop_file = ship_file(ctx.spark, cc.stop_list) if cc.stop_list else None
    return CountPlan(tokenizer=tok, todo=todo, lang_names=lang_names, vocab=vocab, model_file=model_file,
                     stop_file=stop_file, max_doc_tokens=cc.max_doc_tokens, min_count=cc.min_count)


def _summary(plan: CountPlan, windows: list[int], n_pairs: int, counts: Counter[str]) -> dict[str, Any]:
    return {
        "tokenizer": plan.tokenizer, "counted": plan.todo, "cooccurrence_rows": n_pairs,
        "languages": len(plan.lang_names),
        "pair_occurrences": {str(w): counts.get(f"pair_occurrences.{w}", 0) for w in windows},
        "distinct_pairs": {str(w): counts.get(f"distinct_pairs.{w}", 0) for w in windows},
        "kept_pairs": {str(w): counts.get(f"kept_pairs.{w}", 0) for w in windows},
        "token_rows": counts.get("token_rows", 0),
    }


def _identity(r: int) -> int:
    """Partition function of the shuffle: items arrive keyed by their reduce partition already."""
    return r
