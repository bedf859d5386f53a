"""Atomic, resumable checkpoints: ``{out}/checkpoints/step-00000100/``.

A checkpoint is written into a temporary folder, every file and the folder are fsync'ed, then the folder is
renamed into place: a crash leaves either the old or the new checkpoint, never half of one. ``state.pt`` holds
what all ranks share (model, optimizer, scheduler, step); ``rank-{r}.pt`` what each rank owns (RNG states, data
position), so a resumed DDP run restores every rank's stream.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

_NAME = re.compile(r"^step-(\d{8})$")


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def latest(root: str | os.PathLike[str]) -> Path | None:
    d = Path(root)
    steps = sorted(p for p in d.iterdir() if _NAME.match(p.name)) if d.is_dir() else []
    return steps[-1] if steps else None


def save(root: str | os.PathLike[str], step: int, shared: dict[str, Any], own: dict[str, Any], *, rank: int = 0,
         keep: int = 2) -> Path:
    """Write one checkpoint collectively (every rank calls this); keep the newest ``keep``."""
    root = Path(root)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    _barrier()
    files = [tmp / f"rank-{rank}.pt"]
    torch.save(own, files[0])
    if rank == 0:
        files.append(tmp / "state.pt")
        torch.save(shared, files[1])
    for f in files:
        _fsync(f)
    _barrier()
    if rank == 0:
        _fsync(tmp)
        if final.exists():  # the same step saved again (resumed at the last step): replace it whole
            shutil.rmtree(final)
        tmp.rename(final)
        _fsync(root)
        for old in sorted(p for p in root.iterdir() if _NAME.match(p.name))[:-keep]:
            shutil.rmtree(old)
    _barrier()
    return final


def load(path: str | os.PathLike[str], *, rank: int = 0, world: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    p = Path(path)
    ranks = sorted(p.glob("rank-*.pt"))
    if len(ranks) != world:
        raise ValueError(f"checkpoint {p} was written by {len(ranks)} ranks; resume it with the same number "
                         f"(now {world})")
    shared = torch.load(p / "state.pt", map_location="cpu", weights_only=False)
    own = torch.load(p / f"rank-{rank}.pt", map_location="cpu", weights_only=False)
    return shared, own
