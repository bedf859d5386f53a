"""Atomic, resumable checkpoints: ``{out}/checkpoints/step-00000100/``.

A checkpoint is written into a temporary folder, every file and the folder are fsync'ed, then the folder is
renamed into place: a crash leaves either the old or the new checkpoint, never half of one. ``state.pt`` holds
what all ranks share (model, optimizer, scheduler, step); ``rank-{r}.pt`` what each rank owns (RNG states, data
position), so a resumed DDP run restores every rank's stream.

Loading uses torch's safe loader (``weights_only=True``): a checkpoint holds tensors and plain values only (the
RNG states too: :func:`rng_state` stores NumPy's as a tensor and plain numbers), so a file cannot run code when
it is loaded. Resuming (:func:`latest_valid`) takes the newest checkpoint whose every file loads and skips, and
names, those that do not (a file damaged by the storage, a checkpoint folder altered by hand); it fails with
:class:`CheckpointError` naming each file and its error when none loads.
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


class CheckpointError(RuntimeError):
    """No checkpoint in the folder loads (each one's files and errors are named)."""


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain values (what the safe loader reads)."""
    kind, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    return {"python": random.getstate(),
            "numpy": {"kind": str(kind), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
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


def checkpoints(root: str | os.PathLike[str]) -> list[Path]:
    """The checkpoint folders under ``root``, oldest first."""
    d = Path(root)
    return sorted(p for p in d.iterdir() if _NAME.match(p.name)) if d.is_dir() else []


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


def _load_file(path: Path) -> dict[str, Any]:
    """One checkpoint file with the safe loader; :class:`CheckpointError` naming the file when it does not load
    (missing, damaged, or holding anything but tensors and plain values)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, truncated zip archives, I/O errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: {type(e).__name__}: {first[:300]}") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds a {type(data).__name__}, not a checkpoint's dict")
    return data


def load(path: str | os.PathLike[str], *, rank: int = 0, world: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(shared, own)`` of the checkpoint at ``path`` for ``rank``. Every rank's file is loaded, so all ranks
    reach the same verdict on a checkpoint (the files are small: RNG states and data positions)."""
    p = Path(path)
    ranks = sorted(p.glob("rank-*.pt"))
    if len(ranks) != world:
        raise ValueError(f"checkpoint {p} was written by {len(ranks)} ranks; resume it with the same number "
                         f"(now {world})")
    shared = _load_file(p / "state.pt")
    owns = [_load_file(p / f"rank-{r}.pt") for r in range(world)]
    return shared, owns[rank]


def latest_valid(root: str | os.PathLike[str], *, rank: int = 0, world: int = 1
                 ) -> tuple[Path, dict[str, Any], dict[str, Any], list[str]] | None:
    """The newest checkpoint under ``root`` that loads: ``(path, shared, own, skipped)``, where ``skipped`` names
    each newer checkpoint passed over and why; None when there is none. :class:`CheckpointError` naming every
    checkpoint's error when none loads; ValueError (from :func:`load`) when the newest was written by another
    number of ranks."""
    skipped: list[str] = []
    for path in reversed(checkpoints(root)):
        try:
            shared, own = load(path, rank=rank, world=world)
        except CheckpointError as e:
            skipped.append(str(e))
            continue
        return path, shared, own, skipped
    if skipped:
        raise CheckpointError(f"no checkpoint under {root} loads: {'; '.join(skipped)}; delete the damaged "
                              "checkpoints to start over, or restore them")
    return None
