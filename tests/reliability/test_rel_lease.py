"""The lake's writer lease: a second writer waits or fails naming the holder; a dead holder's lease is taken
over; a holder whose lease was taken over commits nothing more."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.lake.lease import LeaseHeld, LeaseLost, WriterLease, lease_state, writer_lease
from pivot_spark.pipeline.runner import run_job
from tests.support.reliability import REPO, pivot_rows, pivot_spark


def _state(lake: Lake) -> str:
    state = lease_state(lake)
    assert state is not None
    return state["state"]


def _stall(lease: WriterLease | None) -> None:
    """The holder stalls: its renewals stop (as in a process that hangs), so its lease runs out."""
    assert lease is not None and lease._beat is not None
    lease._stop.set()
    lease._beat.join()


def _cfg(lake, *extra):
    return load_config("smoke", [f"lake.uri={lake}", *extra])


def test_a_second_writer_fails_naming_the_holder_and_the_fix(lake_path, capsys):
    lake = Lake(str(lake_path))
    with writer_lease(lake, ttl_s=60, wait_s=0, what="pivot-spark ingest"):
        res = pivot_spark("repair", "--config", "smoke", "--lake", str(lake_path), "lake.lease_wait_seconds=0")
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1
    assert f"lake {lake.uri} is being written by pivot-spark ingest (host" in err
    assert f"pid {os.getpid()}" in err and "lake.lease_wait_seconds" in err
    assert not lake.exists("runs")  # the refused job wrote nothing


def test_a_second_writer_waits_for_the_first(lake_path):
    lake = Lake(str(lake_path))
    cfg = _cfg(lake.uri, "lake.lease_wait_seconds=60")
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with writer_lease(Lake(str(lake_path)), ttl_s=30, wait_s=0, what="first"):
            held.set()
            time.sleep(2)
            order.append("first done")

    t = threading.Thread(target=first)
    t.start()
    held.wait()
    # another process: within one process the lease is re-entrant
    res = pivot_spark("repair", "--config", "smoke", "--lake", str(lake_path), "lake.lease_wait_seconds=60")
    order.append("second done")
    t.join()
    assert res.returncode == 0, res.stderr
    assert "waiting up to" in res.stderr and "held by first" in res.stderr
    assert order == ["first done", "second done"]
    assert _state(lake) == "released"
    assert cfg.lake.lease_wait_seconds == 60


def test_a_killed_holders_lease_is_taken_over(lake_path):
    code = ("import os, sys; from pivot_spark.lake import Lake; from pivot_spark.lake.lease import writer_lease\n"
            "with writer_lease(Lake(sys.argv[1]), ttl_s=3600, wait_s=0, what='doomed'):\n"
            "    os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(lake_path)], cwd=REPO, timeout=120)
    assert proc.returncode == -9
    assert _state(Lake(str(lake_path))) == "held"
    # on the same machine the dead process is seen at once; elsewhere the lease expires after its ttl
    notes: list[str] = []
    with writer_lease(Lake(str(lake_path)), ttl_s=30, wait_s=0, what="next", notify=notes.append):
        pass
    assert notes and "took over the writer lease of doomed" in notes[0] and "holder gone" in notes[0]


def test_an_unrenewed_lease_expires(lake_path):
    lake = Lake(str(lake_path))
    stale = WriterLease(lake, ttl_s=1, what="stalled")
    stale.acquire(0)
    _stall(stale)
    with pytest.raises(LeaseHeld):
        WriterLease(lake, ttl_s=1, what="early").acquire(0)
    time.sleep(1.2)
    taker = WriterLease(lake, ttl_s=30, what="taker")
    taker.acquire(0)
    with pytest.raises(LeaseLost, match="run the command again"):
        stale.check()
    stale.renew()
    assert stale.lost
    taker.release()
    stale.release()  # lost: gives nothing back
    assert _state(lake) == "released"


def test_a_job_that_lost_its_lease_commits_nothing_more(lake_path):
    lake = Lake(str(lake_path))
    cfg = _cfg(lake.uri, "lake.lease_ttl_seconds=1", "run.run_id=slow")

    def body(ctx):
        from pivot_spark.lake.lease import current

        _stall(current(ctx.lake))
        time.sleep(1.2)
        other = WriterLease(Lake(str(lake_path)), ttl_s=30, what="other")  # another writer takes it over
        other.acquire(0)
        other.release()
        ctx.write_arrow(pivot_rows("late"), "pivots")
        return {}

    with pytest.raises(LeaseLost):
        run_job(cfg, "demo", body, quiet=True)
    assert not lake.exists("pivots")


def test_the_lease_is_reentrant_within_a_process(lake_path):
    lake = Lake(str(lake_path))
    with writer_lease(lake, ttl_s=30, wait_s=0, what="outer") as outer, \
            writer_lease(Lake(str(lake_path)), ttl_s=30, wait_s=0, what="inner") as inner:
        assert inner is outer
    assert _state(lake) == "released"
