"""Failures of Spark write tasks, caused from outside the code under test.

A task that writes table files creates its folder first (the table folder, or a partition folder under it); a
regular file in that place makes the creation fail inside the task, as a storage error would. Nothing in the
product knows about this: the tests see how a job that loses a task behaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def blocked_folder(path: Path) -> Iterator[Path]:
    """Occupy ``path`` (which must not exist) with a regular file while the block runs, so that every task
    writing under it fails; the file is removed afterwards."""
    if path.exists():
        raise FileExistsError(f"{path} exists: block a folder that the write under test creates")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    try:
        yield path
    finally:
        path.unlink()
