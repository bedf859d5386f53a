"""The Spark side of the lake: pinned reads and committed writes of DataFrames.

Two backends behind the same two calls, ``read_table`` and ``write_table``:

- **native**: ``df.write.format("delta")`` with ``txnAppId``/``txnVersion`` when the Delta jars are on the classpath
  (production images); reads with ``versionAsOf``.
- **bridge** (default here, where the jars cannot be had): each Spark task writes Parquet files for its rows into
  the table folder (Hive-style partition folders) and returns only file metadata (path, size, partition values,
  stats); the driver commits all of them in ONE Delta transaction with delta-rs. No table data reaches the driver.
  A failed job commits nothing (its files are orphans that ``VACUUM`` removes); a retried task's first attempt is
  never committed because only the successful attempts' metadata is returned.

Reads always pin a version and read exactly that version's active files; reading the folder as plain Parquet would
resurrect removed files. With the bridge, a local lake is read by Spark's Parquet reader, an object-store lake by
the tasks themselves through ``pyarrow.fs`` (as they write it), so neither side needs a Hadoop filesystem for the
store.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from pivot_spark.io.fs import location
from pivot_spark.lake.core import CommitResult, FileEntry, Lake, PartitionFilter, WriteMode
from pivot_spark.schemas import TABLES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

FILE_META = pa.schema([
    pa.field("path", pa.string()),
    pa.field("size", pa.int64()),
    pa.field("partition_values", pa.string()),
    pa.field("num_records", pa.int64()),
    pa.field("stats", pa.string()),
])

# What a writing task runs: its rows in, one FILE_META row per file written out.
FileWriter = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]

# Rows per Parquet row group, per table: the trainer splits work by row group, so train_set keeps them small.
ROW_GROUP_ROWS = {"train_set": 256, "doc_tokens": 2048, "documents": 2048}
DEFAULT_ROW_GROUP_ROWS = 65536
MAX_ROWS_PER_FILE = 2_000_000
SAFE_PARTITION_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def spark_schema(table: str) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(TABLES[table][0])


def native_available(spark: SparkSession) -> bool:
    try:
        spark.sparkContext._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
        return True
    except Exception:
        return False


def resolve_backend(spark: SparkSession, backend: str) -> str:
    if backend == "auto":
        return "native" if native_available(spark) else "bridge"
    if backend == "native" and not native_available(spark):
        raise RuntimeError("lake.backend=native but the Delta Lake jars are not on the classpath; "
                           "use the Spark image (docker/spark) or lake.backend=bridge")
    return backend


def _check_partition_value(col: str, value: Any) -> str:
    if value is None:
        raise ValueError(f"partition column {col} is null")
    s = str(value)
    if not s or not set(s) <= SAFE_PARTITION_CHARS:
        raise ValueError(f"partition value {col}={s!r}: use letters, digits, '.', '_' and '-' only")
    return s


def _stats(table: pa.Table) -> str:
    """Delta file statistics: record count plus min/max/null counts of the primitive columns (data skipping)."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        nulls[name] = col.null_count
        if (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)) and col.null_count < len(col):
            mm = pc.min_max(col)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if isinstance(lo, str):  # Delta truncates string stats; keep them short
                lo, hi = lo[:32], None if len(hi) > 32 else hi
            if isinstance(lo, float) and (lo != lo or hi != hi):
                continue
            mins[name] = lo
            if hi is not None:
                maxs[name] = hi
    return json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls},
                      default=str)


def filesystem(table_uri: str, storage_options: dict[str, str] | None = None) -> tuple[pafs.FileSystem, str]:
    """The Arrow filesystem and root path of a table URI: the lake's storage options (endpoint, credentials,
    region; :func:`pivot_spark.io.fs.location`), the environment where a key is absent."""
    loc = location(table_uri, storage_options)
    return loc.fs, loc.root


# One piece of a task's input for a direct read: a file of the pinned version, some of its row groups, and
# the partition values its folder stands for.
ReadPiece = tuple[str, list[int], dict[str, str | None]]
# A row slice of one row group: (file, row group, first row, end row, partition values).
RowSlice = tuple[str, int, int, int, dict[str, str | None]]


def _active_files(lake: Lake, table: str, version: int | None, partition_filters: PartitionFilter | None
                  ) -> list[tuple[str, dict[str, str | None]]]:
    """(path, partition values) of the active files of a pinned version that pass ``partition_filters``."""
    dt = lake.delta(table, version)
    if dt is None:
        return []
    adds = pa.table(dt.get_add_actions(flatten=True))
    pcols = [c for c in adds.column_names if c.startswith("partition.")]
    out = []
    for r in adds.select(["path", *pcols]).to_pylist():
        pv = {c.removeprefix("partition."): (None if r[c] is None else str(r[c])) for c in pcols}
        if all(_partition_match(pv.get(col), op, val) for col, op, val in partition_filters or []):
            out.append((r["path"], pv))
    return out


def _deal(weighted: list[tuple[float, Any]], n_units: int) -> list[list[Any]]:
    """Items dealt largest weight first, each to the unit with the least weight so far (ties: lowest index);
    at most ``n_units`` units, none empty. ``weighted`` must already be in a deterministic order for ties."""
    n = max(1, min(n_units, len(weighted)))
    load = [0.0] * n
    units: list[list[Any]] = [[] for _ in range(n)]
    for weight, item in sorted(weighted, key=lambda t: -t[0]):  # stable: equal weights keep their order
        i = min(range(n), key=lambda k: (load[k], k))
        load[i] += weight
        units[i].append(item)
    return [u for u in units if u]


def plan_read_units(lake: Lake, table: str, version: int | None, n_units: int,
                    partition_filters: PartitionFilter | None = None) -> list[list[ReadPiece]]:
    """Split the active files of ``table`` at ``version`` into at most ``n_units`` task inputs of similar size.

    Row groups are the unit of work (their uncompressed sizes come from the Parquet footers); they are dealt to
    units largest first, each to the unit with the fewest bytes so far, then grouped per file. Only for bridge
    tables, which are plain Parquet files with no deletion vectors: each unit is read with
    :func:`read_unit_batches` inside a Spark task, without a pass through the JVM.
    """
    keep = _active_files(lake, table, version, partition_filters)
    fs, root = filesystem(lake.table_uri(table), lake.storage_options)
    groups: list[tuple[float, tuple[str, int]]] = []
    for path, _pv in keep:
        with fs.open_input_file(f"{root}/{path}") as f:
            md = pq.ParquetFile(f).metadata
        groups += [(md.row_group(i).total_byte_size, (path, i)) for i in range(md.num_row_groups)]
    pvs = dict(keep)
    out = []
    for unit in _deal(sorted(groups, key=lambda g: g[1]), n_units):
        per_file: dict[str, list[int]] = {}
        for path, rg in unit:
            per_file.setdefault(path, []).append(rg)
        out.append([(path, sorted(rgs), pvs[path]) for path, rgs in sorted(per_file.items())])
    return out


def unit_bytes(lake: Lake, table: str, unit: list[ReadPiece]) -> int:
    """Uncompressed bytes of a read unit's row groups, from the Parquet footers (on the driver: one small read
    per file), for sizing the work that follows the read."""
    fs, root = filesystem(lake.table_uri(table), lake.storage_options)
    total = 0
    for path, rgs, _pv in unit:
        with fs.open_input_file(f"{root}/{path}") as f:
            md = pq.ParquetFile(f).metadata
        total += sum(md.row_group(i).total_byte_size for i in rgs)
    return total


def plan_row_slices(lake: Lake, table: str, version: int | None, n_units: int, weight_column: str,
                    partition_filters: PartitionFilter | None = None) -> list[list[RowSlice]]:
    """Like :func:`plan_read_units`, but balanced by a per-row weight column (e.g. ``documents.n_bytes``) and
    cutting row groups into slices: rows are grouped into slices of about ``total / (4 n_units)`` weight (a
    heavier row is a slice of its own), and slices are dealt largest first to the lightest unit. For tables whose
    row costs differ a lot (multi-MB manual pages among short descriptions). Reads only the weight column."""
    fs, root = filesystem(lake.table_uri(table), lake.storage_options)
    groups: list[tuple[str, int, Any, dict[str, str | None]]] = []
    for path, pv in _active_files(lake, table, version, partition_filters):
        with fs.open_input_file(f"{root}/{path}") as f:
            pf = pq.ParquetFile(f)
            for rg in range(pf.metadata.num_row_groups):
                w = pf.read_row_group(rg, columns=[weight_column]).column(0).fill_null(0).to_numpy()
                groups.append((path, rg, w, pv))
    total = float(sum(g[2].sum() for g in groups)) or 1.0
    target = total / max(4 * n_units, 1)
    slices: list[tuple[float, RowSlice]] = []
    for path, rg, w, pv in groups:
        start, acc = 0, 0.0
        for i, x in enumerate(w):
            if acc and acc + x > target:
                slices.append((acc, (path, rg, start, i, pv)))
                start, acc = i, 0.0
            acc += float(x)
        if start < len(w):
            slices.append((acc, (path, rg, start, len(w), pv)))
    units = _deal(sorted(slices, key=lambda t: (t[1][0], t[1][1], t[1][2])), n_units)
    return [sorted(u, key=lambda sl: (sl[0], sl[1], sl[2])) for u in units]


def _with_partitions(t: pa.Table | pa.RecordBatch, table: str, columns: list[str], pv: dict[str, str | None]
                     ) -> pa.RecordBatch:
    """``columns`` of rows read from one file, the partition columns filled in from its folder's values (typed
    by the table schema)."""
    schema, partition_by = TABLES[table]
    if isinstance(t, pa.RecordBatch):
        t = pa.Table.from_batches([t])
    arrays = [pa.array([pv.get(c)] * t.num_rows, schema.field(c).type) if c in partition_by
              else t.column(c).combine_chunks() for c in columns]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([schema.field(c) for c in columns]))


def read_slice_batches(table_uri: str, table: str, unit: list[RowSlice], columns: list[str],
                       storage_options: dict[str, str] | None = None) -> Iterator[pa.RecordBatch]:
    """The rows of one unit of :func:`plan_row_slices` (partition columns filled in), read with pyarrow."""
    fs, root = filesystem(table_uri, storage_options)
    file_cols = [c for c in columns if c not in TABLES[table][1]]
    for path, rg, start, stop, pv in unit:
        with fs.open_input_file(f"{root}/{path}") as f:
            t = pq.ParquetFile(f).read_row_group(rg, columns=file_cols).slice(start, stop - start)
        yield _with_partitions(t, table, columns, pv)


def _partition_match(value: str | None, op: str, target: Any) -> bool:
    if op == "=":
        return value == str(target)
    if op == "in":
        return value in {str(t) for t in target}
    raise ValueError(f"partition filter op {op!r}")


def read_unit_batches(table_uri: str, table: str, unit: list[ReadPiece], columns: list[str],
                      storage_options: dict[str, str] | None = None, batch_size: int = 8192
                      ) -> Iterator[pa.RecordBatch]:
    """The rows of one read unit as Arrow batches with ``columns`` (partition columns filled in from the
    folder's values, typed by the table schema), straight from the Parquet files (runs inside a task)."""
    fs, root = filesystem(table_uri, storage_options)
    file_cols = [c for c in columns if c not in TABLES[table][1]]
    for path, row_groups, pv in unit:
        with fs.open_input_file(f"{root}/{path}") as f:
            for b in pq.ParquetFile(f).iter_batches(batch_size=batch_size, row_groups=row_groups,
                                                     columns=file_cols):
                yield _with_partitions(b, table, columns, pv)


def make_file_writer(table_uri: str, table: str, file_prefix: str,
                     storage_options: dict[str, str] | None = None) -> FileWriter:
    """The function each Spark task runs (``mapInArrow``): write this partition's rows into Parquet files under
    the table folder (one file per partition value and at most ``MAX_ROWS_PER_FILE`` rows, names starting with
    ``file_prefix``) and return one :data:`FILE_META` row per file."""
    schema, partition_by = TABLES[table]
    data_schema = pa.schema([f for f in schema if f.name not in partition_by])
    rg_rows = ROW_GROUP_ROWS.get(table, DEFAULT_ROW_GROUP_ROWS)

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fs, root = filesystem(table_uri, storage_options)
        task = uuid.uuid4().hex[:12]
        pending: dict[tuple[str, ...], list[pa.Table]] = {}
        out: list[dict[str, Any]] = []

        def flush(key: tuple[str, ...]) -> None:
            parts = pending.pop(key, [])
            if not parts:
                return
            data = pa.concat_tables(parts).select(data_schema.names).cast(data_schema)
            sub = "/".join(f"{c}={v}" for c, v in zip(partition_by, key, strict=True))
            rel = f"{sub + '/' if sub else ''}{file_prefix}-{task}-{len(out):05d}.parquet"
            fs.create_dir(f"{root}/{sub}" if sub else root, recursive=True)
            with fs.open_output_stream(f"{root}/{rel}") as sink:
                pq.write_table(data, sink, row_group_size=rg_rows, compression="zstd")
            size = fs.get_file_info(f"{root}/{rel}").size
            out.append({"path": rel, "size": size,
                        "partition_values": json.dumps(dict(zip(partition_by, key, strict=True))),
                        "num_records": data.num_rows, "stats": _stats(data)})

        for rb in batches:
            if rb.num_rows == 0:
                continue
            t = pa.Table.from_batches([rb])
            if partition_by:
                keys = t.select(partition_by).group_by(partition_by).aggregate([])
                for row in keys.to_pylist():
                    key = tuple(_check_partition_value(c, row[c]) for c in partition_by)
                    mask = None
                    for c in partition_by:
                        m = pc.equal(t[c].cast(pa.string()), key[partition_by.index(c)])
                        mask = m if mask is None else pc.and_(mask, m)
                    pending.setdefault(key, []).append(t.filter(mask))
                    if sum(p.num_rows for p in pending[key]) >= MAX_ROWS_PER_FILE:
                        flush(key)
            else:
                pending.setdefault((), []).append(t)
                if sum(p.num_rows for p in pending[()]) >= MAX_ROWS_PER_FILE:
                    flush(())
        for key in list(pending):
            flush(key)
        if out:
            yield pa.RecordBatch.from_pylist(out, schema=FILE_META)

    return write


def _empty(spark: SparkSession, table: str) -> DataFrame:
    """An empty DataFrame of the table's schema, built from Arrow (no Python worker stage)."""
    return spark.createDataFrame(TABLES[table][0].empty_table(), spark_schema(table))


def read_table(spark: SparkSession, lake: Lake, table: str, version: int | None = None, *,
               backend: str = "auto", partition_filters: PartitionFilter | None = None) -> DataFrame:
    """A DataFrame of exactly the rows of ``table`` at ``version`` (the latest when None)."""
    backend = resolve_backend(spark, backend)
    schema = spark_schema(table)
    if not lake.exists(table):
        return _empty(spark, table)
    if version is None:
        version = lake.version(table)
    uri = lake.table_uri(table)
    if backend == "native":
        df = spark.read.format("delta").option("versionAsOf", version).load(uri)
        for col, op, val in partition_filters or []:
            if op == "=":
                df = df.filter(df[col] == val)
            elif op == "in":
                df = df.filter(df[col].isin(list(val)))
            else:
                raise ValueError(f"partition filter op {op!r}")
        return df.select(*schema.fieldNames())
    if not lake.is_local:
        return _read_direct(spark, lake, table, version, partition_filters)
    files = lake.file_uris(table, version, partition_filters)
    if not files:
        return _empty(spark, table)
    # basePath makes Spark parse the Hive partition folders into the partition columns (typed by our schema).
    return spark.read.schema(schema).option("basePath", uri).parquet(*files).select(*schema.fieldNames())


def _read_direct(spark: SparkSession, lake: Lake, table: str, version: int | None,
                 partition_filters: PartitionFilter | None) -> DataFrame:
    """Bridge backend, object-store lake: the pinned version's row groups read by the tasks with pyarrow
    (:func:`map_read_units`), so Spark needs no Hadoop filesystem for the store (a local Spark has no S3A); the
    storage options travel in the task closure."""
    return map_read_units(spark, lake, table, version, lambda batches: batches, spark_schema(table),
                          partition_filters=partition_filters)


def map_read_units(spark: SparkSession, lake: Lake, table: str, version: int | None,
                   fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]], schema: Any, *,
                   columns: list[str] | None = None, partition_filters: PartitionFilter | None = None,
                   batch_size: int = 8192) -> DataFrame:
    """A DataFrame of ``fn`` applied, inside the tasks, to the rows of ``table`` at ``version`` (``columns``,
    default all; partition columns filled in): the row groups are dealt into read units
    (:func:`plan_read_units`, 4 per core) and partition ``u`` reads unit ``u`` with pyarrow, so the rows reach
    ``fn`` without a pass through the JVM. ``schema`` is that of ``fn``'s output (empty when there are no rows)."""
    units = plan_read_units(lake, table, version, spark.sparkContext.defaultParallelism * 4, partition_filters)
    if not units:
        return spark.createDataFrame([], schema)
    uri, options = lake.table_uri(table), lake.storage_options
    cols = columns or TABLES[table][0].names

    def rows(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in ids:
            for uid in b.column(0).to_pylist():
                yield from read_unit_batches(uri, table, units[uid], cols, options, batch_size)

    def run(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from fn(rows(ids))

    # One row per unit and one partition per row: partition u reads exactly unit u.
    return spark.range(0, len(units), 1, numPartitions=len(units)).mapInArrow(run, schema)


def stage_files(df: DataFrame, lake: Lake, table: str, *, file_prefix: str) -> list[FileEntry]:
    """Bridge, phase 1: Spark tasks write ``df`` as Parquet files into the table folder; return their metadata.

    Nothing is visible to readers until :meth:`Lake.commit_files` commits the list.
    """
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = TABLES[table][0]
    df = df.select(*[df[f.name].cast(spark_schema(table)[f.name].dataType) for f in schema])
    writer = make_file_writer(lake.table_uri(table), table, file_prefix, lake.storage_options)
    meta = df.mapInArrow(writer, from_arrow_schema(FILE_META)).collect()  # metadata only: a row per file
    return [FileEntry.from_meta(r) for r in meta]


def write_table(df: DataFrame, lake: Lake, table: str, *, mode: WriteMode, app_id: str,
                partition_filters: PartitionFilter | None = None, backend: str = "auto") -> CommitResult:
    """Write ``df`` as one commit of ``table`` tagged with ``app_id``; a repeated ``app_id`` commits nothing."""
    backend = resolve_backend(df.sparkSession, backend)
    if lake.committed(table, app_id):
        return CommitResult(table, lake.version(table), False)
    if backend == "native":
        return write_native(df, lake, table, mode=mode, app_id=app_id, partition_filters=partition_filters)
    files = stage_files(df, lake, table, file_prefix=file_prefix_of(app_id))
    return lake.commit_files(table, files, mode=mode, app_id=app_id, partition_filters=partition_filters)


def file_prefix_of(app_id: str) -> str:
    return app_id.rsplit("/", 1)[-1][:40].replace(".", "-")


def write_native(df: DataFrame, lake: Lake, table: str, *, mode: WriteMode, app_id: str,
                 partition_filters: PartitionFilter | None = None) -> CommitResult:
    """Native backend: Delta's own writer, idempotent through ``txnAppId``/``txnVersion``."""
    schema, partition_by = TABLES[table]
    df = df.select(*[df[f.name].cast(spark_schema(table)[f.name].dataType) for f in schema])
    w = (df.write.format("delta").mode(mode).option("txnAppId", app_id).option("txnVersion", 1)
         .option("userMetadata", app_id))
    if partition_by:
        w = w.partitionBy(*partition_by)
    if mode == "overwrite" and partition_filters:
        clauses = []  # values checked to the partition value characters: no quote can end a literal
        for col, op, val in partition_filters:
            if op == "=":
                clauses.append(f"{col} = '{_check_partition_value(col, val)}'")
            elif op == "in":
                clauses.append(f"{col} IN ({', '.join(repr(_check_partition_value(col, v)) for v in val)})")
            else:
                raise ValueError(f"partition filter op {op!r}")
        w = w.option("replaceWhere", " AND ".join(clauses))
    w.save(lake.table_uri(table))
    return CommitResult(table, lake.version(table), True)
