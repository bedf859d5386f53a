"""Device-resident training data, injected documents, and the common held-out set of a selection.

**Resident stream** (``resident: true``): an arm's whole training stream is read once, packed as
``[bos] tokens [eos]`` per document, cut into rows of ``seq_len + 1`` tokens and moved to the device as one int32
tensor; each step gathers its batch there. Small models on a GPU train faster than a DataLoader feeds them, and a
selection of a few million tokens is a few tens of MB. Order: the pieces (the table's work units and the injected
documents) are shuffled once with the seed before packing; every epoch then permutes the rows with a generator
seeded by (seed, epoch), and rank ``r`` of ``W`` takes every ``W``-th row of that permutation. The data position is
the number of batches consumed, so a resumed run continues with exactly the batches it would have seen.

**Injected documents** (``inject``): a JSON Lines file of ``{"text": ...}`` documents, tokenized with the
selection's SentencePiece model and mixed into the resident stream ``inject_repeats`` times each (the positive
control's glossary lines, docs/evaluation.md section 6).

**Common held-out set** (``eval_set: common``): every arm of a selection holds out its highest shard; the common
set is the held-out rows of all the selection's arms, minus every document that any arm trains on, one row per
document, in ``doc_id`` order. Each arm's eval loss is then measured on the same documents, which none of them
saw, in every language the arms have between them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sentencepiece as spm
import torch

from pivot_spark.lake.reader import open_reader
from training.data import TABLE, TrainSet, _parquet_file


def injected_documents(path: str | Path, tokenizer_model: str) -> list[np.ndarray]:
    """Token ids of every ``{"text": ...}`` line of a JSON Lines file, with the selection's tokenizer."""
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    texts = [json.loads(ln)["text"] for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not texts:
        raise ValueError(f"{path}: no documents to inject")
    return [np.asarray(sp.encode(t), dtype=np.int32) for t in texts]


class ResidentLoader:
    """Batches ``int32[batch_size, seq_len + 1]`` gathered on the device from the resident rows; the same interface
    as :class:`training.data.TokenLoader` (iteration, ``batches``, ``state_dict``, ``load_state_dict``)."""

    def __init__(self, ts: TrainSet, *, seq_len: int, batch_size: int, seed: int, device: torch.device,
                 rank: int = 0, world: int = 1, inject: list[np.ndarray] | None = None,
                 inject_repeats: int = 1) -> None:
        self.ts, self.seq_len, self.batch_size, self.seed = ts, seq_len, batch_size, seed
        self.rank, self.world = rank, world
        pieces = [ts.read_packed(u) for u in ts.units(1)]
        extra = ts.bos_id >= 0
        for doc in inject or []:
            packed = np.concatenate([[ts.bos_id]] * extra + [doc, [ts.eos_id]]).astype(np.int32)
            pieces += [packed] * inject_repeats
        order = np.random.default_rng([seed, 104729]).permutation(len(pieces))
        flat = np.concatenate([pieces[i] for i in order])
        width = seq_len + 1
        self.n_rows = len(flat) // width
        self.per_epoch = self.n_rows // world // batch_size  # batches per rank and epoch
        if self.per_epoch < 1:
            raise ValueError(f"{ts.selection}/{ts.arm}: {len(flat)} tokens make fewer than one batch per rank "
                             f"({batch_size} x {width} x {world} ranks)")
        self.rows = torch.from_numpy(flat[: self.n_rows * width].reshape(self.n_rows, width).copy()).to(device)
        self.injected = {"documents": len(inject or []), "repeats": inject_repeats,
                         "tokens": int(sum(len(d) + 1 + extra for d in inject or [])) * inject_repeats}
        self.device = device
        self.batches = 0
        self._perm: tuple[int, torch.Tensor] | None = None

    def _epoch_rows(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch, 7919]).permutation(self.n_rows)[self.rank::self.world]
            self._perm = (epoch, torch.from_numpy(perm[: self.per_epoch * self.batch_size]).to(self.device))
        return self._perm[1]

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            epoch, j = divmod(self.batches, self.per_epoch)
            idx = self._epoch_rows(epoch)[j * self.batch_size:(j + 1) * self.batch_size]
            self.batches += 1
            yield self.rows[idx]

    def fingerprint(self) -> dict[str, Any]:
        return {"table": self.ts.table_uri, "version": self.ts.version, "selection": self.ts.selection,
                "arm": self.ts.arm, "eval_shard": self.ts.eval_shard, "seq_len": self.seq_len,
                "batch_size": self.batch_size, "seed": self.seed, "world": self.world, "resident": True,
                "rows": self.n_rows, "injected": self.injected}

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, **self.fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        now = self.fingerprint()
        diff = {k: (state.get(k), v) for k, v in now.items() if state.get(k) != v}
        if diff:
            raise ValueError(f"cannot resume the data stream: settings changed since the checkpoint {diff} "
                             "(saved, now)")
        self.batches = int(state["batches"])


def common_eval_rows(lake: str, ts: TrainSet) -> tuple[np.ndarray, dict[str, Any]]:
    """The common held-out set of ``ts``'s selection (module docstring) as one packed stream, and what it holds."""
    if ts.eval_shard is None:
        raise ValueError("the common held-out set needs a held-out shard (eval_shard last or a number)")
    reader = open_reader(lake, versions={TABLE: ts.version})
    files = sorted(reader.files(TABLE, {"selection": ts.selection}))
    table = pa.concat_tables([_parquet_file(f).read(columns=["doc_id", "shard", "token_ids"]) for f in files])
    held = ts.eval_shard
    is_held = pc.equal(table["shard"], held)
    trained = set(table.filter(pc.invert(is_held))["doc_id"].to_pylist())
    rows = table.filter(is_held)
    ids = rows["doc_id"].to_pylist()
    keep, seen = [], set()
    for k in np.argsort(np.asarray(ids, dtype=object), kind="stable"):
        d = ids[k]
        if d not in trained and d not in seen:
            seen.add(d)
            keep.append(int(k))
    picked = rows.take(pa.array(keep, pa.int64()))
    stream = ts.pack(picked)
    return stream, {"kind": "common", "held_shard": held, "documents": len(keep), "tokens": int(len(stream)),
                    "excluded_trained_elsewhere": len({d for d in ids if d in trained})}


def common_eval_batches(lake: str, ts: TrainSet, *, seq_len: int, batch_size: int, max_batches: int, rank: int = 0,
                        world: int = 1) -> tuple[list[torch.Tensor], dict[str, Any]]:
    """Fixed eval batches from the common held-out set (the first ``max_batches`` per rank, row ``i`` to rank
    ``i % world``), and the set's description."""
    flat, info = common_eval_rows(lake, ts)
    width = seq_len + 1
    n = min(max_batches * batch_size * world, len(flat) // width) // world * world
    rows = flat[: n * width].reshape(n, width)[rank::world]
    info["rows"] = int(n)
    return [torch.from_numpy(np.ascontiguousarray(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)], \
        info
