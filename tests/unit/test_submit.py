"""pivot-spark submit: how the arguments are split, the spark-submit command line it assembles (--dry-run), where
the executors' Python comes from, the packed environment, and that nothing it prints holds a secret."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivot_spark.cli import app
from pivot_spark.config import REPO_ROOT
from pivot_spark.submit import (
    SHIPPED_PYTHON,
    SubmitError,
    env_archive_path,
    pack_env,
    shown,
    split_arguments,
)

JOB = {"--config": True, "-c": True, "--lake": True, "--run-id": True, "--ui": False}
OWN = {"--master": True, "--conf": True, "--dry-run": False}


def test_split_arguments_pivot_spark_options_first_then_spark_submit_and_double_dash_for_the_job():
    s = split_arguments(["-c", "cluster", "--executor-memory", "8g", "--packages=a:b:1", "select.seed=3",
                         "--master", "yarn", "--verbose", "--ui", "--conf", "spark.x=1", "--num-executors", "4",
                         "--", "--executor-memory", "not-for-spark", "-c"], own=OWN, job=JOB)
    assert s.own == ["--master", "yarn", "--conf", "spark.x=1"]
    assert s.job == ["-c", "cluster", "select.seed=3", "--ui", "--executor-memory", "not-for-spark", "-c"]
    assert s.spark == ["--executor-memory", "8g", "--packages=a:b:1", "--verbose", "--num-executors", "4"]
    with pytest.raises(SubmitError, match="--no-such-option is neither"):
        split_arguments(["--no-such-option", "1"], own=OWN, job=JOB)
    with pytest.raises(SubmitError, match="--executor-memory needs a value"):
        split_arguments(["--executor-memory"], own=OWN, job=JOB)
    with pytest.raises(SubmitError, match="--ui takes no value"):
        split_arguments(["--ui=yes"], own=OWN, job=JOB)


def dry_run(command: str, *args: str) -> list[str]:
    res = CliRunner().invoke(app, ["submit", command, "--dry-run", *args])
    assert res.exit_code == 0, res.output
    return shlex.split(res.stdout.strip())


def conf_of(cmd: list[str]) -> dict[str, str]:
    return dict(cmd[i + 1].split("=", 1) for i, a in enumerate(cmd) if a == "--conf")


def test_command_line_spark_options_before_the_entry_file_environment_shipped():
    cmd = dry_run("rebuild", "--master", "spark://h:7077", "--executor-memory", "8g", "--config", "cluster",
                  "--num-executors=4", "--files", "a.txt", "--py-files", "extra.zip", "--name", "pivot rebuild",
                  "--queue", "q", "--properties-file", "p.conf", "--jars", "x.jar", "--driver-memory", "2g",
                  "--packages", "io.delta:delta-spark_2.13:4.0.0", "select.seed=3", "--conf", "spark.x=1",
                  "--", "--lake", "s3://b/l")
    entry = cmd.index(str(REPO_ROOT / "jobs" / "rebuild.py"))
    assert cmd[0].endswith("/bin/spark-submit") and cmd[1:5] == ["--master", "spark://h:7077", "--deploy-mode",
                                                                  "client"]
    before = cmd[:entry]
    for opt, value in [("--executor-memory", "8g"), ("--files", "a.txt"), ("--name", "pivot rebuild"),
                       ("--queue", "q"), ("--properties-file", "p.conf"), ("--jars", "x.jar"),
                       ("--driver-memory", "2g"), ("--packages", "io.delta:delta-spark_2.13:4.0.0")]:
        assert before[before.index(opt) + 1] == value
    assert "--num-executors=4" in before
    assert cmd[entry + 1:] == ["--config", "cluster", "select.seed=3", "--lake", "s3://b/l"]
    py_files = before[before.index("--py-files") + 1].split(",")
    assert py_files[0].endswith("pivot_spark.zip") and py_files[1:] == ["extra.zip"]
    archive = before[before.index("--archives") + 1]
    assert archive.endswith(".tar.gz#environment") and Path(archive.split("#")[0]).name.startswith("env-")
    conf = conf_of(before)
    assert conf["spark.pyspark.python"] == SHIPPED_PYTHON == "./environment/bin/python"
    assert conf["spark.pyspark.driver.python"] == sys.executable  # client mode: the driver runs here
    assert conf["spark.x"] == "1" and before.count("--py-files") == 1 and before.count("--archives") == 1
    assert sys.prefix not in " ".join(v for k, v in conf.items() if k != "spark.pyspark.driver.python")


def test_python_from_the_image_for_k8s_or_when_asked_and_never_this_venv_for_executors(tmp_path):
    k8s = dry_run("annotate", "--master", "k8s://https://api:6443", "--deploy-mode", "cluster")
    assert "--archives" not in k8s and "spark.pyspark.python" not in conf_of(k8s)
    assert "spark.pyspark.driver.python" not in conf_of(k8s)  # the driver runs in the image too
    image = dry_run("annotate", "--master", "spark://h:7077", "--python-from-image")
    assert "--archives" not in image and "spark.pyspark.python" not in conf_of(image)
    shipped_k8s = dry_run("annotate", "--master", "k8s://https://api:6443", "--ship-env")
    assert conf_of(shipped_k8s)["spark.pyspark.python"] == SHIPPED_PYTHON
    path = dry_run("annotate", "--master", "spark://h:7077", "--python", "/opt/venv/bin/python")
    assert conf_of(path)["spark.pyspark.python"] == "/opt/venv/bin/python" and "--archives" not in path
    archive = tmp_path / "env.tar.gz"
    archive.write_bytes(b"")
    given = dry_run("annotate", "--master", "yarn", "--env-archive", str(archive), "--archives", "more.tgz#m")
    assert given[given.index("--archives") + 1] == f"{archive}#environment,more.tgz#m"


@pytest.mark.parametrize("args, message", [
    (["rebuild"], "needs --master"),
    (["--master", "yarn", "--executor-memory", "1g", "rebuild"], "unknown command '--executor-memory'"),
    (["nope", "--master", "yarn"], "unknown command 'nope'"),
    (["rebuild", "--master", "yarn", "--python", "/p", "--python-from-image"], "give one"),
    (["rebuild", "--master", "yarn", "--env-archive", "/no/such.tar.gz"], "no such file"),
    (["rebuild", "--master", "yarn", "--deploy-mode", "both"], "client or cluster"),
    (["rebuild", "--master", "yarn", "--conf", "novalue"], "key=value"),
    (["rebuild", "--master", "yarn", "--bogus"], "--bogus is neither"),
])
def test_bad_command_lines_exit_2_and_say_why(args, message):
    res = CliRunner().invoke(app, ["submit", "--dry-run", *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


def test_nothing_printed_holds_a_secret():
    cmd = dry_run("rebuild", "--master", "spark://h:7077", "--conf", "spark.hadoop.fs.s3a.secret.key=conf-secret-1",
                  "--conf=spark.authenticate.secret=conf-secret-2", "--repositories", "https://u:repo-pw-3@repo/m",
                  "--conf", "spark.ssl.keyStore=/etc/ks.jks", "--conf", "spark.kubernetes.driver.secretKeyRef.T=s:k",
                  "lake.storage_options.AWS_SECRET_ACCESS_KEY=override-secret-4", "select.token_budget=5000",
                  "spark.conf.spark.kubernetes.authenticate.submission.oauthToken=override-token-5",
                  "--lake", "s3://AKIA:lake-secret-6@bucket/lake", "tokenizer.vocab_size=8000")
    line = " ".join(cmd)
    for secret in ("conf-secret-1", "conf-secret-2", "repo-pw-3", "override-secret-4", "override-token-5",
                   "lake-secret-6", "AKIA"):
        assert secret not in line
    assert "spark.hadoop.fs.s3a.secret.key=***" in cmd and "spark.authenticate.secret=***" in cmd
    assert "lake.storage_options.AWS_SECRET_ACCESS_KEY=***" in cmd and "s3://***@bucket/lake" in cmd
    # settings that only look secret are shown: typed config keys, key store paths, references to Secrets
    assert {"select.token_budget=5000", "tokenizer.vocab_size=8000", "spark.ssl.keyStore=/etc/ks.jks",
            "spark.kubernetes.driver.secretKeyRef.T=s:k"} <= set(cmd)
    assert shown(["x", "a.password=p", "b.token=ok"], entry=0) == ["x", "a.password=***", "b.token=***"]
    assert shown(["spark-submit", "--conf=spark.a.password=p", "-c", "spark.b.token=t", "job.py"], entry=4) == \
        ["spark-submit", "--conf=spark.a.password=***", "-c", "spark.b.token=***", "job.py"]


def test_env_archive_is_a_venv_pack_tarball_named_by_the_installed_packages(tmp_path):
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = next(env.glob("lib/python*/site-packages"))
    (site / "mod.py").write_text("X = 1\n")
    (site / "__editable___proj_finder.py").write_text("")
    (site / "__editable__.proj.pth").write_text("import __editable___proj_finder\n")
    first = env_archive_path(tmp_path / "work", env)
    (site / "proj-1.0.dist-info").mkdir()
    second = env_archive_path(tmp_path / "work", env)
    assert first != second and second == env_archive_path(tmp_path / "work", env)
    out = pack_env(second, env)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert {"bin/python", "bin/activate", "pyvenv.cfg"} <= names
    assert any(n.endswith("site-packages/mod.py") for n in names)
    assert not any("__editable__" in n for n in names)  # the code travels on --py-files instead
    mtime = out.stat().st_mtime_ns
    assert pack_env(second, env) == out and out.stat().st_mtime_ns == mtime  # packed once
    with pytest.raises(SubmitError, match="not a virtual environment"):
        pack_env(tmp_path / "x.tar.gz", tmp_path)


@pytest.mark.slow
def test_real_submit_to_local_spark_on_the_smoke_fixture(tmp_path):
    """One real spark-submit: `ingest` of the smoke fixture on local[2], executors on this interpreter."""
    from deltalake import DeltaTable

    lake = tmp_path / "lake"
    env = {**os.environ, "PIVOT_SUBMIT_DIR": str(tmp_path / "submit")}
    res = subprocess.run([str(Path(sys.executable).parent / "pivot-spark"), "submit", "ingest",
                          "--master", "local[2]", "--python", sys.executable, "--config", "smoke",
                          "--lake", str(lake), "--driver-memory", "1g", "--conf", "spark.ui.enabled=false",
                          "spark.shuffle_partitions=2"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "--driver-memory 1g" in res.stderr and str(REPO_ROOT / "jobs" / "ingest.py") in res.stderr
    assert DeltaTable(str(lake / "documents")).to_pyarrow_table().num_rows > 0
