"""Delta IO behind small interfaces: :class:`Lake` (no Spark), ``read_table``/``write_table`` (Spark, in
:mod:`pivot_spark.lake.spark`) and :func:`pivot_spark.lake.reader.open_reader` (read-only, a lake or a bundle).

The names below load :mod:`pivot_spark.lake.core` (and with it delta-rs) on first use, so that
:mod:`pivot_spark.lake.reader` imports on a machine without delta-rs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot_spark.lake.core import CommitResult, FileEntry, Lake, app_id_for

__all__ = ["CommitResult", "FileEntry", "Lake", "app_id_for"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pivot_spark.lake import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
