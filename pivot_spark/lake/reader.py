"""One read-only interface to tables, with a lake or an offline bundle behind it.

``open_reader(uri)`` returns a :class:`TableReader`: a :class:`LakeReader` for a lake (Delta tables read through
delta-rs), a :class:`pivot_spark.bundle.Bundle` for a folder holding a bundle manifest. Callers read tables the
same way from either and never ask which one they have:

* ``version(table)``: the version the reader reads. A lake reader pins each table at its first use, to the
  version given when the reader was opened or else to the newest; every later read of that table reads the same
  version, however the lake moves meanwhile. A bundle holds one version per table (the one it was exported
  from) and refuses to be asked for another.
* ``read(table, columns, filter)``: rows of the pinned version, with projection and a pyarrow filter pushed down;
  ``batches(...)`` streams them.
* ``files(table, partition)``: the pinned version's data files whose partition values match.
* ``row_count(table)``: rows of the pinned version (from file statistics where there are any).
* ``tokenizer_path(hash)``: the local SentencePiece model a table's ``tokenizer`` column names.
* ``pinned()``: the versions read so far, for the provenance of what was computed from them.

This module needs pyarrow only; delta-rs is imported when a lake is read, so a machine that reads bundles only
needs neither delta-rs nor Spark.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pivot_spark.lake.core import Lake


class VersionNotFound(ValueError):
    """A table version that the table does not have (yet, or any more)."""


class TableReader(ABC):
    """Read-only, version-pinned access to named tables (see the module docstring)."""

    def __init__(self, uri: str, versions: Mapping[str, int] | None = None) -> None:
        self.uri = uri
        self._wanted = dict(versions or {})
        self._pins: dict[str, int] = {}

    def version(self, table: str) -> int:
        """The version of ``table`` this reader reads (pinned on first use)."""
        if table not in self._pins:
            self._pins[table] = self._pin(table, self._wanted.get(table))
        return self._pins[table]

    def pinned(self) -> dict[str, int]:
        """Table -> version, for every table this reader has read so far."""
        return dict(self._pins)

    def batches(self, table: str, columns: Sequence[str], batch_size: int = 1024) -> Iterator[pa.RecordBatch]:
        """The rows of :meth:`read` in record batches of at most ``batch_size`` rows."""
        yield from self.read(table, columns).to_batches(max_chunksize=batch_size)

    @abstractmethod
    def _pin(self, table: str, wanted: int | None) -> int:
        """The version to read ``table`` at (``wanted``, when given); FileNotFoundError when it is not there."""

    @abstractmethod
    def table_uri(self, table: str) -> str: ...

    @abstractmethod
    def read(self, table: str, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
             ) -> pa.Table: ...

    @abstractmethod
    def files(self, table: str, partition: Mapping[str, str] | None = None) -> list[str]: ...

    @abstractmethod
    def row_count(self, table: str) -> int: ...

    @abstractmethod
    def tokenizer_path(self, tok_hash: str) -> Path: ...


class LakeReader(TableReader):
    """Tables of a lake (``{uri}/{table}``, Delta) read through delta-rs at pinned versions.

    ``storage_options`` go to delta-rs (object-store credentials; by default they come from the environment).
    """

    def __init__(self, uri: str, versions: Mapping[str, int] | None = None,
                 storage_options: Mapping[str, str] | None = None) -> None:
        from pivot_spark.lake.core import Lake  # delta-rs: only where a lake is read

        self._lake: Lake = Lake(uri, storage_options)
        super().__init__(self._lake.uri, versions)
        self._tables: dict[str, Any] = {}

    def _delta(self, table: str) -> Any:
        """The table's DeltaTable at the pinned version (opened once)."""
        version = self.version(table)
        if table not in self._tables:
            self._tables[table] = self._lake.delta(table, version)
        return self._tables[table]

    def _pin(self, table: str, wanted: int | None) -> int:
        dt = self._lake.delta(table, wanted)
        if dt is None:
            at = "" if wanted is None else f" at version {wanted}"
            raise FileNotFoundError(f"no Delta table {table!r}{at} in lake {self.uri}: run the pivot-spark job "
                                    "that writes it")
        self._tables[table] = dt
        return int(dt.version())

    def table_uri(self, table: str) -> str:
        return self._lake.table_uri(table)

    def read(self, table: str, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
             ) -> pa.Table:
        dataset = self._delta(table).to_pyarrow_dataset()
        return dataset.to_table(columns=list(columns) if columns else None, filter=filter)

    def batches(self, table: str, columns: Sequence[str], batch_size: int = 1024) -> Iterator[pa.RecordBatch]:
        yield from self._delta(table).to_pyarrow_dataset().to_batches(columns=list(columns), batch_size=batch_size)

    def files(self, table: str, partition: Mapping[str, str] | None = None) -> list[str]:
        predicate = [(k, "=", str(v)) for k, v in (partition or {}).items()] or None
        return list(self._delta(table).file_uris(file_pruning_predicate=predicate))

    def row_count(self, table: str) -> int:
        return self._lake.row_count(table, self.version(table))

    def tokenizer_path(self, tok_hash: str) -> Path:
        return self._lake.tokenizer_path(tok_hash)


def open_reader(uri: str | os.PathLike[str], *, versions: Mapping[str, int] | None = None,
                storage_options: Mapping[str, str] | None = None) -> TableReader:
    """A reader of the lake or bundle at ``uri``; ``versions`` pins tables to given versions (table -> version)."""
    from pivot_spark.bundle import Bundle, is_bundle

    if is_bundle(uri):
        return Bundle.open(uri, versions=versions)
    return LakeReader(str(uri), versions, storage_options)
