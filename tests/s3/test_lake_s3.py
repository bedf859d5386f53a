"""The whole chain with the input and the lake on S3 (moto on 127.0.0.1, tests/support/s3.py): ``pivot-spark
rebuild --config smoke`` writes the tables a local lake gets, a second run commits nothing, ``pivot-train`` streams
``train_set`` from the bucket, every file the jobs write is in the bucket (the local disk gets Spark's temporary
files only), and the secret key is in no output, run record, intent file or other object.

The commands run as the user runs them, in processes of their own: the storage options (credentials included) in
the config for ``pivot-spark``, in the environment for ``pivot-train`` (as the PyTorchJob sets them).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pivot_spark.lake import Lake
from pivot_spark.schemas import TABLES
from tests.support.s3 import S3Server

pytestmark = [pytest.mark.s3, pytest.mark.spark, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
BIN = Path(sys.executable).parent
SECRET = "s3cr3t-of-the-lake-test"
BUCKET = "pivot-s3-chain"
LAKE = f"s3://{BUCKET}/lake"
JOBS = ("ingest", "train-tokenizer", "annotate", "cooccur", "pivots", "score", "select")
# Where the same rows legitimately differ: the run that wrote them and the snapshot named after ingest's run id,
# which covers the input listing (s3:// URIs instead of local paths).
RUN_COLUMNS = {"run_id", "snapshot"}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        client = server.client(SECRET)
        client.create_bucket(Bucket=BUCKET)
        for p in sorted(CORPUS.iterdir()):
            client.upload_file(str(p), BUCKET, f"corpus/{p.name}")
        yield server


def _objects(server: S3Server) -> dict[str, bytes]:
    """Every object under ``lake/`` with its bytes (less the empty ``.../`` folder markers pyarrow makes)."""
    client = server.client(SECRET)
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="lake/")
            for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    return {k: client.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def _rows(lake: Lake, table: str) -> Counter[str]:
    """The table's rows (less :data:`RUN_COLUMNS`) as a multiset of their reprs: order-independent, exact."""
    t = lake.read_arrow(table)
    t = t.select([c for c in t.column_names if c not in RUN_COLUMNS])
    return Counter(repr(sorted(r.items())) for r in t.to_pylist())


class Sandbox:
    """Fresh working, home and temporary folders for a command, and what it left in each."""

    def __init__(self, root: Path) -> None:
        self.dirs = {name: root / name for name in ("cwd", "home", "tmp", "spark-local")}
        for d in self.dirs.values():
            d.mkdir(parents=True)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIVOT_"))}
        return {**env, "HOME": str(self.dirs["home"]), "TMPDIR": str(self.dirs["tmp"]),
                "SPARK_LOCAL_DIRS": str(self.dirs["spark-local"]), **extra}

    def run(self, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=self.dirs["cwd"], env=self.env(**env), capture_output=True, text=True,
                              timeout=600)

    def left(self) -> dict[str, list[str]]:
        """Files left in the working, home and temporary folders (Spark's local folder is its own)."""
        return {name: sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
                for name, d in self.dirs.items() if name != "spark-local"}


def _rebuild(box: Sandbox, s3: S3Server) -> subprocess.CompletedProcess[str]:
    return box.run([str(BIN / "pivot-spark"), "rebuild", "--config", "smoke", "--lake", LAKE,
                    f"ingest.input=s3://{BUCKET}/corpus", "lake.storage_options=" + json.dumps(s3.options(SECRET))])


def test_the_chain_on_s3_equals_a_local_lake_and_trains(s3, smoke_lake, tmp_path):
    box = Sandbox(tmp_path / "sandbox")
    first = _rebuild(box, s3)
    assert first.returncode == 0, first.stderr[-4000:]
    lake, local = Lake(LAKE, s3.options(SECRET)), Lake(str(smoke_lake))

    # the same tables as the local lake (the runs table aside: ids, times)
    tables = [t for t in TABLES if t != "runs" and local.exists(t)]
    assert [t for t in TABLES if t != "runs" and lake.exists(t)] == tables
    for table in tables:
        assert _rows(lake, table) == _rows(local, table), table

    # every file the jobs wrote is in the bucket
    objects = _objects(s3)
    runs = lake.read_arrow("runs").to_pylist()
    assert sorted(r["job"] for r in runs) == sorted([*JOBS, "rebuild"])
    intents = {k for k in objects if k.startswith("lake/_runs/")}
    assert intents == {f"lake/_runs/{r['run_id']}.json" for r in runs if r["job"] != "rebuild"}
    tok = next(r["tokenizer"] for r in runs if r["job"] == "train-tokenizer")
    assert f"lake/_models/tokenizer/{tok}.model" in objects
    assert {k.split("/")[1] for k in objects} == {*tables, "runs", "_runs", "_models", "_lease"}

    # a second run commits nothing
    versions = lake.versions(list(TABLES))
    second = _rebuild(box, s3)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "nothing was written" in second.stdout
    assert lake.versions(list(TABLES)) == versions

    # the trainer streams train_set from the bucket; its storage options come from the environment
    out = tmp_path / "train"
    train = box.run([str(BIN / "pivot-train"), "--lake", LAKE, "--selection", "main", "--arm", "pivot",
                     "--preset", "tiny", "--max-steps", "3", "--seq-len", "64", "--batch-size", "2",
                     "--device", "cpu", "--out", str(out)], **s3.options(SECRET))
    assert train.returncode == 0, train.stderr[-4000:]
    summary = json.loads((out / "final" / "pivot_train.json").read_text())
    assert summary["data"]["table"] == f"{LAKE}/train_set" and summary["data"]["tokenizer"] == tok
    assert summary["step"] == 3 and math.isfinite(summary["loss"]) and math.isfinite(summary["eval_loss"])

    # the secret key: in no output, no runs row, no intent file, no log or other object of the lake
    outputs = [p.stdout + p.stderr for p in (first, second, train)]
    assert "AWS_SECRET_ACCESS_KEY" in outputs[0]  # the printed config names it ...
    assert all(SECRET not in o for o in outputs)  # ... and shows no value
    assert all(SECRET not in json.dumps(r, default=str) for r in runs)
    stored: dict[str, Any] = json.loads(runs[0]["config"])["lake"]["storage_options"]
    assert stored["AWS_SECRET_ACCESS_KEY"] == "***" and stored["AWS_ENDPOINT_URL"] == s3.endpoint
    assert intents and not [k for k, body in objects.items() if SECRET.encode() in body]

    # locally, the commands made Spark's own temporary files and nothing else
    assert box.left() == {"cwd": [], "home": [], "tmp": []}
