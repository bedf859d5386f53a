"""Fixtures of the reliability tests (their helpers: tests/support/reliability.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def lake_path(tmp_path: Path) -> Path:
    return tmp_path / "lake"
