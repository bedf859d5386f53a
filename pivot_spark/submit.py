"""``pivot-spark submit <command> --master URL``: the same commands through ``spark-submit``.

The project's Python code travels as a zip on ``--py-files`` (so executors import the exact code the driver runs);
the model files travel with the job itself (each job ships the LID and tokenizer models with
``SparkContext.addFile``); the entry point is the thin ``jobs/<command>.py`` file, the same one a
SparkApplication points at. Executors run the interpreter given by ``--python`` (default: this one), which must
have the project's dependencies (true for the Spark image, and for a standalone cluster on this machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from pivot_spark.config import REPO_ROOT

JOB_FILES = {
    "ingest": "ingest.py", "train-tokenizer": "train_tokenizer.py", "annotate": "annotate.py",
    "cooccur": "cooccur.py", "pair-cooccur": "pair_cooccur.py", "pivots": "pivots.py", "score": "score.py",
    "select": "selection.py", "rebuild": "rebuild.py", "status": "status.py",
}


def spark_home() -> Path:
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    import pyspark

    return Path(pyspark.__file__).parent


def package_code(out_dir: Path) -> Path:
    """Zip the ``pivot_spark`` package (code and presets) for ``--py-files``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / "pivot_spark.zip"
    tmp = dest.with_suffix(".zip.tmp")
    root = Path(__file__).resolve().parent
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(root.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".yaml", ".txt"):
                z.write(p, Path("pivot_spark") / p.relative_to(root))
    tmp.replace(dest)
    return dest


def job_file(command: str) -> Path:
    if command not in JOB_FILES:
        raise ValueError(f"unknown command {command!r} for submit: one of {', '.join(JOB_FILES)}")
    for base in (REPO_ROOT / "jobs", Path(sys.prefix) / "share" / "pivot-spark" / "jobs"):
        p = base / JOB_FILES[command]
        if p.exists():
            return p
    raise FileNotFoundError(f"jobs/{JOB_FILES[command]} not found next to the package")


def submit_command(command: str, args: list[str], *, master: str, python: str | None = None,
                   deploy_mode: str = "client", conf: dict[str, str] | None = None,
                   work_dir: Path | None = None) -> list[str]:
    work = work_dir or Path(os.environ.get("PIVOT_SUBMIT_DIR", REPO_ROOT / ".cache" / "submit"))
    code = package_code(work)
    py = python or sys.executable
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--deploy-mode", deploy_mode,
           "--py-files", str(code),
           "--conf", f"spark.pyspark.python={py}", "--conf", f"spark.pyspark.driver.python={py}",
           "--conf", "spark.sql.execution.arrow.pyspark.enabled=true"]
    for k, v in (conf or {}).items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += [str(job_file(command)), *args]
    return cmd


def submit(command: str, args: list[str], *, master: str, python: str | None = None,
           deploy_mode: str = "client", conf: dict[str, str] | None = None) -> int:
    cmd = submit_command(command, args, master=master, python=python, deploy_mode=deploy_mode, conf=conf)
    env = dict(os.environ)
    env.setdefault("PYSPARK_PYTHON", python or sys.executable)
    env["SPARK_HOME"] = str(spark_home())
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, env=env)
