"""Tokens/s the train_set stream delivers into batches on CPU, against a nanoGPT-style uint16 memmap loader.

Both loaders serve the same tokens (the selection's training rows, packed ``[bos] doc [eos]``) in the same batch
shape ``[batch, seq_len + 1]``, in one process each, one after the other in one run, each in the dtype the
trainer takes from it: nanoGPT's int64, the stream's int32 (the model takes int32 ids; half the bytes to copy
to the GPU). The memmap
loader is nanoGPT's ``get_batch``: random offsets into a flat ``uint16`` file, a fresh ``np.memmap`` per batch.
The stream pays for what the memmap loader skips: Delta/Parquet reads, packing and a seeded block shuffle.

    python benchmarks/loader.py                      # builds its own train_set from local text
    python benchmarks/loader.py --lake L --selection S --arm A

Last line: ``RESULT loader_vs_memory <stream tokens/s / memmap tokens/s>`` (target >= 0.5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tests.support.textset import build_demo_lake  # noqa: E402
from training.data import PackedStream, TokenLoader, open_train_set  # noqa: E402


def memmap_loader(path: Path, batch: int, seq: int, seed: int):
    """nanoGPT's get_batch, unchanged in substance."""
    g = torch.Generator().manual_seed(seed)
    while True:
        data = np.memmap(path, dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - seq - 1, (batch,), generator=g)
        yield torch.stack([torch.from_numpy(data[i:i + seq + 1].astype(np.int64)) for i in ix.tolist()])


def rate(it, n: int) -> float:
    t = time.perf_counter()
    tokens = 0
    for _ in range(n):
        tokens += next(it).numel()
    return tokens / (time.perf_counter() - t)


def compare(mem, stream, n: int, rounds: int) -> tuple[float, float]:
    """Median tokens/s of each over ``rounds`` alternating rounds: a busy shared machine slows both alike."""
    for it in (mem, stream):  # warm up: first block, open files, page cache
        for _ in range(5):
            next(it)
    rm, rs = [], []
    for _ in range(rounds):
        rm.append(rate(mem, n // rounds))
        rs.append(rate(stream, n // rounds))
    return float(np.median(rm)), float(np.median(rs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lake")
    p.add_argument("--selection", default="bench")
    p.add_argument("--arm", default="pivot")
    p.add_argument("--text-bytes", type=int, default=6_000_000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batches", type=int, default=2000, help="per loader, over all rounds")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for the stream (memmap: 0)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        lake = a.lake
        if lake is None:
            lake = str(Path(tmp) / "lake")
            t = time.perf_counter()
            build_demo_lake(lake, text_bytes=a.text_bytes, vocab_size=8000, selection=a.selection, arms=(a.arm,),
                            n_shards=8, rows_per_group=256)
            print(f"built train_set from {a.text_bytes / 1e6:.0f} MB of local text in {time.perf_counter() - t:.1f}s")
        ts = open_train_set(lake, a.selection, a.arm)
        if ts.vocab_size > 65536:
            raise SystemExit("a uint16 memmap cannot hold this vocabulary")
        flat = np.concatenate([ts.pack(ts.read_rows(g.path, g.index, train=True)) for g in ts.train_groups])
        mm = Path(tmp) / "train.bin"
        flat.astype(np.uint16).tofile(mm)
        print(f"{ts.train_docs} docs, {len(flat):,} training tokens, vocab {ts.vocab_size}, "
              f"batch {a.batch_size} x {a.seq_len + 1}")
        stream = TokenLoader(PackedStream(ts, seq_len=a.seq_len, batch_size=a.batch_size, seed=0, block=512,
                                          num_workers=a.workers))
        mem, got = compare(memmap_loader(mm, a.batch_size, a.seq_len, 0), iter(stream), a.batches, a.rounds)
    print(f"memmap  {mem:>14,.0f} tokens/s")
    print(f"stream  {got:>14,.0f} tokens/s  (workers={a.workers})")
    print(f"RESULT loader_vs_memory {got / mem:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
