"""The trainer and the evaluator never import pyspark, and the experiment only where it starts Spark jobs: every
module of the three packages imports in a process where pyspark cannot be imported."""

from __future__ import annotations

import ast
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("training", "evaluation", "experiment")


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        out.append(pkg)
        out += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / pkg)])]
    return out


def test_training_and_evaluation_never_import_pyspark():
    offenders = []
    for pkg in ("training", "evaluation"):
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "pyspark"]
    assert offenders == []


def test_every_module_imports_with_pyspark_blocked(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['pyspark'] = None\n")
    modules = _modules()
    assert {"training.train", "evaluation.cli", "experiment.run", "experiment.worker"} <= set(modules)
    code = ("import importlib, sys\n"
            "for m in sys.argv[1:]:\n"
            "    importlib.import_module(m)\n"
            "assert sys.modules['pyspark'] is None\n"
            "print('ok', len(sys.argv) - 1)\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    res = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, env=env, cwd=ROOT,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == f"ok {len(modules)}"
