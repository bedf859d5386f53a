"""Checkpoints load with torch's safe loader, and --resume passes over damaged ones to the newest that loads,
naming what it skipped."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from training import checkpoint
from training.checkpoint import CheckpointError, latest_valid, rng_state, set_rng_state
from training.cli import main
from training.metrics import read_metrics

COMMON = ["--selection", "demo", "--arm", "pivot", "--preset", "tiny", "--seq-len", "64", "--batch-size", "4",
          "--lr", "3e-3", "--warmup", "5", "--log-every", "1", "--device", "cpu", "--num-workers", "0"]


class Payload:
    """What an attacker's checkpoint file would hold: unpickling it runs code (it writes a file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _save(root: Path, step: int, world: int = 1) -> Path:
    """A checkpoint as ``world`` ranks write it (the other ranks' files as copies of rank 0's: one process)."""
    path = checkpoint.save(root, step, {"model": {"w": torch.full((2,), float(step))}, "step": step},
                           {"rng": rng_state(), "data": {"batches": step}}, keep=5)
    for rank in range(1, world):
        (path / f"rank-{rank}.pt").write_bytes((path / "rank-0.pt").read_bytes())
    return path


def test_rng_states_round_trip_through_the_safe_loader(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = _save(tmp_path, 1)
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    _, own = checkpoint.load(path)
    set_rng_state(own["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing"])
def test_resume_takes_the_newest_checkpoint_that_loads(tmp_path, damage):
    _save(tmp_path, 10)
    newest = _save(tmp_path, 20)
    state = newest / "state.pt"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:100])
    elif damage == "garbage":
        state.write_bytes(b"\x00" * 64)
    else:
        state.unlink()
    found = latest_valid(tmp_path)
    assert found is not None
    path, shared, own, skipped = found
    assert path.name == "step-00000010" and shared["step"] == 10 and own["data"] == {"batches": 10}
    assert len(skipped) == 1 and str(state) in skipped[0]


def test_a_checkpoint_holding_code_is_refused_and_runs_nothing(tmp_path):
    _save(tmp_path, 10)
    newest = _save(tmp_path, 20)
    marker = tmp_path / "pwned"
    torch.save({"rng": Payload(marker), "data": {}}, newest / "rank-0.pt")
    found = latest_valid(tmp_path)
    assert found is not None
    path, _, _, skipped = found
    assert path.name == "step-00000010" and str(newest / "rank-0.pt") in skipped[0]
    assert not marker.exists()


def test_no_checkpoint_that_loads_is_an_error_naming_each(tmp_path):
    for step in (10, 20):
        (_save(tmp_path, step) / "state.pt").write_bytes(b"")
    with pytest.raises(CheckpointError) as e:
        latest_valid(tmp_path)
    text = str(e.value)
    assert "step-00000010/state.pt" in text and "step-00000020/state.pt" in text and "delete" in text
    assert latest_valid(tmp_path / "none") is None


def test_a_damaged_rank_file_of_another_rank_is_seen_by_every_rank(tmp_path):
    _save(tmp_path, 10, world=2)
    newest = _save(tmp_path, 20, world=2)
    (newest / "rank-1.pt").write_bytes(b"broken")
    for rank in (0, 1):  # every rank reaches the same verdict
        found = latest_valid(tmp_path, rank=rank, world=2)
        assert found is not None and found[0].name == "step-00000010"


def test_pivot_train_resumes_past_a_damaged_newest_checkpoint(lake: str, tmp_path: Path, capsys):
    out = tmp_path / "run"
    args = ["--lake", lake, "--out", str(out), *COMMON, "--max-steps", "8", "--save-every", "3"]
    assert main([*args, "--stop-at", "7"]) == 0
    ckpts = sorted((out / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["step-00000006", "step-00000007"]  # --keep 2; --stop-at saves too
    (ckpts[-1] / "state.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"skipped a checkpoint that does not load: {ckpts[-1] / 'state.pt'}" in err
    assert f"resuming from {ckpts[0]}" in err
    starts = read_metrics(out / "metrics.jsonl", "start")
    assert starts[-1]["step"] == 6


def test_pivot_train_with_no_loadable_checkpoint_exits_2_naming_them(lake: str, tmp_path: Path, capsys):
    out = tmp_path / "run"
    args = ["--lake", lake, "--out", str(out), *COMMON, "--max-steps", "4", "--save-every", "2"]
    assert main([*args, "--stop-at", "2"]) == 0
    (out / "checkpoints" / "step-00000002" / "rank-0.pt").write_bytes(b"")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("pivot-train: error: no checkpoint under") and "rank-0.pt" in line
