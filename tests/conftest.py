"""Shared fixtures: one local SparkSession for the whole test run (start-up is the slow part)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"


@pytest.fixture(scope="session")
def spark_events(tmp_path_factory) -> Path:
    """Where the shared session writes its Spark event logs (uncompressed, for tests that read them)."""
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="session")
def spark(spark_events):
    from pivot_spark.config import load_config
    from pivot_spark.session import build_session

    cfg = load_config("smoke", ["spark.shuffle_partitions=2", "spark.master=local[2]",
                                f"spark.event_log_dir={spark_events}",
                                'spark.conf={"spark.eventLog.compress": "false"}'])
    s = build_session(cfg)
    yield s
    s.stop()


@pytest.fixture()
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture(scope="session")
def smoke_lake(spark, tmp_path_factory) -> Path:
    """The whole chain (`rebuild --config smoke`) run once on the fixture corpus; tests copy it to modify it."""
    from pivot_spark.config import load_config
    from pivot_spark.pipeline.rebuild import rebuild

    lake = tmp_path_factory.mktemp("smoke") / "lake"
    summary = rebuild(load_config("smoke", [f"lake.uri={lake}"]), quiet=True)
    assert [s["status"] for s in summary["stages"]][0] == "ok"
    return lake


@pytest.fixture()
def lake_copy(smoke_lake, tmp_path) -> Path:
    import shutil

    dest = tmp_path / "lake"
    shutil.copytree(smoke_lake, dest)
    return dest
