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
def spark():
    from pivot_spark.config import load_config
    from pivot_spark.session import build_session

    cfg = load_config("smoke", ["spark.shuffle_partitions=2", "spark.master=local[2]"])
    s = build_session(cfg)
    yield s
    s.stop()


@pytest.fixture()
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"
