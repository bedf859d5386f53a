"""Tasks write files, the driver commits them; and the files a job ships to its tasks.

On the bridge backend the heavy jobs (annotate, cooccur) write their output tables inside the Spark tasks that
compute them: each task writes Parquet files into the table folders with a
:func:`~pivot_spark.lake.spark.make_file_writer` writer and returns :data:`TASK_OUT` rows, one per file written
(the table and the file's metadata) and one with the task's summary counts (``table`` null, ``counts`` a JSON
object of numbers). Only those rows reach the driver, which turns them into per-table file lists and summed
counts with :func:`collect_task_output` and stages the files (:meth:`RunContext.stage_files
<pivot_spark.pipeline.runner.RunContext.stage_files>`); they are committed, one Delta transaction per table, after
the whole job body succeeded.

Models and word lists reach the tasks as files shipped with the job: :func:`ship_file` on the driver,
:func:`shipped_path` inside a task.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pivot_spark.lake.core import FileEntry, RowLike
from pivot_spark.lake.spark import FILE_META, FileWriter

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TASK_OUT = pa.schema([pa.field("table", pa.string()), *FILE_META, pa.field("counts", pa.string())])
# A function a task runs over its Arrow batches (``mapInArrow``, or ``mapPartitions`` over batches).
BatchTask = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def file_rows(table: str, writer: FileWriter, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Inside a task: write ``batches`` into ``table`` with ``writer``; :data:`TASK_OUT` rows of the files."""
    for meta in writer(batches):
        n = meta.num_rows
        yield pa.RecordBatch.from_arrays([pa.array([table] * n, pa.string()), *meta.columns,
                                          pa.nulls(n, pa.string())], schema=TASK_OUT)


def counts_row(counts: Mapping[str, int]) -> pa.RecordBatch:
    """Inside a task: the :data:`TASK_OUT` row of the task's summary counts."""
    return pa.RecordBatch.from_pylist([{"table": None, "counts": json.dumps(counts)}], schema=TASK_OUT)


@dataclass
class TaskOutput:
    """What a job's writing tasks returned: the files per table, in the order the rows came, and the sum of
    their summary counts."""

    files: dict[str, list[FileEntry]]
    counts: Counter[str] = field(default_factory=Counter)

    def rows(self, table: str) -> int:
        return sum(f.num_records for f in self.files[table])


def collect_task_output(rows: Iterable[RowLike], tables: Sequence[str]) -> TaskOutput:
    """Driver side: the :data:`TASK_OUT` rows the tasks returned (dicts or Spark rows) as a
    :class:`TaskOutput` with a file list for each of ``tables``."""
    out = TaskOutput({t: [] for t in tables})
    for r in rows:
        if r["table"] is None:
            out.counts.update(json.loads(r["counts"]))
        else:
            out.files[r["table"]].append(FileEntry.from_meta(r))
    return out


def ship_file(spark: SparkSession, path: str) -> str:
    """Ship the file at ``path`` (a model, a word list) with the job to every executor
    (``SparkContext.addFile``); returns the name a task passes to :func:`shipped_path`."""
    spark.sparkContext.addFile(path)
    return Path(path).name


def shipped_path(name: str) -> str:
    """Inside a task: the local path of the file shipped as ``name`` by :func:`ship_file` (``name`` itself where
    no such file was shipped, e.g. a path the executor can read as it is)."""
    from pyspark import SparkFiles

    p = Path(SparkFiles.get(name))
    return str(p) if p.exists() else name
