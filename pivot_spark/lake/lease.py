"""The lake's writer lease: one writing job at a time per lake.

Every job that writes the lake holds the lease while it pins its inputs, computes, commits and records its run
(:func:`writer_lease`; the runner, ``rebuild`` for its whole chain, and the writing commands take it). A second
writer waits for it up to ``wait_s`` seconds and then fails with an error that names the holder; jobs that only
read (``status``, ``pivot-train``) never take it.

Why a lease and not conflict checks per table: the jobs decide what is new from several places at once (ingest
from ``documents``' content hashes, annotate from ``doc_tokens``, cooccur from the ``runs`` catalog of counted
snapshots), and Delta commits are atomic per table only, so two writers interleaving on different tables can
each commit work the other already did (documents ingested twice, a snapshot counted twice). With one writer at a
time every job sees the lake as the previous writer left it.

The lease lives in the lake itself, as the Delta table ``{lake}/_lease`` (no rows; each commit's metadata holds
the lease's state), so it works wherever the lake works and needs no lock service: taking, renewing and releasing
it are commits that must land at exactly the next version (``max_commit_retries=0``), and of two writers racing
for the same version the store lets exactly one win (a local rename that does not replace; on S3 a conditional
write, see :mod:`pivot_spark.lake.core`).

A holder renews its lease every ``ttl_s / 3`` seconds from a background thread. A lease that is not renewed
(its process killed) expires after ``ttl_s`` seconds and the next writer takes it over; on the same machine a
writer also takes over at once a lease whose process is gone (same host and boot, and no process with that id
and start time). A holder whose lease was taken over (it stalled past the expiry) finds out before its next
commit (:meth:`WriterLease.check`) and fails instead of committing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, Schema
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import CommitProperties, create_table_with_add_actions

from pivot_spark.lake.core import Lake

LEASE_TABLE = "_lease"
KEY = "pivot_spark.lease"
_SCHEMA = pa.schema([pa.field("holder", pa.string())])  # the table never holds rows
# Older commits of the lease table are of no use: keep a day of them (checkpoints every 100 commits, delta-rs's
# default, let the log be read from the newest checkpoint on).
_CONFIGURATION = {"delta.logRetentionDuration": "interval 1 days"}


class LeaseHeld(RuntimeError):
    """Another writer holds the lake's lease and did not release it within the wait."""


class LeaseLost(RuntimeError):
    """This writer's lease expired and another writer took it over."""


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, /proc), None where unknown or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_holder(state: dict[str, Any]) -> str:
    """``ingest (host h, pid 12, since ...)``: who holds a lease, for messages."""
    return f"{state.get('what') or 'a job'} (host {state.get('host')}, pid {state.get('pid')}, since " \
           f"{_when(int(state.get('since', 0)))})"


@dataclass
class WriterLease:
    """The lease of one lake, taken by :meth:`acquire` and given back by :meth:`release` (see the module)."""

    lake: Lake
    ttl_s: float
    what: str
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: int | None = None  # the lease table's version of this holder's newest commit
    expires_ms: int = 0
    since_ms: int = 0
    lost: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _beat: threading.Thread | None = None

    @property
    def uri(self) -> str:
        return self.lake.table_uri(LEASE_TABLE)

    def _table(self) -> DeltaTable:
        options = self.lake.storage_options or None
        try:
            return DeltaTable(self.uri, storage_options=options)
        except TableNotFoundError:
            pass
        with suppress(CommitFailedError, DeltaError):  # another writer created it first: use theirs
            create_table_with_add_actions(self.uri, Schema.from_arrow(_SCHEMA), [], mode="error",
                                          configuration=_CONFIGURATION, storage_options=options,
                                          commit_properties=CommitProperties(custom_metadata={KEY: ""}))
        return DeltaTable(self.uri, storage_options=options)

    @staticmethod
    def state_of(dt: DeltaTable) -> dict[str, Any] | None:
        """The lease's state at the table's version: None (never taken), or the newest commit's state
        (``state``: held or released, the holder and when its lease expires)."""
        raw = dt.history(1)[0].get(KEY)
        return json.loads(raw) if raw else None

    def _mine(self, state: str) -> dict[str, Any]:
        now = _now_ms()
        return {"state": state, "token": self.token, "what": self.what, "host": socket.gethostname(),
                "pid": os.getpid(), "proc_start": _proc_start(os.getpid()), "boot": _boot_id(),
                "since": self.since_ms or now, "expires": now + int(self.ttl_s * 1000)}

    def _commit(self, dt: DeltaTable, state: dict[str, Any]) -> None:
        """Commit ``state`` as the version right after ``dt``'s; CommitFailedError if that version exists."""
        dt.create_write_transaction([], mode="append", schema=_SCHEMA, commit_properties=CommitProperties(
            custom_metadata={KEY: json.dumps(state, sort_keys=True)}, max_commit_retries=0))

    @staticmethod
    def free(state: dict[str, Any] | None, now_ms: int) -> str | None:
        """Why a lease in ``state`` may be taken (``never taken``, ``released``, ``expired``, ``holder gone``),
        or None while its holder keeps it."""
        if state is None:
            return "never taken"
        if state.get("state") != "held":
            return "released"
        if now_ms > int(state.get("expires", 0)):
            return "expired"
        if state.get("host") == socket.gethostname() and state.get("boot") and state.get("boot") == _boot_id() \
                and state.get("proc_start") and _proc_start(int(state.get("pid", 0))) != state.get("proc_start"):
            return "holder gone"
        return None

    def acquire(self, wait_s: float, notify: Callable[[str], None] | None = None) -> None:
        """Take the lease, waiting up to ``wait_s`` seconds for its holder to give it back; :class:`LeaseHeld`
        after that. ``notify`` hears, once, that the writer waits, and when it takes over an expired lease."""
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            dt = self._table()
            state = self.state_of(dt)
            why = self.free(state, _now_ms())
            if why is not None:
                self.since_ms = 0
                mine = self._mine("held")
                try:
                    self._commit(dt, mine)
                except CommitFailedError:
                    continue  # another writer took it first: look again
                with self._lock:
                    self.version, self.expires_ms, self.lost = dt.version() + 1, mine["expires"], False
                    self.since_ms = mine["since"]
                if why in ("expired", "holder gone") and state is not None and notify is not None:
                    notify(f"took over the writer lease of {describe_holder(state)}: {why}")
                self._start_heartbeat()
                return
            assert state is not None
            left = deadline - time.monotonic()
            expires_in = max(0.0, (int(state["expires"]) - _now_ms()) / 1000)
            if left <= 0:
                raise LeaseHeld(
                    f"lake {self.lake.uri} is being written by {describe_holder(state)}; one writer at a time: run "
                    f"again when it has finished, or let this one wait longer (lake.lease_wait_seconds, now "
                    f"{wait_s:g}); a holder that died gives the lease up after lake.lease_ttl_seconds (this one "
                    f"in {expires_in:.0f} s unless renewed)")
            if not told and notify is not None:
                notify(f"waiting up to {left:.0f} s for the writer lease of lake {self.lake.uri}, held by "
                       f"{describe_holder(state)}")
                told = True
            time.sleep(min(left, max(0.2, min(5.0, self.ttl_s / 6))))

    def renew(self) -> None:
        """Extend the lease by ``ttl_s`` (a commit after this holder's last one); marks it lost when another
        writer has committed to the lease table since."""
        with self._lock:
            if self.version is None or self.lost:
                return
            version = self.version
        dt = DeltaTable(self.uri, version=version, storage_options=self.lake.storage_options or None)
        mine = self._mine("held")
        try:
            self._commit(dt, mine)
        except CommitFailedError:
            with self._lock:
                self.lost = True
            return
        with self._lock:
            self.version, self.expires_ms = version + 1, mine["expires"]

    def check(self) -> None:
        """Before a commit: :class:`LeaseLost` if this holder's lease was taken over or ran out unrenewed."""
        with self._lock:
            lost = self.lost or (self.version is not None and _now_ms() > self.expires_ms)
        if lost:
            raise LeaseLost(f"the writer lease of lake {self.lake.uri} expired while {self.what} ran (renewal "
                            "failed or stalled past lake.lease_ttl_seconds) and another writer may have taken it; "
                            "nothing more was committed: run the command again")

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        interval = max(0.5, self.ttl_s / 3)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.renew()
                except Exception:  # a failed renewal (store unreachable) is retried; check() sees the expiry
                    continue
                if self.lost:
                    return

        self._beat = threading.Thread(target=beat, name="pivot-spark-lease", daemon=True)
        self._beat.start()

    def release(self) -> None:
        """Give the lease back (a commit after this holder's last one; nothing when it was lost)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self._lock:
            version, lost = self.version, self.lost
            self.version = None
        if version is None or lost:
            return
        dt = DeltaTable(self.uri, version=version, storage_options=self.lake.storage_options or None)
        with suppress(CommitFailedError):  # taken over meanwhile: nothing of ours to give back
            self._commit(dt, {**self._mine("released"), "expires": 0})


_held: dict[str, tuple[WriterLease, int]] = {}
_held_lock = threading.Lock()


def current(lake: Lake) -> WriterLease | None:
    """The lease this process holds on ``lake``, if any."""
    with _held_lock:
        entry = _held.get(lake.uri)
    return entry[0] if entry else None


@contextmanager
def writer_lease(lake: Lake, *, ttl_s: float, wait_s: float, what: str,
                 notify: Callable[[str], None] | None = None) -> Iterator[WriterLease]:
    """Hold ``lake``'s writer lease inside the block (see the module). Re-entrant within a process: a job run
    inside a rebuild, or a command that already holds it, uses the holder's lease."""
    with _held_lock:
        entry = _held.get(lake.uri)
        if entry is not None:
            _held[lake.uri] = (entry[0], entry[1] + 1)
    if entry is not None:
        try:
            yield entry[0]
        finally:
            with _held_lock:
                lease, depth = _held[lake.uri]
                _held[lake.uri] = (lease, depth - 1)
        return
    lease = WriterLease(lake, ttl_s=ttl_s, what=what)
    lease.acquire(wait_s, notify)
    with _held_lock:
        _held[lake.uri] = (lease, 1)
    try:
        yield lease
    finally:
        with _held_lock:
            del _held[lake.uri]
        lease.release()


def lease_state(lake: Lake) -> dict[str, Any] | None:
    """The lease's state as readers see it (``status``): None when the lake's lease was never taken."""
    try:
        dt = DeltaTable(lake.table_uri(LEASE_TABLE), storage_options=lake.storage_options or None)
    except TableNotFoundError:
        return None
    return WriterLease.state_of(dt)
