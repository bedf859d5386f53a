"""The nightly rebuild as the production overlay schedules it, run end to end against an S3 endpoint on 127.0.0.1.

``kubectl kustomize k8s/overlays/prod`` renders the ScheduledSparkApplication ``pivot-rebuild``; the test runs
what its pods would: ``spark-submit`` of the entry file it names, with its arguments, its Spark and Hadoop
settings, its driver memory and its driver environment, and the ``pivot-spark-config`` ConfigMap mounted where the
arguments read it (the ``cluster`` preset with the overlay's lake and input). What differs is where it runs:

- **endpoint and credentials**: the driver's environment takes the test's keys where the manifest takes them from
  the Secret ``pivot-lake-credentials``, plus ``AWS_ENDPOINT_URL``/``AWS_ALLOW_HTTP`` naming the moto endpoint
  (on AWS the SDK's default endpoint).
- **bucket and corpus**: the overlay's own paths, ``s3://pivot-lake/lake`` and ``s3://pivot-lake/corpus``, with
  the fixture corpus uploaded to the latter.
- **Spark**: ``local[2]`` instead of the Kubernetes master. The Delta and S3A jars of the Spark image are not
  here, so the lake goes through the delta-rs bridge and pyarrow, and Spark writes no event log (it says so);
  the two settings that name Delta's classes (the session extension and the catalog) are left out, as Spark
  cannot load classes it does not have (the jobs set both themselves where the jars are).
- **one override**, ``select.token_budget``: the preset's budget (4e9 tokens per arm) is far more than the
  fixture holds, and ``select`` refuses a budget the pool cannot fill ("fewer than the budget ... lower
  select.token_budget or add documents"): the nightly schedule fails the same way on any corpus that small, so
  the budget is lowered to one the fixture can fill. Every other size of the preset stands (vocabulary 32,000,
  windows 10 and 100, 256 shards, 400 shuffle partitions).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pivot_spark.lake import Lake
from tests.support.s3 import REGION, S3Server

pytestmark = [pytest.mark.s3, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "corpus"
BIN = Path(sys.executable).parent
SECRET = "s3cr3t-of-the-nightly-test"
IMAGE_JOBS = "local:///opt/pivot-spark/jobs/"  # where the Spark image keeps the repository's jobs/
DELTA_CLASSES = ("io.delta.", "org.apache.spark.sql.delta.")  # see the module docstring
BUDGET = "select.token_budget=100000"  # see the module docstring


def _render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    out = subprocess.run([kubectl, "kustomize", str(REPO / "k8s" / "overlays" / overlay)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _named(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def _mounted_files(objs: list[dict[str, Any]], template: dict[str, Any], into: Path) -> dict[str, str]:
    """The driver's ConfigMap volumes written under ``into``: mount path in the pod -> folder here."""
    volumes = {v["name"]: v for v in template.get("volumes", [])}
    mounts = {}
    for m in template["driver"].get("volumeMounts", []):
        cm = _named(objs, "ConfigMap", volumes[m["name"]]["configMap"]["name"])
        folder = into / m["name"]
        folder.mkdir(parents=True)
        for fname, text in cm["data"].items():
            (folder / fname).write_text(text)
        mounts[m["mountPath"].rstrip("/")] = str(folder)
    return mounts


def _in_sandbox(arg: str, mounts: dict[str, str]) -> str:
    for pod_path, here in mounts.items():
        if arg == pod_path or arg.startswith(pod_path + "/"):
            return here + arg[len(pod_path):]
    return arg


def _driver_env(template: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    env = {}
    for e in template["driver"].get("env", []):
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            assert ref["name"] == "pivot-lake-credentials", ref
            env[e["name"]] = secret[ref["key"]]
        else:
            env[e["name"]] = e["value"]
    return env


def test_the_nightly_rebuild_of_the_prod_overlay_runs_end_to_end(tmp_path):
    objs = _render("prod")
    template = _named(objs, "ScheduledSparkApplication", "pivot-rebuild")["spec"]["template"]
    assert template["mainApplicationFile"].startswith(IMAGE_JOBS)
    entry = REPO / "jobs" / template["mainApplicationFile"].removeprefix(IMAGE_JOBS)
    mounts = _mounted_files(objs, template, tmp_path / "volumes")
    args = [_in_sandbox(a, mounts) for a in template.get("arguments", [])]
    config = yaml.safe_load(Path(args[args.index("--config") + 1]).read_text())
    bucket = config["lake"]["uri"].removeprefix("s3://").split("/", 1)[0]
    assert config["ingest"]["input"] == f"s3://{bucket}/corpus"

    spark_conf = template.get("sparkConf", {})
    delta = {k for k, v in spark_conf.items() if v.startswith(DELTA_CLASSES)}
    assert delta == {"spark.sql.extensions", "spark.sql.catalog.spark_catalog"}
    conf = {**{k: v for k, v in spark_conf.items() if k not in delta},
            **{f"spark.hadoop.{k}": v for k, v in template.get("hadoopConf", {}).items()},
            "spark.driver.memory": template["driver"]["memory"]}
    with S3Server() as s3:
        client = s3.client(SECRET)
        client.create_bucket(Bucket=bucket)
        for p in sorted(CORPUS.iterdir()):
            client.upload_file(str(p), bucket, f"corpus/{p.name}")
        options = s3.options(SECRET)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIVOT_"))},
               **_driver_env(template, options), "AWS_ENDPOINT_URL": s3.endpoint, "AWS_ALLOW_HTTP": "true",
               "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        cmd = [str(BIN / "spark-submit"), "--master", "local[2]",
               *[a for k, v in conf.items() for a in ("--conf", f"{k}={v}")], str(entry), *args, BUDGET]
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=850)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]

        lake = Lake(config["lake"]["uri"], {**config["lake"]["storage_options"], **options})
        runs = lake.read_arrow("runs").to_pylist()
        assert sorted(r["job"] for r in runs if r["status"] == "ok") == sorted(
            ["ingest", "train-tokenizer", "annotate", "cooccur", "pivots", "score", "select", "rebuild"])
        stored = json.loads(next(r["config"] for r in runs if r["job"] == "select"))
        # the cluster preset as the overlay extends it, with the one override
        assert (stored["tokenizer"]["vocab_size"], stored["cooccur"]["windows"], stored["select"]["n_shards"],
                stored["spark"]["shuffle_partitions"]) == (32000, [10, 100], 256, 400)
        assert stored["select"]["token_budget"] == 100000
        assert stored["lake"]["storage_options"] == {"AWS_REGION": REGION, "AWS_CONDITIONAL_PUT": "etag"}
        train = lake.read_arrow("train_set", columns=["selection", "arm", "n_tokens"]).to_pylist()
        assert {(r["selection"], r["arm"]) for r in train} == {("main", "pivot"), ("main", "random")}
        assert SECRET not in run.stdout + run.stderr
