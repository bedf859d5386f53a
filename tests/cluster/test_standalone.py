"""`rebuild` submitted to a standalone cluster on 127.0.0.1 gives the same tables as a local-mode run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pivot_spark.lake import Lake

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
COMPARED = ["documents", "quarantine", "doc_lang", "doc_tokens", "token_stats", "cooccurrence", "pivots",
            "doc_pivot", "train_set"]


def _sorted(t: pa.Table) -> pa.Table:
    keys = [c for c in t.column_names if not pa.types.is_list(t.schema.field(c).type)
            and not pa.types.is_struct(t.schema.field(c).type)]
    return t.select(sorted(t.column_names)).sort_by([(k, "ascending") for k in sorted(keys)])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pivot_spark.cli", *args], cwd=REPO, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"), timeout=1500)


def test_rebuild_on_standalone_cluster_equals_local(standalone_master, smoke_lake, tmp_path):
    lake_dir = tmp_path / "cluster-lake"
    r = _cli("submit", "rebuild", "--master", standalone_master, "--conf", "spark.executor.memory=2g",
             "--conf", "spark.sql.shuffle.partitions=4", "--config", "smoke", "--lake", str(lake_dir))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    cluster, local = Lake(str(lake_dir)), Lake(str(smoke_lake))
    for table in COMPARED:
        a, b = cluster.read_arrow(table), local.read_arrow(table)
        assert a.num_rows == b.num_rows, table
        assert _sorted(a).equals(_sorted(b)), f"{table} differs between the cluster and local runs"
