"""`--version` of the four programs, through their installed entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pivot_spark import __version__


@pytest.mark.parametrize("program", ["pivot-spark", "pivot-train", "pivot-eval", "pivot-experiment"])
def test_version(program):
    res = subprocess.run([str(Path(sys.executable).parent / program), "--version"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{program} {__version__}\n"
