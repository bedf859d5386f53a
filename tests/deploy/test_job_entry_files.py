"""jobs/*.py, the files spark-submit and the SparkApplications run, each call the CLI with the right command.

spark-submit runs an entry file as a script, which puts jobs/ first on sys.path: a file named like a stdlib
module (select.py) would shadow it for pyspark and everything else in the driver, so no name may collide.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRY_FILES = sorted(p for p in (REPO_ROOT / "jobs").glob("*.py") if p.name != "__init__.py")
SPARK_COMMANDS = {"ingest", "train-tokenizer", "annotate", "cooccur", "pair-cooccur", "pivots", "score", "select",
                  "rebuild", "status"}


def entry_command(path: Path) -> str:
    """The command an entry file passes to pivot_spark.cli.main under `if __name__ == "__main__"`."""
    tree = ast.parse(path.read_text())
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "pivot_spark.cli"]
    assert imports and any(a.name == "main" for a in imports[0].names), f"{path.name}: imports no cli main"
    (guard,) = [n for n in tree.body if isinstance(n, ast.If)]
    assert ast.unparse(guard.test) == "__name__ == '__main__'"
    (stmt,) = guard.body
    assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
    call = stmt.value
    assert ast.unparse(call.func) == "main" and len(call.args) == 1 and isinstance(call.args[0], ast.List)
    first, rest = call.args[0].elts
    assert isinstance(first, ast.Constant) and ast.unparse(rest) == "*sys.argv[1:]"
    return first.value


def test_every_spark_command_has_an_entry_file() -> None:
    assert {entry_command(p) for p in ENTRY_FILES} == SPARK_COMMANDS
    assert (REPO_ROOT / "jobs" / "__init__.py").is_file()


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_entry_file_passes_its_command_and_the_arguments(path: Path) -> None:
    command = entry_command(path)
    assert command in SPARK_COMMANDS
    expected_stem = {"select": "selection"}.get(command, command.replace("-", "_"))
    assert path.stem == expected_stem


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.name)
def test_entry_file_shadows_no_stdlib_module(path: Path) -> None:
    assert path.stem not in sys.stdlib_module_names


def test_entry_commands_exist_in_the_cli() -> None:
    from typer.main import get_command

    from pivot_spark.cli import app

    known = set(get_command(app).commands)  # type: ignore[attr-defined]
    missing = {entry_command(p) for p in ENTRY_FILES} - known
    assert not missing, f"pivot-spark has no command {sorted(missing)}"


@pytest.mark.parametrize("name", ["selection.py", "rebuild.py"])
def test_entry_file_runs_as_a_script(name: str, tmp_path: Path) -> None:
    """Run the way spark-submit runs it (as a script, jobs/ first on sys.path): the CLI answers --help."""
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "jobs" / name), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"pivot-spark {entry_command(REPO_ROOT / 'jobs' / name)}" in proc.stdout
