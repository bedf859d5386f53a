"""Delta Lake IO behind one small interface, without Spark.

A lake is a root URI holding one Delta table per name (``{root}/{table}``). This module has the parts that need no
Spark: table URIs, pinned versions, driver-side reads of small tables, driver-side commits of small Arrow tables and
of file lists written by Spark tasks (the delta-rs bridge). :mod:`pivot_spark.lake.spark` adds the Spark side.

Idempotency: every commit carries an application transaction ``(app_id, 1)`` with
``app_id = "pivot-spark/{job}/{table}/{run_id}"``. Before committing, the writer asks the table whether that app id
was already committed; if so the write is skipped. A repeated run (same run id) therefore commits nothing twice.
Run ids are strings (user-given or derived from the job's inputs), not monotonic numbers, so the run id lives in the
app id and the version is fixed at 1.

Concurrent commits on S3: delta-rs writes each commit file ``_delta_log/<version>.json`` with a conditional PUT
(``If-None-Match: *``), so of two writers that race for the same version exactly one succeeds; the other sees the
refusal, re-reads the log, checks its changes against the winner's and commits the next version. An S3 lake
gets ``AWS_CONDITIONAL_PUT=etag`` (object_store's name for that mechanism) unless its options or the environment
set it (:func:`commit_options`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, Schema, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)

from pivot_spark import artifacts
from pivot_spark.io.fs import Location, location
from pivot_spark.lake.reader import VersionNotFound
from pivot_spark.names import equals_predicate
from pivot_spark.schemas import TABLES

WriteMode = Literal["append", "overwrite"]
PartitionFilter = Sequence[tuple[str, str, Any]]

S3_SCHEMES = ("s3://", "s3a://")
# The object_store option that makes S3 commits conditional writes, under the names delta-rs accepts.
CONDITIONAL_PUT_KEYS = ("AWS_CONDITIONAL_PUT", "CONDITIONAL_PUT")


def commit_options(uri: str, storage_options: Mapping[str, str] | None) -> dict[str, str]:
    """The delta-rs options of the lake at ``uri``: ``storage_options`` as given, plus, on S3,
    ``AWS_CONDITIONAL_PUT=etag`` (commit files written with ``If-None-Match: *``) unless the options (any case)
    or the environment (``AWS_CONDITIONAL_PUT``) already say how."""
    options = dict(storage_options or {})
    if uri.lower().startswith(S3_SCHEMES) and not os.environ.get("AWS_CONDITIONAL_PUT") \
            and not {k.upper() for k in options} & set(CONDITIONAL_PUT_KEYS):
        options["AWS_CONDITIONAL_PUT"] = "etag"
    return options


# Attempts of a commit that meets a table being created by another writer at the same moment.
CREATE_RACE_ATTEMPTS = 5


def _creation_conflict(error: BaseException) -> bool:
    """A failed commit whose cause is another writer's creation of the table (its protocol and metadata)."""
    text = str(error).lower()
    return isinstance(error, CommitFailedError) and ("metadata changed" in text or "protocol changed" in text)


class RowLike(Protocol):
    """A row read by field name: a dict, or a Spark ``Row`` collected to the driver."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class FileEntry:
    """One Parquet file written into a table folder by a Spark task, not yet committed."""

    path: str  # relative to the table root, with Hive-style partition folders
    size: int
    partition_values: dict[str, str | None]
    num_records: int
    stats: str = ""  # Delta stats JSON; numRecords at least

    @classmethod
    def from_meta(cls, row: RowLike) -> FileEntry:
        """The entry of one row of file metadata as a writing task reports it (the fields of
        :data:`pivot_spark.lake.spark.FILE_META`; ``partition_values`` is a JSON object)."""
        return cls(row["path"], row["size"], json.loads(row["partition_values"]), row["num_records"], row["stats"])

    def to_add(self) -> AddAction:
        stats = self.stats or json.dumps({"numRecords": self.num_records})
        return AddAction(self.path, self.size, self.partition_values, int(time.time() * 1000), True, stats)


@dataclass
class CommitResult:
    table: str
    version: int | None  # the table's version after the call (None: table still absent)
    committed: bool  # False when the app transaction had already been committed (a repeated run)
    rows: int = 0
    files: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Lake:
    """A root URI with one Delta table per name.

    ``storage_options`` go to delta-rs (object-store credentials on ``s3://``, with :func:`commit_options`) and to
    ``pyarrow.fs`` for the files the lake holds besides its tables (:attr:`store`). Keys absent from them come
    from the environment, for both.
    """

    def __init__(self, uri: str, storage_options: Mapping[str, str] | None = None) -> None:
        self.uri = uri.rstrip("/")
        if "://" not in self.uri:
            self.uri = os.path.abspath(self.uri)
        self.storage_options = commit_options(self.uri, storage_options)
        self._store: Location | None = None

    # -- locating -----------------------------------------------------------------------------------------------
    def table_uri(self, table: str) -> str:
        return f"{self.uri}/{table}"

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")

    @property
    def store(self) -> Location:
        """The lake's root as a ``pyarrow.fs`` filesystem and path, for the files beside its tables (intent files,
        models): ``store.fs`` opens ``f"{store.root}/_runs/..."`` on any filesystem the lake can be on."""
        if self._store is None:
            self._store = location(self.uri, self.storage_options)
        return self._store

    def tokenizer_path(self, tok_hash: str) -> Path:
        """A local path of the lake's tokenizer ``tok_hash`` (:func:`pivot_spark.artifacts.tokenizer_path`)."""
        return artifacts.tokenizer_path(self.uri, tok_hash, self.storage_options)

    def store_tokenizer(self, model_file: str | os.PathLike[str]) -> str:
        """Store a SentencePiece model in the lake under its content hash; return the hash
        (:func:`pivot_spark.artifacts.store_tokenizer`)."""
        return artifacts.store_tokenizer(self.uri, model_file, self.storage_options)

    def delta(self, table: str, version: int | None = None) -> DeltaTable | None:
        """The table at ``version`` (the newest when None); None when it does not exist; :class:`VersionNotFound`
        when it exists but not at ``version``."""
        try:
            return DeltaTable(self.table_uri(table), version=version, storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None
        except DeltaError:
            if version is None:
                raise
            latest = self.delta(table)
            if latest is None:
                return None
            raise VersionNotFound(
                f"table {table} of lake {self.uri} has no version {version} (its newest is {latest.version()}; "
                "older versions may have been vacuumed): pick a version that `pivot-spark status` lists or the "
                "`runs` table records") from None

    def exists(self, table: str) -> bool:
        return self.delta(table) is not None

    def version(self, table: str) -> int | None:
        dt = self.delta(table)
        return None if dt is None else dt.version()

    def versions(self, tables: Sequence[str]) -> dict[str, int | None]:
        return {t: self.version(t) for t in tables}

    def tables(self) -> list[str]:
        return [t for t in TABLES if self.exists(t)]

    def file_uris(self, table: str, version: int | None = None, partition_filters: PartitionFilter | None = None
                  ) -> list[str]:
        """Active files of a pinned version: the only correct way to read a bridge-written table's Parquet."""
        dt = self.delta(table, version)
        if dt is None:
            return []
        return dt.file_uris(file_pruning_predicate=list(partition_filters) if partition_filters else None)

    def row_count(self, table: str, version: int | None = None) -> int:
        """Rows of a pinned version from the log's per-file statistics (a scan where a file has none); 0 when
        the table does not exist."""
        dt = self.delta(table, version)
        if dt is None:
            return 0
        acts = dt.get_add_actions(flatten=True)
        col = acts.column("num_records") if "num_records" in acts.schema.names else None
        if col is not None and col.null_count == 0:
            return int(sum(col.to_pylist()))
        return int(dt.to_pyarrow_dataset().count_rows())

    def committed(self, table: str, app_id: str) -> bool:
        dt = self.delta(table)
        return dt is not None and (dt.transaction_version(app_id) or 0) >= 1

    # -- driver-side reads of small tables ------------------------------------------------------------------------
    def read_arrow(self, table: str, version: int | None = None, *, columns: list[str] | None = None,
                   partition_filters: PartitionFilter | None = None, filter: pc.Expression | None = None
                   ) -> pa.Table:
        dt = self.delta(table, version)
        schema = TABLES[table][0] if table in TABLES else None
        if dt is None:
            if schema is None:
                raise FileNotFoundError(f"table {table} not in lake {self.uri}")
            empty = schema.empty_table()
            return empty.select(columns) if columns else empty
        ds = dt.to_pyarrow_dataset(file_pruning_predicate=list(partition_filters) if partition_filters else None)
        return ds.to_table(columns=columns, filter=filter)

    # -- commits --------------------------------------------------------------------------------------------------
    def commit_files(self, table: str, files: Sequence[FileEntry], *, mode: WriteMode, app_id: str,
                     partition_filters: PartitionFilter | None = None, schema: pa.Schema | None = None,
                     removes: Sequence[RemoveAction] = ()) -> CommitResult:
        """Commit files that tasks wrote into the table folder, in ONE Delta transaction tagged with ``app_id``.

        ``mode="overwrite"`` with ``partition_filters`` replaces only the matching partitions. ``removes``: active
        files that the same transaction removes (``mode="append"``: a rewrite of some files). An empty
        file list still commits (so an overwrite to empty removes rows and a repeated run is recognised). Two
        writers creating the same table at once both land: the second appends to the table the first created.
        """
        schema = schema or TABLES[table][0]
        partition_by = TABLES[table][1] if table in TABLES else []
        dt = self.delta(table)
        props = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=1)],
                                 custom_metadata={"pivot_spark.app_id": app_id})
        rows = sum(f.num_records for f in files)
        if dt is not None and (dt.transaction_version(app_id) or 0) >= 1:
            return CommitResult(table, dt.version(), False, rows, len(files))
        if dt is None and removes:
            raise FileNotFoundError(f"table {table} does not exist: no file of it to remove")
        actions: list[AddAction | RemoveAction] = [*(f.to_add() for f in files), *removes]
        for attempt in range(1, CREATE_RACE_ATTEMPTS + 1):
            try:
                if dt is None:
                    create_table_with_add_actions(
                        self.table_uri(table), Schema.from_arrow(schema), [f.to_add() for f in files],
                        mode="error", partition_by=partition_by or None,
                        storage_options=self.storage_options or None, commit_properties=props)
                else:
                    dt.create_write_transaction(
                        actions, mode=mode, schema=schema, partition_by=partition_by or None,
                        partition_filters=list(partition_filters) if partition_filters else None,
                        commit_properties=props)
                break
            except (CommitFailedError, DeltaError) as e:  # as in write_arrow: a creation race, nothing visible
                if attempt == CREATE_RACE_ATTEMPTS or not (dt is None or _creation_conflict(e)):
                    raise
                dt = self._created_meanwhile(table)
                if (dt.transaction_version(app_id) or 0) >= 1:
                    return CommitResult(table, dt.version(), False, rows, len(files))
        return CommitResult(table, self.version(table), True, rows, len(files))

    def _created_meanwhile(self, table: str) -> DeltaTable:
        """After a failed creation of ``table``: the table another writer created meanwhile (the creation's own
        error again when there is none)."""
        dt = self.delta(table)
        if dt is None:
            raise
        return dt

    def write_arrow(self, table: str, data: pa.Table, *, mode: WriteMode, app_id: str,
                    replace_where: Mapping[str, str] | None = None) -> CommitResult:
        """Driver-side write of a small Arrow table (runs, pivots) with the same idempotency as ``commit_files``.

        ``mode="overwrite"`` with ``replace_where`` (column -> value) replaces only the rows with those values
        (the predicate is built with quoted literals, :func:`pivot_spark.names.equals_predicate`). An append to a
        table written before its contract gained columns adds them to the table's schema (Delta schema merge):
        its older rows read as null there. Two writers creating the same table at once both land.
        """
        schema, partition_by = TABLES[table]
        data = data.select(schema.names).cast(schema)
        predicate = equals_predicate(dict(replace_where)) if replace_where else None
        props = CommitProperties(app_transactions=[Transaction(app_id=app_id, version=1)],
                                 custom_metadata={"pivot_spark.app_id": app_id})
        for attempt in range(1, CREATE_RACE_ATTEMPTS + 1):
            dt = self.delta(table)
            if dt is not None and (dt.transaction_version(app_id) or 0) >= 1:
                return CommitResult(table, dt.version(), False, data.num_rows)
            options: dict[str, Any] = {}
            if dt is not None and mode == "append" and set(schema.names) - {f.name for f in dt.schema().fields}:
                options["schema_mode"] = "merge"
            try:
                write_deltalake(self.table_uri(table), data, mode=mode,  # type: ignore[arg-type]
                                partition_by=partition_by or None, predicate=predicate if dt is not None else None,
                                storage_options=self.storage_options or None, commit_properties=props, **options)
                break
            except (CommitFailedError, DeltaError) as e:
                # A table being created by several writers at once: the creations that lose (one wins) fail, and
                # appends that overlap a creation retried at a later version see its metadata change. Nothing
                # of the failed commit is visible, so writing again (to the table that exists now) is safe.
                if attempt == CREATE_RACE_ATTEMPTS or not (dt is None or _creation_conflict(e)):
                    raise
                self._created_meanwhile(table)
        return CommitResult(table, self.version(table), True, data.num_rows)

    def history(self, table: str, limit: int = 5) -> list[dict[str, Any]]:
        dt = self.delta(table)
        return [] if dt is None else dt.history(limit)


def app_id_for(job: str, table: str, run_id: str) -> str:
    return f"pivot-spark/{job}/{table}/{run_id}"
