"""pivot-train on CPU: the loss falls, resume is exact, DDP ranks stay disjoint and in sync, the model loads offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import torch

from training.cli import main
from training.metrics import read_metrics

COMMON = ["--selection", "demo", "--arm", "pivot", "--preset", "tiny", "--seq-len", "64", "--batch-size", "4",
          "--lr", "3e-3", "--warmup", "5", "--log-every", "1", "--device", "cpu"]


def _train(lake: str, out: Path, *extra: str) -> None:
    assert main(["--lake", lake, "--out", str(out), *COMMON, *extra]) == 0


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out / "metrics.jsonl", "train")}


@pytest.fixture(scope="module")
def trained(lake: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _train(lake, out, "--max-steps", "60", "--eval-every", "20", "--save-every", "30", "--num-workers", "1")
    return out


def test_tiny_trains_and_loss_falls(trained: Path):
    losses = _losses(trained)
    assert sorted(losses) == list(range(1, 61))
    first = sum(losses[s] for s in range(1, 6)) / 5
    last = sum(losses[s] for s in range(56, 61)) / 5
    assert first > 6.0 and last < first - 1.0, (first, last)  # starts near ln(800) = 6.7
    evals = [r["eval_loss"] for r in read_metrics(trained / "metrics.jsonl", "eval")]
    assert len(evals) == 3 and evals[-1] < evals[0]
    assert [p.name for p in sorted((trained / "checkpoints").iterdir())] == ["step-00000030", "step-00000060"]
    start = read_metrics(trained / "metrics.jsonl", "start")[0]
    assert start["data"]["version"] == 1 and start["data"]["eval_shard"] == 3


def test_final_model_loads_offline_and_generates(trained: Path, sp_model: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    env = os.environ.get("HF_HUB_OFFLINE")
    assert env == "1"
    final = trained / "final"
    tok = AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    text = "Permission is hereby granted, free of charge, to any person obtaining a copy"
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    assert tok(text, add_special_tokens=False)["input_ids"] == sp.encode(text)
    ids = torch.tensor([[sp.bos_id(), *sp.encode(text)]])
    torch.manual_seed(0)
    gen = model.generate(ids, max_new_tokens=24, do_sample=True, top_k=50)
    assert gen.shape[1] > ids.shape[1]
    new = tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
    assert isinstance(new, str) and new.strip()
    info = json.loads((final / "pivot_train.json").read_text())
    assert info["step"] == 60 and info["data"]["selection"] == "demo"
    # The SentencePiece file travels with the model, byte for byte (the evaluator matches it to the lake's).
    assert (final / "tokenizer.model").read_bytes() == sp_model.read_bytes()


def test_resume_gives_identical_losses(lake: str, tmp_path: Path):
    args = ["--max-steps", "20", "--eval-every", "5", "--save-every", "0", "--num-workers", "2"]
    _train(lake, tmp_path / "straight", *args)
    _train(lake, tmp_path / "split", *args, "--stop-at", "10")
    assert not (tmp_path / "split" / "final").exists()
    assert _losses(tmp_path / "split").keys() == set(range(1, 11))
    _train(lake, tmp_path / "split", *args, "--resume")
    straight, split = _losses(tmp_path / "straight"), _losses(tmp_path / "split")
    assert sorted(split) == list(range(1, 21))
    assert split == straight  # exact float equality at every step
    ev = [(r["step"], r["eval_loss"]) for r in read_metrics(tmp_path / "straight" / "metrics.jsonl", "eval")]
    assert ev == [(r["step"], r["eval_loss"]) for r in read_metrics(tmp_path / "split" / "metrics.jsonl", "eval")]


@pytest.mark.slow
def test_torchrun_two_ranks_disjoint_and_in_sync(lake: str, tmp_path: Path):
    out, trace = tmp_path / "ddp", tmp_path / "trace"
    trace.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29617",
           "-m", "training.train", "--lake", lake, "--out", str(out), *COMMON, "--max-steps", "12",
           "--eval-every", "6", "--num-workers", "1", "--trace-data", str(trace)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["data_batches"] == ranks[1]["data_batches"] == 12
    seen: dict[int, set[str]] = {0: set(), 1: set()}
    units: dict[int, set[str]] = {0: set(), 1: set()}
    for f in trace.glob("reader*.jsonl"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if rec["epoch"] == 0:
                seen[rec["rank"]].update(rec["doc_ids"])
                units[rec["rank"]].add(rec["unit"])
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert not units[0] & units[1]
    assert (out / "final" / "model.safetensors").exists()
