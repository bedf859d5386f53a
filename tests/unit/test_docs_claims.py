"""What README.md and docs/operations.md claim about the command lines: every config key they name exists in the
config model, every command line in their shell blocks runs (with `--help`, or `--dry-run` for submit, and its
overrides load), and the README keeps its two set-up commands."""

from __future__ import annotations

import re
import shlex
import typing
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivot_spark.config import ConfigError, PivotConfig, SparkConfig, load_config, override_target

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "docs" / "operations.md"]
SECTIONS = sorted(set(PivotConfig.model_fields) - {"preset"})
# `section.key...` in a code span or a shell line, not part of a longer name (pivot_spark.lake.x, jobs/select.py)
KEY = re.compile(r"(?<![\w./-])(?:" + "|".join(SECTIONS) + r")\.[A-Za-z_][\w]*(?:\.[\w-]+)*")
FILES = re.compile(r"\.(py|ya?ml|md|txt|json|gz|ftz|model|toml|sh|env)$")
PROGRAMS = ("pivot-spark", "pivot-train", "pivot-eval", "pivot-experiment")


def code(text: str) -> list[str]:
    """Inline code spans and the lines of fenced blocks."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
    rest = re.sub(r"```[^\n]*\n.*?```", "", text, flags=re.S)
    return re.findall(r"`([^`\n]+)`", rest) + [line for b in blocks for line in b.splitlines()]


def is_spark_property(key: str) -> bool:
    """`spark.executor.memoryOverhead` is Spark's setting; `spark.shuffle_partitions` is the config's (its keys
    are fields of SparkConfig or snake_case)."""
    parts = key.split(".")
    if not key.startswith("spark.") or len(parts) < 2:
        return False
    field = SparkConfig.model_fields.get(parts[1])
    if field is None:
        return "_" not in parts[1]
    # a setting that is not a map takes no sub-keys: `spark.ui.prometheus.enabled` is Spark's, `spark.ui` ours
    return len(parts) > 2 and typing.get_origin(field.annotation) is not dict


def documented_keys() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for span in code(doc.read_text(encoding="utf-8")):
            for m in KEY.finditer(span):
                key = m.group(0)
                if not FILES.search(key) and not is_spark_property(key):
                    found.append((doc.name, key))
    return found


def test_docs_name_config_keys():
    keys = {k for _, k in documented_keys()}
    assert {"select.token_budget", "spark.conf.spark.ui.enabled", "lake.storage_options.AWS_ALLOW_HTTP",
            "annotate.direct_read"} <= keys
    assert not is_spark_property("spark.shuffle_partition") and is_spark_property("spark.executor.memory")


@pytest.mark.parametrize("doc, key", documented_keys())
def test_every_documented_config_key_exists(doc, key):
    try:
        override_target(key)
    except ConfigError as e:
        pytest.fail(f"{doc} names {key}, which is not a config key: {e}")


def shell_lines(doc: Path) -> list[list[str]]:
    """The command lines of the doc's shell blocks that run one of the project's programs."""
    out = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv and Path(argv[0]).name in PROGRAMS:
                out.append([Path(argv[0]).name, *argv[1:]])
    return out


def documented_commands() -> list[list[str]]:
    return [argv for doc in DOCS for argv in shell_lines(doc)]


def runner(program: str) -> Callable[[list[str]], tuple[int, str]]:
    if program == "pivot-train":
        from training.cli import main

        def run_train(argv: list[str]) -> tuple[int, str]:
            try:
                main(argv)
            except SystemExit as e:
                return int(e.code or 0), ""
            return 0, ""

        return run_train
    if program == "pivot-spark":
        from pivot_spark.cli import app
    elif program == "pivot-eval":
        from evaluation.cli import app
    else:
        from experiment.cli import app

    def run(argv: list[str]) -> tuple[int, str]:
        res = CliRunner().invoke(app, argv)
        return res.exit_code, res.output

    return run


def test_the_docs_show_command_lines_of_every_program():
    assert {argv[0] for argv in documented_commands()} == set(PROGRAMS)
    assert any(argv[:2] == ["pivot-spark", "submit"] for argv in documented_commands())


@pytest.mark.parametrize("argv", documented_commands(), ids=" ".join)
def test_every_documented_command_line_runs(argv):
    program, args = argv[0], argv[1:]
    if args[:1] == ["submit"]:  # the whole command line, as spark-submit would get it
        args = [*args[:2], "--dry-run", *args[2:]]
    elif "--help" not in args:
        args = [*args, "--help"]  # parses every option given (an unknown one fails) and prints the help
    code_, output = runner(program)(args)
    assert code_ == 0, f"{' '.join(argv)}: exit {code_}\n{output}"
    if program == "pivot-spark":  # the overrides load into the config
        overrides = [a for prev, a in zip(argv[1:], argv[2:], strict=False)
                     if re.fullmatch(r"[a-z_]+(\.[\w.-]+)+=.*", a) and prev != "--conf"]
        load_config("smoke", overrides)


def test_readme_has_exactly_two_set_up_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"```bash\n(.*?)```", setup, flags=re.S) == ["make demo\n", "make test\n"]
