"""Commits to a lake on S3: two processes that append to one Delta table at the same moment both land (delta-rs
writes commit files with S3 conditional writes), and on a store without conditional writes they would not.

The S3 endpoint is moto on 127.0.0.1 (tests/support/s3.py), holding each commit write until the other writer's
write of the same version arrives, so the two writers collide at the store in every round.
"""

from __future__ import annotations

import multiprocessing
import uuid
from typing import Any

import pyarrow as pa
import pytest

from pivot_spark.lake import FileEntry, Lake
from pivot_spark.lake.spark import make_file_writer
from pivot_spark.schemas import QUARANTINE
from tests.support.s3 import S3Server

SECRET = "s3cr3t-of-the-commit-test"
WRITERS = 2
ROUNDS = 3
ROWS = 4  # per write
HOW = ("write_arrow", "commit_files")  # the driver's small-table write and the bridge's commit of task files


def _rows(worker: int, round_: int, how: str) -> pa.Table:
    return pa.Table.from_pylist(
        [{"source": f"w{worker}", "uri": how, "record": round_ * ROWS + i, "reason": "test", "raw": None,
          "run_id": f"w{worker}-r{round_}", "snapshot": f"w{worker}"} for i in range(ROWS)], schema=QUARANTINE)


def _app_id(worker: int, round_: int, how: str) -> str:
    return f"pivot-spark/test/quarantine/w{worker}-r{round_}-{how}"


def _writer(uri: str, options: dict[str, str], barrier: Any, worker: int) -> None:
    """One writing process: per round, after the barrier, a ``write_arrow`` append, then (after the next barrier) a
    Parquet file written into the table folder as a Spark task writes it, and its ``commit_files``."""
    lake = Lake(uri, options)
    write = make_file_writer(lake.table_uri("quarantine"), "quarantine", f"w{worker}", lake.storage_options)
    for r in range(ROUNDS):
        barrier.wait(120)
        lake.write_arrow("quarantine", _rows(worker, r, HOW[0]), mode="append", app_id=_app_id(worker, r, HOW[0]))
        files = [FileEntry.from_meta(m) for b in write(iter(_rows(worker, r, HOW[1]).to_batches()))
                 for m in b.to_pylist()]
        barrier.wait(120)
        lake.commit_files("quarantine", files, mode="append", app_id=_app_id(worker, r, HOW[1]))


def _race(server: S3Server) -> tuple[Lake, list[int | None]]:
    """Both writers against a fresh table on ``server``; their exit codes."""
    bucket = f"commits-{uuid.uuid4().hex[:8]}"
    server.client(SECRET).create_bucket(Bucket=bucket)
    uri, options = f"s3://{bucket}/lake", server.options(SECRET)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(uri, options, barrier, w)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    return Lake(uri, options), [p.exitcode for p in procs]


@pytest.mark.s3
def test_two_processes_appending_at_once_lose_no_commit():
    with S3Server(hold=1.0) as server:
        lake, codes = _race(server)
        assert codes == [0] * WRITERS
        written = [(f"w{w}", how, r * ROWS + i) for w in range(WRITERS) for r in range(ROUNDS) for how in HOW
                   for i in range(ROWS)]
        t = lake.read_arrow("quarantine")
        assert sorted(zip(t["source"].to_pylist(), t["uri"].to_pylist(), t["record"].to_pylist(),
                          strict=True)) == sorted(written)
        # every write is a version of its own, tagged with its application transaction
        commits = WRITERS * ROUNDS * len(HOW)
        assert lake.version("quarantine") == commits - 1
        assert all(lake.committed("quarantine", _app_id(w, r, how))
                   for w in range(WRITERS) for r in range(ROUNDS) for how in HOW)
        # how: every commit file was a conditional write; the writers collided, and the store refused the later
        # write of a version (the loser re-read the log and committed the next version)
        assert server.commits and all(c.conditional for c in server.commits)
        statuses = [c.status for c in server.commits]
        assert set(statuses) <= {200, 412} and statuses.count(412) >= 1
        assert statuses.count(200) == commits


@pytest.mark.s3
def test_a_store_that_ignores_conditional_writes_loses_commits():
    """What the conditional writes prevent: on a store that ignores ``If-None-Match`` the same race overwrites
    commits (why docs/operations.md asks for a store with conditional writes when writers can overlap)."""
    with S3Server(hold=1.0, ignore_conditions=True) as server:
        lake, codes = _race(server)
        assert codes == [0] * WRITERS  # no writer notices
        assert lake.read_arrow("quarantine").num_rows < WRITERS * ROUNDS * len(HOW) * ROWS
        assert not all(lake.committed("quarantine", _app_id(w, r, how))
                       for w in range(WRITERS) for r in range(ROUNDS) for how in HOW)

