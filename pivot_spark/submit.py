"""``pivot-spark submit COMMAND [OPTIONS] [-- JOB ARGUMENTS]``: the pivot-spark commands through ``spark-submit``.

The project's Python code travels as a zip on ``--py-files`` (executors import the exact code the driver runs); the
model files travel with the job itself (each job ships the LID and tokenizer models with ``SparkContext.addFile``);
the entry point is the thin ``jobs/<command>.py`` file, the same one a SparkApplication points at.

Where the Python environment of the executors (and of a cluster-mode driver) comes from, one of:

- shipped (the default, except for ``k8s://`` masters): this virtual environment packed with venv-pack into a
  tar.gz (made once per set of installed packages, in ``.cache/submit`` or ``$PIVOT_SUBMIT_DIR``), sent with
  ``--archives env.tar.gz#environment`` and run as ``./environment/bin/python``; or an archive packed before
  (``--env-archive FILE``). The nodes need the same base Python at the same path (venv-pack links to it).
- the image (``--python-from-image``, the default for ``k8s://`` masters): nothing is shipped; the image's Python
  (its ``PYSPARK_PYTHON``) has the environment, as the project's Spark image does.
- a path (``--python PATH``): an interpreter with the environment at that path on every node.

A client-mode driver runs on this machine, with this interpreter.

The arguments after COMMAND are split in this order: everything after a lone ``--`` goes to the job as it is;
submit's own options (``--master``, ``--conf``, ...) are taken by submit; the command's pivot-spark options
(``--config``/``-c``, ``--lake``, ...) and ``section.key=value`` overrides go to the job; spark-submit's options
(``--executor-memory 8g``, ``--packages``, ``--num-executors``, ...) go to spark-submit, before the entry file;
anything else is an error. What is printed of the command line has secrets redacted (:func:`shown`).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pivot_spark.config import REPO_ROOT, ConfigError, override_target
from pivot_spark.io.fs import REDACTED
from pivot_spark.redaction import is_secret_setting, redact_text

JOB_FILES = {
    "ingest": "ingest.py", "train-tokenizer": "train_tokenizer.py", "annotate": "annotate.py",
    "cooccur": "cooccur.py", "pair-cooccur": "pair_cooccur.py", "pivots": "pivots.py", "score": "score.py",
    "select": "selection.py", "rebuild": "rebuild.py", "status": "status.py",
}

# spark-submit's options for submitting an application (Spark 4.2 `spark-submit --help`): name -> takes a value.
# --kill/--status/--class/--remote/--help/--version do not apply to running a pivot-spark command.
SPARK_SUBMIT_OPTIONS: dict[str, bool] = {
    **dict.fromkeys(["--master", "--deploy-mode", "--name", "--jars", "--packages", "--exclude-packages",
                     "--repositories", "--py-files", "--files", "--archives", "--conf", "--properties-file",
                     "--driver-memory", "--driver-java-options", "--driver-library-path", "--driver-class-path",
                     "--executor-memory", "--proxy-user", "--driver-cores", "--total-executor-cores",
                     "--executor-cores", "--num-executors", "--principal", "--keytab", "--queue"], True),
    **dict.fromkeys(["--supervise", "--verbose", "-v", "--load-spark-defaults"], False),
}
# Options given to spark-submit once, as comma-separated lists: the user's entries join the ones submit adds.
_LIST_OPTIONS = ("--py-files", "--archives")

ENV_ALIAS = "environment"
SHIPPED_PYTHON = f"./{ENV_ALIAS}/bin/python"


class SubmitError(ValueError):
    """A submit command line that cannot run: the message says what to change."""


@dataclass
class SplitArguments:
    """The arguments after COMMAND, by destination (each list keeps the order and spelling given)."""

    own: list[str] = field(default_factory=list)
    job: list[str] = field(default_factory=list)
    spark: list[str] = field(default_factory=list)


def split_arguments(argv: Sequence[str], *, own: Mapping[str, bool], job: Mapping[str, bool]) -> SplitArguments:
    """Split the arguments after COMMAND (see the module's rule). ``own`` and ``job`` map option names (``--lake``,
    ``-c``) to whether the option takes a value; ``--name=value`` is accepted for any option that takes one."""
    out = SplitArguments()
    tables = ((own, out.own), (job, out.job), (SPARK_SUBMIT_OPTIONS, out.spark))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out.job += argv[i + 1:]
            break
        name, eq, _ = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        for table, dest in tables:
            if name not in table:
                continue
            if table[name] and not eq:
                if i + 1 >= len(argv):
                    raise SubmitError(f"{name} needs a value")
                dest += [arg, argv[i + 1]]
                i += 1
            elif eq and not table[name]:
                raise SubmitError(f"{name} takes no value")
            else:
                dest.append(arg)
            break
        else:
            if arg.startswith("-") and arg != "-":
                raise SubmitError(f"{arg} is neither an option of this command, of submit nor of spark-submit; "
                                  "arguments after -- go to the job as they are")
            out.job.append(arg)  # overrides and the command's other arguments
        i += 1
    return out


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


def env_archive_path(work: Path, prefix: Path | None = None) -> Path:
    """Where the packed copy of the environment at ``prefix`` (default: this one) goes, named by a digest of its
    installed distributions and their versions: a changed environment is packed again, an unchanged one reused."""
    root = Path(prefix or sys.prefix)
    dists = sorted(p.name for p in root.glob("lib/python*/site-packages/*.dist-info"))
    digest = hashlib.sha256("\n".join(dists).encode()).hexdigest()[:16]
    return work / f"env-{digest}.tar.gz"


def pack_env(dest: Path, prefix: Path | None = None) -> Path:
    """Pack the virtual environment at ``prefix`` (default: this one) into ``dest`` with venv-pack, unless done.
    Editable installs' import hooks are left out: the code travels on ``--py-files``."""
    root = Path(prefix or sys.prefix)
    if dest.is_file():
        return dest
    if not (root / "pyvenv.cfg").is_file():
        raise SubmitError(f"{root} is not a virtual environment, so it cannot be shipped: pass "
                          "--python-from-image, --python PATH or --env-archive FILE")
    import venv_pack

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    print(f"submit: packing {root} into {dest} (once per set of installed packages)", file=sys.stderr)
    venv_pack.pack(prefix=str(root), output=str(tmp), format="tar.gz", force=True,
                   filters=[("exclude", "lib/python*/site-packages/__editable__*")])
    tmp.replace(dest)
    for old in dest.parent.glob("env-*.tar.gz"):
        if old != dest:
            old.unlink()
    return dest


def job_file(command: str) -> Path:
    if command not in JOB_FILES:
        raise SubmitError(f"unknown command {command!r} for submit: one of {', '.join(JOB_FILES)}")
    for base in (REPO_ROOT / "jobs", Path(sys.prefix) / "share" / "pivot-spark" / "jobs"):
        p = base / JOB_FILES[command]
        if p.exists():
            return p
    raise FileNotFoundError(f"jobs/{JOB_FILES[command]} not found next to the package")


def _take(args: list[str], option: str) -> tuple[list[str], list[str]]:
    """(the comma-separated entries of every ``option`` in ``args``, ``args`` without them)."""
    entries: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == option and i + 1 < len(args):
            entries += [e for e in args[i + 1].split(",") if e]
            i += 2
            continue
        if args[i].startswith(option + "="):
            entries += [e for e in args[i].split("=", 1)[1].split(",") if e]
        else:
            rest.append(args[i])
        i += 1
    return entries, rest


def _conf_items(conf: Sequence[str]) -> list[str]:
    for item in conf:
        if "=" not in item:
            raise SubmitError(f"--conf {item!r} must look like key=value")
    return list(conf)


def submit_command(command: str, job_args: Sequence[str], *, master: str, code: Path,
                   deploy_mode: str = "client", spark_args: Sequence[str] = (), conf: Sequence[str] = (),
                   python: str | None = None, archive: Path | None = None) -> list[str]:
    """The spark-submit command line: spark-submit's options (the user's ``spark_args`` first, then the code zip,
    the environment archive, and the Python settings, then the user's ``--conf`` items, which win), the entry
    file, the job's arguments. ``python``: the executors' interpreter on the nodes; ``archive``: the environment
    to ship as ``#environment``; neither: the image's Python."""
    if deploy_mode not in ("client", "cluster"):
        raise SubmitError(f"--deploy-mode must be client or cluster, not {deploy_mode!r}")
    if python and archive:
        raise SubmitError("--python names an interpreter on the nodes; it cannot go with a shipped environment")
    py_files, rest = _take(list(spark_args), "--py-files")
    archives, rest = _take(rest, "--archives")
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master, "--deploy-mode", deploy_mode, *rest,
           "--py-files", ",".join([str(code), *py_files])]
    if archive is not None:
        archives.insert(0, f"{archive}#{ENV_ALIAS}")
    if archives:
        cmd += ["--archives", ",".join(archives)]
    settings = {"spark.sql.execution.arrow.pyspark.enabled": "true"}
    executors = python or (SHIPPED_PYTHON if archive is not None else None)
    if executors:
        settings["spark.pyspark.python"] = executors
    if deploy_mode == "client":  # the driver runs here
        settings["spark.pyspark.driver.python"] = sys.executable
    for k, v in settings.items():
        cmd += ["--conf", f"{k}={v}"]
    for item in _conf_items(conf):
        cmd += ["--conf", item]
    return [*cmd, str(job_file(command)), *job_args]


def _redact_assignment(item: str, *, override: bool) -> str:
    key, value = item.split("=", 1)
    secret = is_secret_setting(key)
    if override:  # a config override: only entries of free-form maps (spark.conf, storage options) hold secrets
        try:
            map_key = override_target(key).map_key
            secret = map_key is not None and is_secret_setting(map_key)
        except ConfigError:
            pass
    return f"{key}={REDACTED if secret else redact_text(value)}"


def shown(cmd: Sequence[str], *, entry: int | None = None) -> list[str]:
    """``cmd`` as it may be printed: values of secret ``--conf`` settings and of secret config overrides (entries
    of ``spark.conf``, ``lake.storage_options``, ...) as ``***``, credentials in URIs removed. ``entry``: the index
    of the entry file (arguments after it are the job's)."""
    out: list[str] = []
    after_conf = False
    for i, arg in enumerate(cmd):
        job = entry is not None and i > entry
        if after_conf and "=" in arg:
            out.append(_redact_assignment(arg, override=False))
        elif arg.startswith("--conf=") and "=" in arg[7:]:
            out.append("--conf=" + _redact_assignment(arg[7:], override=False))
        elif job and "=" in arg and not arg.startswith("-"):
            out.append(_redact_assignment(arg, override=True))
        else:
            out.append(redact_text(arg))
        after_conf = not job and arg in ("--conf", "-c")
    return out


def submit(command: str, job_args: Sequence[str], *, master: str, deploy_mode: str = "client",
           spark_args: Sequence[str] = (), conf: Sequence[str] = (), python: str | None = None,
           python_from_image: bool | None = None, env_archive: Path | None = None, dry_run: bool = False,
           work_dir: Path | None = None) -> int:
    """Run ``command`` through spark-submit (see the module's doc for where the environment comes from);
    ``dry_run``: print the command line (redacted) and run nothing, pack nothing. Returns the exit status."""
    work = Path(work_dir or os.environ.get("PIVOT_SUBMIT_DIR") or REPO_ROOT / ".cache" / "submit")
    chosen = [n for n, v in (("--python", python), ("--python-from-image", python_from_image),
                             ("--env-archive", env_archive)) if v]
    if len(chosen) > 1:
        raise SubmitError(f"{' and '.join(chosen)} name two sources of the executors' Python: give one")
    if python_from_image is None:
        python_from_image = master.startswith("k8s://") and not python and env_archive is None
    archive: Path | None = None
    if env_archive is not None:
        if not env_archive.is_file():
            raise SubmitError(f"--env-archive {env_archive}: no such file (make one with venv-pack)")
        archive = env_archive
    elif not python and not python_from_image:
        archive = env_archive_path(work)
    code = work / "pivot_spark.zip"
    cmd = submit_command(command, job_args, master=master, code=code, deploy_mode=deploy_mode,
                         spark_args=spark_args, conf=conf, python=python, archive=archive)
    line = shlex.join(shown(cmd, entry=len(cmd) - len(job_args) - 1))
    if dry_run:
        print(line)
        return 0
    package_code(work)
    if archive is not None and env_archive is None:
        pack_env(archive)
    env = dict(os.environ)
    env["SPARK_HOME"] = str(spark_home())
    print("+ " + line, file=sys.stderr)
    return subprocess.call(cmd, env=env)
