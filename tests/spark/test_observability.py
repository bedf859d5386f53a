"""Spark jobs carry the run id and what they do; event logs land where a History Server finds them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.session import EVENT_LOG_FOLDER, ensure_event_log_dir, event_log_dir

CHAIN = ("ingest", "train-tokenizer", "annotate", "cooccur", "pivots", "score", "select")


def test_event_logs_go_to_the_lake_or_the_configured_place(tmp_path):
    lake = tmp_path / "lake"
    assert event_log_dir(load_config("smoke", [f"lake.uri={lake}"])) == (lake / EVENT_LOG_FOLDER).as_uri()
    assert event_log_dir(load_config("smoke", ["lake.uri=s3://bucket/lake"])) == "s3a://bucket/lake/_spark-events"
    assert event_log_dir(load_config("smoke", ["lake.uri=s3://bucket/lake",
                                               "spark.event_log_dir=s3a://logs/spark"])) == "s3a://logs/spark"
    assert event_log_dir(load_config("smoke", ["lake.uri=s3://b/l", f"spark.event_log_dir={tmp_path}/ev"])) \
        == (tmp_path / "ev").as_uri()
    assert event_log_dir(load_config("smoke", ["spark.event_log=false"])) is None


def test_the_event_log_folder_is_created_and_a_file_in_its_place_is_an_error(tmp_path):
    ensure_event_log_dir((tmp_path / "lake" / EVENT_LOG_FOLDER).as_uri(), {})
    assert (tmp_path / "lake" / EVENT_LOG_FOLDER).is_dir()
    (tmp_path / "blocked").write_text("")
    with pytest.raises(ValueError, match="spark.event_log_dir"):
        ensure_event_log_dir((tmp_path / "blocked" / "events").as_uri(), {})


def _job_starts(folder: Path, wanted: set[str], timeout: float = 60.0) -> list[tuple[str, str]]:
    """(job group, description) of every job start in the event logs under ``folder``, once the groups in
    ``wanted`` all appear (events reach the log asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        starts = []
        for f in sorted(folder.rglob("events_*")):
            for line in f.read_text(errors="replace").splitlines():
                if '"SparkListenerJobStart"' in line:
                    try:
                        props = json.loads(line).get("Properties", {})
                    except json.JSONDecodeError:  # the line being written
                        continue
                    starts.append((props.get("spark.jobGroup.id"), props.get("spark.job.description")))
        if wanted <= {g for g, _ in starts} or time.monotonic() > deadline:
            return starts
        time.sleep(1)


@pytest.mark.spark
def test_every_spark_job_of_the_chain_is_named_after_its_run_and_step(smoke_lake, spark_events):
    runs = Lake(str(smoke_lake)).read_arrow("runs").to_pylist()
    job_of = {r["run_id"]: r["job"] for r in runs if r["job"] in CHAIN and r["status"] == "ok"}
    assert set(job_of.values()) == set(CHAIN)
    starts = [(g, d) for g, d in _job_starts(spark_events, set(job_of)) if g in job_of]
    assert {g for g, _ in starts} == set(job_of)
    unnamed = sorted({(job_of[g], d) for g, d in starts if not (d or "").startswith(f"{job_of[g]}: ")})
    assert unnamed == [], f"Spark jobs without a step name: {unnamed}"


@pytest.mark.spark
def test_a_run_labels_its_jobs_only_while_it_runs(spark, tmp_path):
    seen = {}

    def body(ctx: RunContext) -> dict:
        sc = ctx.spark.sparkContext
        seen["run"] = (sc.getLocalProperty("spark.jobGroup.id"), sc.getLocalProperty("spark.job.description"))
        with ctx.describe("count to three"):
            seen["step"] = sc.getLocalProperty("spark.job.description")
            ctx.spark.range(3).count()
        seen["after"] = sc.getLocalProperty("spark.job.description")
        return {}

    res = run_job(load_config("smoke", [f"lake.uri={tmp_path / 'lake'}"]), "probe", body, quiet=True)
    assert seen == {"run": (res["run_id"], "probe"), "step": "probe: count to three", "after": "probe"}
    sc = spark.sparkContext
    assert sc.getLocalProperty("spark.jobGroup.id") is None and sc.getLocalProperty("spark.job.description") is None


@pytest.mark.spark
def test_a_failing_spark_job_is_recorded_as_failed(spark, tmp_path):
    def body(ctx: RunContext) -> dict:
        def explode(batches):
            for _ in batches:
                raise RuntimeError("task blew up")
            yield pa.RecordBatch.from_pylist([])

        with ctx.describe("fail on purpose"):
            ctx.spark.range(2).mapInArrow(explode, "id long").collect()
        return {}

    cfg = load_config("smoke", [f"lake.uri={tmp_path / 'lake'}", "run.run_id=probe-fails"])
    with pytest.raises(Exception, match="task blew up"):
        run_job(cfg, "probe", body, quiet=True)
    (row,) = Lake(str(tmp_path / "lake")).read_arrow("runs").to_pylist()
    assert row["status"] == "failed" and "task blew up" in row["message"]


@pytest.mark.spark
def test_the_ui_is_served_on_request_and_its_address_printed(tmp_path):
    code = ("from pivot_spark.cli import _cfg\n"
            "from pivot_spark.session import build_session\n"
            f"cfg = _cfg('smoke', {str(tmp_path / 'lake')!r}, None, ['spark.master=local[1]'], ui=True)\n"
            "spark = build_session(cfg)\n"
            "print('CONF', spark.conf.get('spark.ui.enabled'), spark.sparkContext.uiWebUrl)\n"
            "spark.stop()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith("CONF ")]
    _, enabled, url = line.split()
    assert enabled == "true" and url.startswith("http://")
    assert f"Spark UI: {url}" in proc.stderr
    assert (tmp_path / "lake" / EVENT_LOG_FOLDER).is_dir()  # event logs on by default, in the lake
