"""Every program ends with its work's status: 0 after work done, 2 after an input error, never an abort of the
interpreter's teardown after the work (delta-rs runtime teardown, delta-io/delta-rs#2184)."""

from __future__ import annotations

import time

import pytest

from pivot_spark.lake import Lake
from tests.support.reliability import document_rows, pivot_spark, program


@pytest.mark.parametrize("module", ["pivot_spark.cli", "training.cli", "evaluation.cli", "experiment.cli"])
def test_each_program_exits_0_with_its_version(module):
    res = program(module, "--version")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip()


def test_status_codes_of_work_and_of_input_errors(lake_path, tmp_path):
    Lake(str(lake_path)).write_arrow("documents", document_rows(["x"], run_id="r", snapshot="s"), mode="append",
                                     app_id="setup")
    assert pivot_spark("status", "--config", "smoke", "--lake", str(lake_path)).returncode == 0
    bad = pivot_spark("status", "--config", "smoke", "--lake", str(tmp_path / "missing"))
    assert bad.returncode == 2 and "no lake at" in bad.stderr
    assert pivot_spark("no-such-command").returncode == 2
    assert program("training.cli", "--lake", str(lake_path)).returncode == 2  # a usage error


@pytest.mark.slow
def test_fifty_runs_that_read_and_write_delta_tables_all_exit_0(lake_path):
    """``repair`` reads ``documents`` and ``runs``, writes its intent file and its ``runs`` row (and the lease
    table): 50 runs, 50 zeros."""
    lake = Lake(str(lake_path))
    lake.write_arrow("documents", document_rows([f"text {i}" for i in range(50)], run_id="r", snapshot="s"),
                     mode="append", app_id="setup")
    codes, t0 = [], time.perf_counter()
    for i in range(50):
        res = pivot_spark("repair", "--config", "smoke", "--lake", str(lake_path), "--run-id", f"exit-{i}")
        codes.append(res.returncode)
        assert "terminate called" not in res.stderr, res.stderr[-2000:]
    assert codes == [0] * 50, codes
    runs = lake.read_arrow("runs").to_pylist()
    assert sorted(r["run_id"] for r in runs if r["job"] == "repair") == sorted(f"exit-{i}" for i in range(50))
    assert time.perf_counter() - t0 < 600
