"""Training throughput and MFU on a GPU: 125m and 350m, real train_set stream vs synthetic tokens.

One script that needs no network on the GPU node (docs/benchmarks.md). Beforehand, on any machine:

    python benchmarks/gpu_train.py --prepare          # trains the 32k BPE tokenizer into .cache/gpu_bench/
    python benchmarks/gpu_train.py --dry-run --device cpu   # the whole path with tiny sizes

On the GPU node (python3 with torch/transformers/sentencepiece/pyarrow; deltalake from wheels if missing):

    python3 benchmarks/gpu_train.py --sp-model .cache/gpu_bench/bpe32000.model

It writes a real ``train_set`` (text found on the machine, encoded with the prepared tokenizer, Delta via
deltalake), then for each preset times the trainer's own ``train_step`` (compiled decoder layers and loss, bf16
autocast, fused AdamW) on synthetic random tokens and on the real stream (``TokenLoader``, worker processes,
pinned memory). Last line: ``RESULT gpu_mfu_350m <MFU with the real stream>``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from tests.support.textset import TEXT_ROOTS, documents, local_texts, write_train_set  # noqa: E402
from training.data import PackedStream, TokenLoader, open_train_set  # noqa: E402
from training.metrics import peak_flops  # noqa: E402
from training.model import build_model, flops_per_token, n_params  # noqa: E402
from training.train import CausalLMLoss, compile_regions, lr_lambda, make_optimizer, train_step  # noqa: E402

PREP = Path(__file__).resolve().parents[1] / ".cache" / "gpu_bench"


def prepare(vocab: int, text_bytes: int) -> Path:
    """Train the benchmark tokenizer (the project's trainer options), to copy to the GPU node."""
    from tests.support.textset import train_sentencepiece

    docs = documents(local_texts(text_bytes))
    model = train_sentencepiece(docs, PREP, vocab)
    print(f"tokenizer {model} from {len(docs)} documents")
    return model


def build_lake(lake: Path, sp_model: str, text_bytes: int) -> None:
    roots = [*TEXT_ROOTS, sysconfig.get_paths()["purelib"]]
    docs = documents(local_texts(text_bytes, roots))
    t = time.perf_counter()
    shutil.rmtree(lake, ignore_errors=True)
    version = write_train_set(str(lake), docs, sp_model, selection="bench", arm="pivot", n_shards=8,
                              rows_per_group=512)
    print(f"train_set v{version}: {len(docs)} docs, {sum(map(len, docs)) / 1e6:.1f} MB text, "
          f"{time.perf_counter() - t:.1f}s to encode and write", flush=True)


def synthetic(vocab: int, batch: int, seq: int, pin: bool) -> Iterator[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    pool = [torch.randint(0, vocab, (batch, seq + 1), generator=g, dtype=torch.int32) for _ in range(8)]
    if pin:
        pool = [p.pin_memory() for p in pool]
    return itertools.cycle(pool)


def timed(loss_mod, opt, sched, batches, device, warmup: int, steps: int) -> tuple[float, float]:
    """Seconds per step (after ``warmup`` steps) and the last loss."""
    for _ in range(warmup):
        loss, _ = train_step(loss_mod, opt, sched, batches, device=device, grad_accum=1, grad_clip=1.0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        loss, _ = train_step(loss_mod, opt, sched, batches, device=device, grad_accum=1, grad_clip=1.0)
    loss_v = float(loss)  # syncs
    return (time.perf_counter() - t) / steps, loss_v


def bench_preset(preset: str, lake: Path, *, device: torch.device, seq: int, batch: int, steps: int,
                 warmup: int, workers: int, compile_: bool) -> list[dict]:
    ts = open_train_set(str(lake), "bench", "pivot")
    torch.manual_seed(0)
    lm = build_model(preset, vocab_size=ts.vocab_size, seq_len=seq, bos_id=ts.bos_id, eos_id=ts.eos_id).to(device)
    loss_mod = CausalLMLoss(lm)
    if compile_:
        compile_regions(loss_mod)
    opt = make_optimizer(lm, 3e-4, 0.1, fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(10, 10_000, 0.1))
    fpt = flops_per_token(lm.config, seq)
    peak = peak_flops(device)
    cuda = device.type == "cuda"
    rows = []
    real = TokenLoader(PackedStream(ts, seq_len=seq, batch_size=batch, seed=0, block=512, num_workers=workers),
                       pin_memory=cuda)
    for name, source, w in (("synthetic", synthetic(ts.vocab_size, batch, seq, cuda), warmup),
                            ("real", iter(real), max(2, warmup // 4))):
        t0 = time.perf_counter()
        sec, loss = timed(loss_mod, opt, sched, source, device, w, steps)
        tps = batch * seq / sec
        row = {"preset": preset, "stream": name, "params": n_params(lm), "batch": batch, "seq_len": seq,
               "tokens_per_s": round(tps), "step_s": round(sec, 4), "loss": round(loss, 3),
               "mfu": round(fpt * tps / peak, 4) if peak else None, "wall_s": round(time.perf_counter() - t0, 1)}
        if cuda:
            row["max_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    del lm, loss_mod, opt
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prepare", action="store_true", help="train the carried tokenizer here and exit")
    p.add_argument("--dry-run", action="store_true", help="tiny preset and sizes (CPU check of the whole path)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--sp-model", default=str(PREP / "bpe32000.model"))
    p.add_argument("--lake", default="/tmp/gpu_bench_lake")
    p.add_argument("--text-bytes", type=int, default=20_000_000)
    p.add_argument("--presets", default="125m,350m")
    p.add_argument("--batch", default="125m=16,350m=16", help="micro-batch per preset")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=8)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--out", default=os.environ.get("OUT", "."), help="folder for gpu_train.json")
    a = p.parse_args(argv)
    if a.prepare:
        prepare(32000, 30_000_000)
        return 0
    device = torch.device(a.device)
    if a.dry_run:
        a.presets, a.batch, a.seq_len, a.steps, a.warmup, a.text_bytes = "tiny", "tiny=2", 64, 3, 2, 1_000_000
        a.workers = min(a.workers, 1)
    batches = dict(kv.split("=") for kv in a.batch.split(","))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"device {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    lake = Path(a.lake)
    build_lake(lake, a.sp_model, a.text_bytes)
    rows = []
    for preset in a.presets.split(","):
        batch = int(batches[preset])
        while True:
            try:
                rows += bench_preset(preset, lake, device=device, seq=a.seq_len, batch=batch, steps=a.steps,
                                     warmup=a.warmup, workers=a.workers,
                                     compile_=device.type == "cuda" and not a.no_compile)
                break
            except torch.OutOfMemoryError:
                if batch == 1:
                    raise
                batch //= 2
                torch.cuda.empty_cache()
                print(f"{preset}: out of memory, retrying with micro-batch {batch}", flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "gpu_train.json").write_text(json.dumps(rows, indent=1))
    print(f"{'preset':8} {'stream':10} {'tokens/s':>10} {'MFU':>7} {'real/synth':>10}")
    for r in rows:
        synth = next(x for x in rows if x["preset"] == r["preset"] and x["stream"] == "synthetic")
        mfu = f"{r['mfu']:.3f}" if r["mfu"] is not None else "n/a"
        print(f"{r['preset']:8} {r['stream']:10} {r['tokens_per_s']:>10,} {mfu:>7} "
              f"{r['tokens_per_s'] / synth['tokens_per_s']:>10.3f}")
    target = next((r for r in rows if r["preset"] == "350m" and r["stream"] == "real"), None)
    print(f"RESULT gpu_mfu_350m {target['mfu'] if target and target['mfu'] is not None else 'n/a'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
