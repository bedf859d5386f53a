"""Secrets planted in lake.storage_options, ingest.storage_options, spark.conf and a submit --conf appear in no
output, no file of the lake (tables, runs, intent files, event logs) and no log, after real commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.reliability import pivot_spark

pytestmark = pytest.mark.spark
SECRETS = {"lake": "LakeSecret-7f3a9c1e", "ingest": "IngestToken-c41d2b77", "conf": "SparkConfSecret-99ab10",
           "submit": "SubmitSecret-5e6f2d0"}


def _planted(lake: Path) -> list[str]:
    return ["--config", "smoke", "--lake", str(lake),
            f"lake.storage_options.AWS_SECRET_ACCESS_KEY={SECRETS['lake']}",
            f"ingest.storage_options.AWS_SESSION_TOKEN={SECRETS['ingest']}",
            f"spark.conf.spark.hadoop.fs.s3a.secret.key={SECRETS['conf']}"]


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [name for name, secret in SECRETS.items() if secret.encode() in data]


def test_planted_secrets_appear_nowhere(tmp_path):
    lake = tmp_path / "lake"
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.jsonl").write_text("".join(json.dumps({"text": f"A short document number {i}."}) + "\n"
                                         for i in range(20)))
    runs = [
        pivot_spark("config", "show", *_planted(lake)),
        pivot_spark("ingest", "--input", str(inp), *_planted(lake)),
        pivot_spark("ingest", "--input", str(tmp_path / "missing"), *_planted(lake)),  # fails: exit 2
        pivot_spark("status", *_planted(lake)),
        pivot_spark("status", "--json", *_planted(lake)),
        pivot_spark("repair", *_planted(lake)),
        pivot_spark("vacuum", "--dry-run", *_planted(lake)),
        pivot_spark("vacuum", "--retention-hours", "0", *_planted(lake)),
        pivot_spark("submit", "status", "--master", "local[1]", "--dry-run", "--python", "/usr/bin/python3",
                    "--conf", f"spark.hadoop.fs.s3a.secret.key={SECRETS['submit']}",
                    "--conf", f"spark.executorEnv.AWS_SECRET_ACCESS_KEY={SECRETS['submit']}", *_planted(lake)),
    ]
    assert [r.returncode for r in runs] == [0, 0, 2, 0, 0, 0, 0, 0, 0], [r.stderr[-2000:] for r in runs]
    assert "***" in runs[0].stdout and "spark-submit" in runs[-1].stdout + runs[-1].stderr
    for r in runs:
        assert _leaks(r.stdout) == [] and _leaks(r.stderr) == [], (r.args, r.stdout[-500:], r.stderr[-500:])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("_runs" in p.parts for p in files) and any(p.suffix == ".parquet" for p in files)
    assert any("_spark-events" in p.parts for p in files), "the event log is checked too"
    leaked = {str(p): _leaks(p.read_bytes()) for p in files if _leaks(p.read_bytes())}
    assert leaked == {}
