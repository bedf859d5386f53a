"""A real Spark standalone cluster on loopback: one master and two workers started from pip's pyspark."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pivot_spark.submit import spark_home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
            return int(json.load(r).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture(scope="session")
def standalone_master(tmp_path_factory):
    home = spark_home()
    work = tmp_path_factory.mktemp("standalone")
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               SPARK_WORKER_DIR=str(work / "work"), SPARK_LOG_DIR=str(work / "logs"),
               SPARK_DAEMON_JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    port, ui = _free_port(), _free_port()
    spark_class = str(home / "bin" / "spark-class")
    procs = [subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=open(work / "master.log", "w"), stderr=subprocess.STDOUT)]  # noqa: SIM115
    url = f"spark://127.0.0.1:{port}"
    for i in range(2):
        procs.append(subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                       "--cores", "1", "--memory", "3g", "--webui-port", str(_free_port()),
                                       "--work-dir", str(work / f"w{i}"), url], env=env,
                                      stdout=open(work / f"worker{i}.log", "w"),  # noqa: SIM115
                                      stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 120
        while _alive_workers(ui) < 2:
            if time.time() > deadline or any(p.poll() is not None for p in procs):
                logs = "\n".join(Path(f).read_text()[-2000:] for f in work.glob("*.log"))
                pytest.fail(f"standalone cluster did not come up with 2 workers:\n{logs}")
            time.sleep(1)
        yield url
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
