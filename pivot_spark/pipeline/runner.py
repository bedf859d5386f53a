"""Run a job: pin inputs, derive the run id, execute, commit, record the run.

Every job goes through :func:`run_job`, which gives it a :class:`RunContext` and takes care of what all jobs share:

- **Pinned inputs.** Input tables are pinned at their current versions when the run starts. The pins are written to
  an intent file ``{lake}/_runs/{run_id}.json`` first, so a re-run of a crashed run id reads exactly what the first
  attempt read, and the outputs it had already committed are recognised (their application transaction) and skipped.
- **Run ids.** ``--run-id`` if given; otherwise derived from the job, the effective config and the pinned input
  versions (or the input files' listing), so running the same job on unchanged inputs is a no-op. Run ids and
  the config's labels are checked against a safe character set first (:mod:`pivot_spark.names`). A given run id
  whose intent file records other input (another input listing or settings; other pinned versions once the run
  finished) is refused (:class:`RunIdReused`): reusing it would skip, or mix, the new input.
- **One writer at a time.** The run holds the lake's writer lease (:mod:`pivot_spark.lake.lease`) from before it
  pins its inputs until its ``runs`` row is written, and checks it before each commit; a second writer waits for
  it (``lake.lease_wait_seconds``) or fails naming the holder.
- **The runs table.** A finished run appends one row (status ``ok``) in a transaction of its own; a run id with
  an ``ok`` row returns at once and commits nothing. A run whose body or commits fail appends a ``failed`` row
  (the error's class and message, the counts so far, the tables it had committed) in a transaction of its own and
  re-raises: it changes no data table, and a later run with the same run id runs and commits as usual. The ``ok``
  row holds the job's summary counts (JSON) and its :attr:`RunContext.catalog` entry in typed columns
  (:mod:`pivot_spark.pipeline.catalog`).
- **Named Spark jobs.** Every Spark job of a run carries the run id as its job group and ``<job>: <what>`` as its
  description (:meth:`RunContext.describe`), which the Spark UI, the event log and the History Server show.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyarrow import fs as pafs
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pivot_spark.config import PivotConfig
from pivot_spark.lake.core import CommitResult, FileEntry, Lake, PartitionFilter, WriteMode, app_id_for
from pivot_spark.lake.lease import WriterLease, current, writer_lease
from pivot_spark.names import check_name, check_names
from pivot_spark.pipeline.catalog import CatalogEntry
from pivot_spark.pipeline.report import count_rows, lang_warnings, print_config, print_warnings
from pivot_spark.schemas import RUNS

if TYPE_CHECKING:
    from deltalake.transaction import RemoveAction
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
console = Console(stderr=True)
MAX_MESSAGE_CHARS = 2000  # a failed run's error message in ``runs`` (Spark errors carry whole JVM traces)


class AlreadyCommitted(Exception):
    """The run id is already recorded in ``runs``: nothing to do."""


class RunIdReused(ValueError):
    """A given run id that an earlier run of the job used with other input."""


@dataclass
class _Staged:
    table: str
    mode: WriteMode
    partition_filters: PartitionFilter | None
    files: list[FileEntry] | None
    df: Any
    removes: list[RemoveAction] = field(default_factory=list)


@dataclass
class RunContext:
    """What a job body works with: its config, the lake, the run id, the pinned input versions; it reads
    through :meth:`read`/:meth:`read_arrow` and stages its writes, which the runner commits after the body.

    ``catalog``: what the run made or worked with (tokenizer, pivot set, counted snapshots), set by the job and
    stored in typed columns of its ``runs`` row for later jobs (:mod:`pivot_spark.pipeline.catalog`).
    """

    cfg: PivotConfig
    job: str
    lake: Lake
    run_id: str
    inputs: dict[str, int | None]
    outputs: dict[str, int | None] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    committed: dict[str, bool] = field(default_factory=dict)
    catalog: CatalogEntry = field(default_factory=CatalogEntry)
    _spark: Any = None
    _staged: list[_Staged] = field(default_factory=list)

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            from pivot_spark.session import build_session

            self._spark = build_session(self.cfg)
            self._label(self.job)
        return self._spark

    @contextmanager
    def describe(self, what: str) -> Iterator[None]:
        """Name the Spark jobs started inside the block ``<job>: <what>`` (job group: the run id) in the Spark UI,
        the event log and the History Server; the name before the block is restored after it."""
        before = self.spark.sparkContext.getLocalProperty("spark.job.description") or self.job
        self._label(f"{self.job}: {what}")
        try:
            yield
        finally:
            self._label(before)

    def _label(self, description: str) -> None:
        """Job group (the run id) and description of the Spark jobs this thread starts next."""
        self.spark.sparkContext.setJobGroup(self.run_id, description)

    def unlabel(self) -> None:
        """After the run: Spark jobs this thread starts later are not the run's."""
        if self._spark is None:
            return
        sc = self._spark.sparkContext
        with suppress(Exception):  # after a failure the JVM may be gone; nothing is left to label then
            for key in ("spark.jobGroup.id", "spark.job.description"):
                sc.setLocalProperty(key, None)  # type: ignore[arg-type]  # None removes the property

    @property
    def backend(self) -> str:
        from pivot_spark.lake.spark import resolve_backend

        return resolve_backend(self.spark, self.cfg.lake.backend)

    def app_id(self, table: str) -> str:
        return app_id_for(self.job, table, self.run_id)

    def pin(self, table: str) -> int | None:
        """The version of ``table`` pinned for this run (pinned now if the job did not declare it; None: the
        table does not exist)."""
        if table not in self.inputs:
            self.inputs[table] = self.lake.version(table)
        return self.inputs[table]

    def read(self, table: str, *, partition_filters: PartitionFilter | None = None) -> DataFrame:
        """The table at the version pinned for this run, as a DataFrame."""
        from pivot_spark.lake.spark import read_table

        with self.describe(f"read {table}"):  # Spark may list files or read a schema here
            return read_table(self.spark, self.lake, table, self.pin(table), backend=self.backend,
                              partition_filters=partition_filters)

    def read_arrow(self, table: str, **kw: Any) -> pa.Table:
        """The table at the version pinned for this run, read with delta-rs on the driver (small tables)."""
        return self.lake.read_arrow(table, self.pin(table), **kw)

    def write(self, df: DataFrame, table: str, *, mode: WriteMode = "append",
              partition_filters: PartitionFilter | None = None) -> int:
        """Stage a write of ``df``; it is committed with the job's other writes after the job body succeeds.

        Bridge: Spark tasks write the files now (so a failure commits nothing); native: Delta writes at commit.
        Returns the number of rows staged (bridge) or -1 (native, counted by Delta).
        """
        from pivot_spark.lake.spark import file_prefix_of, stage_files

        app_id = self.app_id(table)
        if self.lake.committed(table, app_id):  # a retry of a run that got this far
            self._staged.append(_Staged(table, mode, partition_filters, files=[], df=None))
            return 0
        if self.backend == "native":
            self._staged.append(_Staged(table, mode, partition_filters, files=None, df=df))
            return -1
        with self.describe(f"write {table}"):
            files = stage_files(df, self.lake, table, file_prefix=file_prefix_of(app_id))
        self._staged.append(_Staged(table, mode, partition_filters, files=files, df=None))
        return sum(f.num_records for f in files)

    def stage_files(self, table: str, files: list[FileEntry], *, mode: WriteMode = "append",
                    partition_filters: PartitionFilter | None = None, removes: Sequence[RemoveAction] = ()) -> None:
        """Stage files that this job's tasks (or its driver) wrote into ``table``'s folder, and ``removes``, active
        files that the same commit removes."""
        if self.lake.committed(table, self.app_id(table)):
            files, removes = [], ()
        self._staged.append(_Staged(table, mode, partition_filters, files=files, df=None, removes=list(removes)))

    def commit_staged(self) -> None:
        from pivot_spark.lake.spark import write_native

        for st in self._staged:
            app_id = self.app_id(st.table)
            self.check_lease()
            if st.df is not None:
                with self.describe(f"write {st.table}"):
                    res = write_native(st.df, self.lake, st.table, mode=st.mode, app_id=app_id,
                                       partition_filters=st.partition_filters)
            else:
                res = self.lake.commit_files(st.table, st.files or [], mode=st.mode, app_id=app_id,
                                             partition_filters=st.partition_filters, removes=st.removes)
            self._record(res)
        self._staged.clear()

    def write_arrow(self, data: pa.Table, table: str, *, mode: WriteMode = "append",
                    replace_where: Mapping[str, str] | None = None) -> CommitResult:
        """Commit a small Arrow table now; ``mode="overwrite"`` with ``replace_where`` (column -> value) replaces
        only the rows with those values (:meth:`Lake.write_arrow`)."""
        self.check_lease()
        return self._record(self.lake.write_arrow(table, data, mode=mode, app_id=self.app_id(table),
                                                  replace_where=replace_where))

    def check_lease(self) -> None:
        """Before a commit: fail if this process no longer holds the lake's writer lease."""
        lease = current(self.lake)
        if lease is not None:
            lease.check()

    def _record(self, res: CommitResult) -> CommitResult:
        self.outputs[res.table] = res.version
        self.committed[res.table] = res.committed
        return res


def _intent_path(lake: Lake, run_id: str) -> str:
    """The intent file's path in the lake's filesystem (:attr:`Lake.store`, the lake's storage options)."""
    return f"{lake.store.root}/_runs/{run_id}.json"


def read_intent(lake: Lake, run_id: str) -> dict[str, Any] | None:
    fs, path = lake.store.fs, _intent_path(lake, run_id)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def write_intent(lake: Lake, run_id: str, payload: Mapping[str, Any]) -> None:
    check_name("run id", run_id)  # the file's name: nothing outside {lake}/_runs
    fs, path = lake.store.fs, _intent_path(lake, run_id)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = path + ".tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(json.dumps(payload, sort_keys=True, indent=1).encode())
    fs.move(tmp, path)


def derive_run_id(job: str, cfg: PivotConfig, pins: Mapping[str, Any], identity: Any = None) -> str:
    body = cfg.model_dump(mode="json")
    body["run"]["run_id"] = None
    # Where and how the job executes does not change what it computes: a lake on another path or a cluster
    # instead of local mode derives the same run id (and snapshot name) for the same inputs.
    # Nor does how its summary is read (report).
    for section in ("preset", "lake", "spark", "report"):
        body.pop(section, None)
    blob = json.dumps({"job": job, "cfg": body, "pins": pins, "identity": identity}, sort_keys=True, default=str)
    return f"{job}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def previous_run(lake: Lake, job: str, run_id: str) -> dict[str, Any] | None:
    """The ``ok`` row of ``job``'s run ``run_id`` in ``runs`` (failed attempts do not count: the run id runs
    again; nor do other jobs' runs, which a ``--run-id`` given to a whole rebuild shares)."""
    if not lake.exists("runs"):
        return None
    import pyarrow.compute as pc

    t = lake.read_arrow("runs", filter=(pc.field("run_id") == run_id) & (pc.field("job") == job)
                        & (pc.field("status") == "ok"))
    return t.to_pylist()[0] if t.num_rows else None


def error_message(error: BaseException) -> str:
    """``Class: message`` of an error, at most :data:`MAX_MESSAGE_CHARS` characters: a longer one keeps its
    beginning and its end (a Python traceback ends with the error, a JVM trace with its cause)."""
    text, cut = f"{type(error).__name__}: {error}".strip(), " ... (truncated) ... "
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    head = (MAX_MESSAGE_CHARS - len(cut)) // 2
    return text[:head] + cut + text[-(MAX_MESSAGE_CHARS - len(cut) - head):]


def record_failure(ctx: RunContext, error: BaseException, started: datetime, seconds: float) -> str:
    """Append a ``failed`` row for ``ctx``'s run to ``runs``, in a transaction of its own (the attempt's start in
    the app id, so neither another failed attempt nor a later ``ok`` row of the run id collides with it); returns
    the message stored. Only ``runs`` is written; no catalog facts, which later jobs must not build on."""
    message = error_message(error)
    row = {
        "run_id": ctx.run_id, "job": ctx.job, "config": ctx.cfg.to_json(),
        "inputs": json.dumps(ctx.inputs, sort_keys=True), "outputs": json.dumps(ctx.outputs, sort_keys=True),
        "counts": json.dumps({**ctx.counts, "seconds": round(seconds, 2)}, sort_keys=True, default=str),
        "status": "failed", "message": message, "started": started, "finished": datetime.now(UTC),
    }
    attempt = f"{ctx.run_id}/failed/{started.strftime('%Y%m%dT%H%M%S%fZ')}"
    ctx.lake.write_arrow("runs", pa.Table.from_pylist([row], schema=RUNS), mode="append",
                         app_id=app_id_for(ctx.job, "runs", attempt))
    return message


@contextmanager
def job_lease(cfg: PivotConfig, what: str, lake: Lake | None = None) -> Iterator[WriterLease]:
    """The lake's writer lease for ``what`` (a job, a rebuild, a maintenance command), with the config's wait and
    expiry; a wait or a takeover is printed (:func:`pivot_spark.lake.lease.writer_lease`)."""
    lake = lake or Lake(cfg.lake.uri, cfg.lake.storage_options)

    def notify(message: str) -> None:
        console.print(f"[bold]{escape(what)}[/]: {escape(message)}", highlight=False, soft_wrap=True)

    with writer_lease(lake, ttl_s=cfg.lake.lease_ttl_seconds, wait_s=cfg.lake.lease_wait_seconds,
                      what=f"pivot-spark {what}", notify=notify) as lease:
        yield lease


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from an intent file (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def check_reuse(intent: Mapping[str, Any], run_id: str, job: str, identity: Any, pins: Mapping[str, int | None],
                *, finished: bool) -> None:
    """:class:`RunIdReused` when run ``run_id`` of ``job`` recorded other input in its intent file: another
    identity (input listing, settings), or, for a finished run, other versions of the tables it reads (``pins``:
    those the job does not write itself). A retry of an unfinished run reads the versions its intent pinned."""
    was = intent.get("inputs", {})
    if _jsonable(identity) != intent.get("identity"):
        what = "other input (files or settings)"
    elif finished and any(was.get(t) != v for t, v in pins.items()):
        what = "other table versions (" + ", ".join(f"{t} v{was.get(t)}, now v{v}" for t, v in sorted(pins.items())
                                                  if was.get(t) != v) + ")"
    else:
        return
    raise RunIdReused(f"run id {run_id!r} was used by an earlier {job} run with {what}; a run id names one "
                      f"input: give this run a new --run-id, or leave --run-id out to derive one from the input")


def release_proxies() -> None:
    """Free the Python proxies of the JVM objects a finished job used, so that the JVM can drop what they hold.

    py4j keeps each method called on a JVM object in the object's Python proxy, and the method points back to the
    proxy: a reference cycle, which only Python's cyclic collector frees, and the gateway keeps the JVM object for
    as long as its proxy lives. The proxies of a job's DataFrames live through the job and end up in Python's
    oldest generation, which is collected rarely; until then the JVM keeps their Datasets and, through their
    plans, the broadcast relations of their joins (each at least one page of ``spark.buffer.pageSize``, up to
    64 MB, whatever the table's size; in local mode the executors' copies live in the driver JVM) and their
    shuffles, which Spark's ContextCleaner removes only once nothing references them. After ``pivots`` that was
    about 550 MB of a 4 GB local driver's heap (docs/benchmarks.md, "Scale")."""
    gc.collect()


def run_job(cfg: PivotConfig, job: str, body: Callable[[RunContext], Mapping[str, Any] | None], *,
            input_tables: Sequence[str] = (), output_tables: Sequence[str] = (), identity: Any = None,
            quiet: bool = False) -> dict[str, Any]:
    """Execute ``body`` as run of ``job``; returns the run summary (also stored in ``runs``).

    The derived run id covers the pinned versions of the inputs the job does not itself write (a job that reads
    its own output, like ingest's dedup against ``documents``, would otherwise never see its run as done).
    """
    check_names(cfg)
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    with job_lease(cfg, job, lake):
        return _run_leased(cfg, lake, job, body, input_tables=input_tables, output_tables=output_tables,
                           identity=identity, quiet=quiet)


def _run_leased(cfg: PivotConfig, lake: Lake, job: str, body: Callable[[RunContext], Mapping[str, Any] | None], *,
                input_tables: Sequence[str], output_tables: Sequence[str], identity: Any, quiet: bool
                ) -> dict[str, Any]:
    pins: dict[str, int | None] = {t: lake.version(t) for t in input_tables}
    derive_pins = {t: v for t, v in pins.items() if t not in output_tables}
    run_id = cfg.run.run_id or derive_run_id(job, cfg, derive_pins, identity)
    intent = read_intent(lake, run_id)
    if intent is not None and intent.get("job") != job:
        intent = None  # another job's run with the same id (a shared --run-id): this job's run is new
    prev = previous_run(lake, job, run_id)
    if intent is not None:
        check_reuse(intent, run_id, job, identity, derive_pins, finished=prev is not None)
    if prev is not None:
        summary = {"run_id": run_id, "job": job, "status": "already-committed",
                   "counts": json.loads(prev["counts"] or "{}"), "outputs": json.loads(prev["outputs"] or "{}")}
        if not quiet:
            console.print(f"[bold]{job}[/]: run [cyan]{run_id}[/] is already committed "
                          f"(finished {prev['finished']}); nothing to do.")
        return summary
    if intent is not None:
        pins = {k: v for k, v in intent["inputs"].items()}  # a retry reads what the first attempt read
    else:
        write_intent(lake, run_id, {"job": job, "inputs": pins, "identity": identity,
                                    "created": datetime.now(UTC).isoformat()})
    if not quiet:
        console.rule(f"pivot-spark {job} · run {run_id}")
        console.print(f"lake: {lake.uri}   preset: {cfg.preset}   inputs: {pins}", highlight=False, markup=False)
        print_config(console, cfg)
    ctx = RunContext(cfg=cfg, job=job, lake=lake, run_id=run_id, inputs=dict(pins))
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        extra = body(ctx) or {}
        ctx.commit_staged()  # all Spark work succeeded: commit every output, each in one transaction
    except (Exception, KeyboardInterrupt) as e:
        try:
            message = record_failure(ctx, e, started, time.perf_counter() - t0)
        except Exception as rec_error:  # the job's own error is the one to see
            log.warning("%s: could not record failed run %s in runs: %s", job, run_id, error_message(rec_error))
        else:
            first = message.splitlines()[0]
            console.print(f"[bold]{job}[/]: run [cyan]{run_id}[/] failed; recorded in runs (status failed): "
                          f"{escape(first if len(first) <= 200 else first[:200] + ' ...')}", highlight=False,
                          soft_wrap=True)
        raise
    finally:
        ctx.unlabel()
        release_proxies()
    ctx.counts.update(extra)
    ctx.counts["seconds"] = round(time.perf_counter() - t0, 2)
    finished = datetime.now(UTC)
    row = {
        "run_id": run_id, "job": job, "config": cfg.to_json(),
        "inputs": json.dumps(ctx.inputs, sort_keys=True), "outputs": json.dumps(ctx.outputs, sort_keys=True),
        "counts": json.dumps(ctx.counts, sort_keys=True, default=str), "status": "ok", "message": None,
        "started": started, "finished": finished, **ctx.catalog.columns(),
    }
    lake.write_arrow("runs", pa.Table.from_pylist([row], schema=RUNS), mode="append",
                     app_id=app_id_for(job, "runs", run_id))
    summary = {"run_id": run_id, "job": job, "status": "ok", "counts": ctx.counts, "outputs": ctx.outputs,
               "committed": ctx.committed}
    if not quiet:
        print_summary(summary, max_lang_share=cfg.report.max_lang_share)
    return summary


def print_summary(summary: Mapping[str, Any], *, max_lang_share: float) -> None:
    """The run's counts (drop reasons, languages, each arm's mix), its tables, and warnings about the arms."""
    out = Console()
    t = Table(title=f"{summary['job']} · {summary['run_id']} · {summary['status']}", show_header=True)
    t.add_column("what", overflow="fold")
    t.add_column("value", overflow="fold")
    for k, v in count_rows(summary.get("counts", {})):
        t.add_row(Text(k), Text(v))
    for k, v in summary.get("outputs", {}).items():
        mark = "" if summary.get("committed", {}).get(k, True) else " (already committed)"
        t.add_row(f"table {k}", f"v{v}{mark}")
    out.print(t)
    print_warnings(out, lang_warnings(summary["job"], summary.get("counts", {}), max_lang_share))
