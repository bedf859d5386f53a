"""``pivot-train``: pretrain a Llama-family model on one selection/arm of ``train_set`` (torchrun-compatible).

    pivot-train --lake LAKE --selection main --arm pivot --preset small --max-steps 2000 --out runs/pivot
    pivot-train --config run.yaml lr=3e-4 seq_len=2048
    torchrun --nproc-per-node 8 -m training.train --lake s3://... --preset 350m --compile ...

Settings: :class:`training.config.TrainConfig` (options, a ``--config`` YAML file, ``key=value`` arguments, parsed
by :mod:`training.cli` before this module and torch are imported). A run starts in an empty (or new) ``out``
folder; one that holds an earlier run needs ``resume`` (continue it) or ``overwrite`` (delete its outputs first).
Reads the table at a pinned version (recorded in every checkpoint and in ``final/pivot_train.json``), trains with
AdamW + warmup/cosine, clips gradients, accumulates micro-batches, runs bf16 autocast (and optionally compiled
decoder layers) on CUDA, and keeps DDP ranks in step (gloo on CPU, NCCL on GPU). Every step appends a JSON line to
``{out}/metrics.jsonl``; checkpoints land atomically in ``{out}/checkpoints``; ``resume`` continues from the
newest one exactly: same batches, same losses; with ``tensorboard`` the same numbers go to ``{out}/tensorboard``.
The final model and tokenizer go to ``{out}/final`` in transformers format; the tokenizer encodes a document as
the stream packs it (``[bos]`` first), so the evaluation scores what the model saw in training.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from training import checkpoint
from training.config import TrainConfig
from training.data import PackedStream, TokenLoader, TrainSet, eval_batches, open_train_set
from training.metrics import MetricsLog, peak_flops
from training.model import build_model, flops_per_token, n_params
from training.resident import ResidentLoader, common_eval_batches, injected_documents


@dataclass
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device_arg: str) -> Dist:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device_arg == "auto" else device_arg.startswith("cuda")
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank, world, local, device)


# What a run writes into its out folder (anything else there is left alone, also by ``overwrite``).
RUN_OUTPUTS = ("checkpoints", "final", "ranks", "metrics.jsonl", "tensorboard")


class OutDirError(Exception):
    """The out folder holds an earlier run and the settings say neither resume nor overwrite."""


def out_dir_problem(cfg: TrainConfig) -> str | None:
    """Why ``cfg.out`` cannot take a new run (None: it can): a file, or a folder that is not empty while neither
    ``resume`` nor ``overwrite`` is set (its checkpoints would be resumed by mistake later, its final model
    replaced)."""
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file, not a folder"
    if cfg.resume or cfg.overwrite or not out.exists() or not any(out.iterdir()):
        return None
    return (f"--out {out} is not empty (an earlier run?): pass --resume to continue it, --overwrite to delete its "
            "outputs and start afresh, or choose another --out")


def prepare_out(cfg: TrainConfig, d: Dist) -> None:
    """Check the out folder on every rank before any rank writes; with ``overwrite``, rank 0 deletes the earlier
    run's outputs (:data:`RUN_OUTPUTS`)."""
    problem = out_dir_problem(cfg)
    if d.world > 1:
        dist.barrier()  # every rank has looked before anyone writes
    if problem:
        raise OutDirError(problem)
    if cfg.overwrite and d.main:
        for name in RUN_OUTPUTS:
            p = Path(cfg.out) / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    if d.world > 1:
        dist.barrier()


class CausalLMLoss(nn.Module):
    """Model + next-token loss in one module, so DDP sees the whole forward; the head runs in a separate function
    that ``torch.compile`` fuses with the fp32 log-softmax."""

    def __init__(self, lm: Any) -> None:
        super().__init__()
        self.lm = lm
        self.head_loss: Any = _head_loss

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x, y = tokens[:, :-1], tokens[:, 1:]
        h = self.lm.model(input_ids=x, use_cache=False).last_hidden_state
        return self.head_loss(h, self.lm.lm_head.weight, y)


def _head_loss(h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = F.linear(h, w).float()
    return F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1).long())


def lr_lambda(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    return f


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, fused: bool) -> torch.optim.AdamW:
    """Decay matrices only (not norms/biases), betas as in most LLM recipes."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8, fused=fused)


def compile_regions(loss_mod: CausalLMLoss) -> None:
    """Compile each decoder layer (all share one graph: compiles once) and the head+loss: most of whole-model
    compile's speed at a fraction of its compile time."""
    for layer in loss_mod.lm.model.layers:
        layer.compile()
    loss_mod.head_loss = torch.compile(_head_loss)


def seed_everything(seed: int, rank: int) -> None:
    random.seed(seed + rank)
    np.random.seed(seed + rank)
    torch.manual_seed(seed)  # same init on every rank; DDP also broadcasts rank 0's weights


def _all_mean(x: torch.Tensor, d: Dist) -> float:
    if d.world > 1:
        x = x.detach().clone()
        dist.all_reduce(x)
        x /= d.world
    return float(x.item())


def train_step(model: nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
               batches: Iterator[torch.Tensor], *, device: torch.device, grad_accum: int, grad_clip: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step over ``grad_accum`` micro-batches; DDP all-reduces only on the last. Returns the mean
    micro-batch loss and the gradient norm, as device tensors (no host sync here)."""
    loss_sum = torch.zeros((), device=device)
    for micro in range(grad_accum):
        tokens = next(batches).to(device, non_blocking=True)
        last = micro == grad_accum - 1
        with (model.no_sync() if isinstance(model, DDP) and not last else contextlib.nullcontext()), \
                autocast(device):
            loss = model(tokens)
        (loss / grad_accum).backward()
        loss_sum += loss.detach()
    params = model.module.parameters() if isinstance(model, DDP) else model.parameters()
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return loss_sum / grad_accum, norm


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; fp32 on CPU (exact and deterministic there)."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, batches: list[torch.Tensor], d: Dist) -> float | None:
    if not batches:
        return None
    model.eval()
    total = torch.zeros((), device=d.device)
    for b in batches:
        with autocast(d.device):
            total += model(b.to(d.device)).float()
    model.train()
    return _all_mean(total / len(batches), d)


def _train(cfg: TrainConfig) -> dict[str, Any]:
    d = setup_dist(cfg.device)
    prepare_out(cfg, d)
    cuda = d.device.type == "cuda"
    if not cuda:
        torch.use_deterministic_algorithms(True)
    seed_everything(cfg.seed, d.rank)
    out = Path(cfg.out)
    ckpt_root = out / "checkpoints"
    # The newest checkpoint that loads (damaged newer ones are named and skipped); a resumed run reads the
    # train_set version it started from unless --table-version says which.
    found = checkpoint.latest_valid(ckpt_root, rank=d.rank, world=d.world) if cfg.resume else None
    version = cfg.table_version
    if found is not None:
        if d.main:
            for why in found[3]:
                print(f"pivot-train: skipped a checkpoint that does not load: {why}", file=sys.stderr)
            print(f"pivot-train: resuming from {found[0]}", file=sys.stderr)
        if version is None:
            version = found[1]["data"]["version"]
    ts = open_train_set(cfg.lake, cfg.selection, cfg.arm, version=version, eval_shard=cfg.eval_shard,
                        tokenizer_model=cfg.tokenizer)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.seq_len * d.world
    max_steps = cfg.max_steps if cfg.max_steps is not None else math.ceil((cfg.max_tokens or 0) / tokens_per_step)
    loader: TokenLoader | ResidentLoader
    if cfg.resident:
        inject = injected_documents(cfg.inject, ts.tokenizer_model) if cfg.inject else None
        loader = ResidentLoader(ts, seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=cfg.seed, device=d.device,
                                rank=d.rank, world=d.world, inject=inject, inject_repeats=cfg.inject_repeats)
    else:
        stream = PackedStream(ts, seq_len=cfg.seq_len, batch_size=cfg.batch_size, seed=cfg.seed, rank=d.rank,
                              world=d.world, block=cfg.shuffle_block, num_workers=cfg.num_workers,
                              trace_dir=cfg.trace_data)
        loader = TokenLoader(stream, pin_memory=cuda)
    eval_info: dict[str, Any] = {"kind": cfg.eval_set, "shard": ts.eval_shard}
    if cfg.eval_set == "common":
        evals, eval_info = common_eval_batches(cfg.lake, ts, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                                               max_batches=cfg.eval_batches, rank=d.rank, world=d.world)
    else:
        evals = eval_batches(ts, seq_len=cfg.seq_len, batch_size=cfg.batch_size, max_batches=cfg.eval_batches,
                             rank=d.rank, world=d.world)

    lm = build_model(cfg.preset, vocab_size=ts.vocab_size, seq_len=cfg.seq_len, bos_id=ts.bos_id, eos_id=ts.eos_id)
    lm = lm.to(d.device)  # type: ignore[arg-type]
    loss_mod = CausalLMLoss(lm)
    if cfg.compile and cuda:
        compile_regions(loss_mod)
    model: nn.Module = DDP(loss_mod, device_ids=[d.local_rank] if cuda else None) if d.world > 1 else loss_mod
    opt = make_optimizer(lm, cfg.lr, cfg.weight_decay, fused=cuda)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.warmup, max_steps, cfg.min_lr_ratio))

    step = 0
    if found is not None:
        _, shared, own, _ = found
        lm.load_state_dict(shared["model"])
        opt.load_state_dict(shared["optimizer"])
        sched.load_state_dict(shared["scheduler"])
        step = shared["step"]
        loader.load_state_dict(own["data"])
        checkpoint.set_rng_state(own["rng"])
    elif cfg.resume and d.main:
        print(f"pivot-train: no checkpoint in {ckpt_root}; starting from step 0", file=sys.stderr)

    log = MetricsLog(out / "metrics.jsonl", enabled=d.main,
                     tensorboard=out / "tensorboard" if cfg.tensorboard else None)
    fpt = flops_per_token(lm.config, cfg.seq_len)
    peak = peak_flops(d.device)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        log.write("start", step=step, max_steps=max_steps, world=d.world, params=n_params(lm), preset=cfg.preset,
                  tokens_per_step=tokens_per_step, flops_per_token=fpt, data=ts.describe(), eval_set=eval_info,
                  args=cfg.model_dump(mode="json"))

    def save(at: int) -> None:
        shared = {"model": lm.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "step": at, "args": cfg.model_dump(mode="json"), "data": ts.describe()}
        checkpoint.save(ckpt_root, at, shared, {"rng": checkpoint.rng_state(), "data": loader.state_dict()},
                        rank=d.rank, keep=cfg.keep)

    batches: Iterator[torch.Tensor] = iter(loader)
    bar = tqdm(total=max_steps, initial=step, disable=not d.main, desc="train", unit="step", dynamic_ncols=True)
    t0, tok0 = time.perf_counter(), 0
    last_loss = float("nan")
    model.train()
    stop = min(max_steps, cfg.stop_at or max_steps)
    while step < stop:
        lr = sched.get_last_lr()[0]
        mean_loss, norm = train_step(model, opt, sched, batches, device=d.device, grad_accum=cfg.grad_accum,
                                     grad_clip=cfg.grad_clip)
        step += 1
        tok0 += tokens_per_step
        bar.update(1)
        if step % cfg.log_every == 0 or step == max_steps:
            last_loss = _all_mean(mean_loss, d)
            dt = time.perf_counter() - t0
            tps = tok0 / dt
            rec: dict[str, Any] = {"step": step, "loss": round(last_loss, 6), "lr": lr,
                                   "grad_norm": round(float(norm), 4), "tokens": step * tokens_per_step,
                                   "tokens_per_s": round(tps, 1)}
            if peak:
                rec["mfu"] = round(fpt * tps / (peak * d.world), 4)
            log.write("train", **rec)
            bar.set_postfix(loss=f"{last_loss:.3f}", tok_s=f"{tps:,.0f}")
            t0, tok0 = time.perf_counter(), 0
        if cfg.eval_every and step % cfg.eval_every == 0 and step < max_steps:
            ev = evaluate(model, evals, d)
            if ev is not None:
                log.write("eval", step=step, eval_loss=round(ev, 6))
        if cfg.save_every and step % cfg.save_every == 0 and step < max_steps:
            save(step)
    bar.close()
    done = step >= max_steps
    final_eval = evaluate(model, evals, d) if done else None
    if final_eval is not None:
        log.write("eval", step=step, eval_loss=round(final_eval, 6))
    save(step)
    summary = {"step": step, "max_steps": max_steps, "loss": last_loss, "eval_loss": final_eval,
               "data": ts.describe(), "eval_set": eval_info, "preset": cfg.preset, "tokens": step * tokens_per_step,
               "data_batches": loader.batches}
    write_rank_summary(out, d, lm, summary)
    if d.main and done:
        save_final(lm, ts, out / "final", summary)
        log.write("end", **summary)
    log.close()
    if d.world > 1:
        dist.barrier()
    return summary


def write_rank_summary(out: Path, d: Dist, lm: nn.Module, summary: dict[str, Any]) -> None:
    """``{out}/ranks/rank-{r}.json``: where each rank ended, with a digest of its weights (DDP ranks must agree)."""
    h = hashlib.sha256()
    for name, t in sorted(lm.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().numpy().tobytes())
    path = out / "ranks" / f"rank-{d.rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**summary, "rank": d.rank, "world": d.world, "weights_sha256": h.hexdigest()},
                               default=str))


def save_final(lm: Any, ts: TrainSet, path: Path, summary: dict[str, Any]) -> None:
    """transformers format, tokenizer beside it, plus what it was trained on. The tokenizer starts every text with
    BOS when the stream packs documents with one, as the model saw them in training."""
    from training.tokenizer import hf_tokenizer_for

    lm.save_pretrained(path)
    hf_tokenizer_for(ts.tokenizer_model, bos=ts.bos_id >= 0).save_pretrained(path)
    # The SentencePiece model itself too: its content hash ties the model to the lake's tokenizer (logit lens).
    shutil.copyfile(ts.tokenizer_model, path / "tokenizer.model")
    (path / "pivot_train.json").write_text(json.dumps(summary, indent=2, default=str))


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training (every rank calls this under torchrun); returns this rank's summary."""
    try:
        return _train(cfg)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def summary_line(summary: dict[str, Any], out: str) -> str:
    """The run in one line, ending with the path to load: ``{out}/final`` when the run finished, else the
    checkpoints to resume from."""
    ev = summary["eval_loss"]
    done = summary["step"] >= summary["max_steps"]
    where = (f"model in {Path(out) / 'final'}" if done else
             f"stopped at step {summary['step']}; checkpoint in {Path(out) / 'checkpoints'} (rerun with --resume)")
    return (f"pivot-train: {summary['step']}/{summary['max_steps']} steps, {summary['tokens']:,} tokens, loss "
            f"{summary['loss']:.4f}" + (f", eval loss {ev:.4f}" if ev is not None else "") + f" -> {where}")


if __name__ == "__main__":  # torchrun -m training.train ...
    from training.cli import main

    sys.exit(main())
