"""Delta IO behind one small interface: :class:`Lake` (no Spark) and ``read_table``/``write_table`` (Spark)."""

from pivot_spark.lake.core import CommitResult, FileEntry, Lake, app_id_for

__all__ = ["CommitResult", "FileEntry", "Lake", "app_id_for"]
