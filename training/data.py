"""Token stream over one selection and arm of ``train_set`` at a pinned Delta version.

Why it looks like this:

- The table's files are those of one pinned version, listed by :func:`pivot_spark.lake.reader.open_reader`
  (delta-rs on a lake, the manifest of an offline bundle; never a plain Parquet folder listing). The version is
  recorded in every checkpoint, so a resumed run reads exactly the files the first run read.
- Work units are (file, row group, slice of the training rows). Rows of the held-out eval shard are filtered out
  before units are cut, so every unit holds training tokens. When a small table has fewer row groups than the
  readers need, row groups are cut into row slices.
- Each reader (one DataLoader worker of one rank: ``g = rank * workers + worker`` of ``W = world * workers``)
  takes every ``W``-th unit of a per-epoch permutation: readers never overlap, and within an epoch they cover every
  unit once. Streams are endless (epoch after epoch), so ranks never run dry at different steps under DDP.
- Documents are packed as ``[bos] tokens [eos]`` into one stream per reader, cut into rows of ``seq_len + 1``
  tokens. Rows are shuffled in blocks of ``block`` consecutive rows with a permutation seeded by
  ``(seed, W, g, block index)``. A reader's position is therefore a pure function of how many rows it has
  delivered: resuming needs no buffer contents, only the row count. The row count maps to a token offset,
  the token offset to (epoch, unit) through the ``n_tokens`` column, and the resumed reader reads only the units of
  the current block. ``n_tokens`` is checked against the real list length when a unit is read.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sentencepiece as spm
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pivot_spark.io.fs import location
from pivot_spark.lake.reader import open_reader

TABLE = "train_set"


@dataclass(frozen=True)
class RowGroup:
    """One Parquet row group of the selection: where it is and the stream length of each training row in it."""

    path: str
    index: int
    row_tokens: np.ndarray  # per training row: n_tokens + bos/eos, in file order


@dataclass(frozen=True)
class Unit:
    """A slice ``[lo, hi)`` of one row group's training rows: the smallest piece a reader takes."""

    path: str
    row_group: int
    lo: int
    hi: int
    n_tokens: int  # stream tokens, bos/eos included

    def key(self) -> str:
        return f"{Path(self.path).name}#{self.row_group}[{self.lo}:{self.hi}]"


@dataclass
class TrainSet:
    """The selection as the trainer sees it: pinned version, tokenizer hash, shards, and row groups."""

    table_uri: str
    version: int
    selection: str
    arm: str
    tokenizer: str
    tokenizer_model: str
    vocab_size: int
    shards: list[int]
    eval_shard: int | None
    bos_id: int
    eos_id: int
    train_groups: list[RowGroup] = field(repr=False)
    eval_groups: list[RowGroup] = field(repr=False)
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)  # an object-store lake's

    @property
    def train_tokens(self) -> int:
        return int(sum(int(g.row_tokens.sum()) for g in self.train_groups))

    @property
    def train_docs(self) -> int:
        return sum(len(g.row_tokens) for g in self.train_groups)

    def describe(self) -> dict[str, Any]:
        return {"table": self.table_uri, "version": self.version, "selection": self.selection, "arm": self.arm,
                "tokenizer": self.tokenizer, "shards": self.shards, "eval_shard": self.eval_shard,
                "train_docs": self.train_docs, "train_tokens": self.train_tokens}

    def units(self, readers: int) -> list[Unit]:
        """Cut row groups into units, at least four per reader (row slices only where the table is too small)."""
        if self.train_docs < readers:
            raise ValueError(f"{self.selection}/{self.arm} has {self.train_docs} training documents, fewer than the "
                             f"{readers} readers (ranks x loader workers): use fewer workers or ranks")
        per_group = max(1, math.ceil(4 * readers / max(1, len(self.train_groups))))
        out: list[Unit] = []
        for g in self.train_groups:
            n = len(g.row_tokens)
            k = min(per_group, n)
            cum = np.concatenate([[0], np.cumsum(g.row_tokens, dtype=np.int64)])
            bounds = [round(i * n / k) for i in range(k + 1)]
            out.extend(Unit(g.path, g.index, lo, hi, int(cum[hi] - cum[lo]))
                       for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))
        return out

    # -- reading ----------------------------------------------------------------------------------------------
    def read_rows(self, path: str, row_group: int, train: bool, *, doc_ids: bool = False) -> pa.Table:
        """The training (or eval) rows of one row group, in file order, with ``n_tokens`` checked.

        The hot path of the stream: numpy masks instead of Arrow filters where nothing is dropped, and ``doc_id``
        (a string column) only when asked for.
        """
        pf = _parquet_file(path, self.storage_options)
        cols = ["token_ids", "n_tokens", "shard"] + (["doc_id"] if doc_ids else [])
        t = pf.read_row_group(row_group, columns=cols)
        if self.eval_shard is not None:
            keep = (t["shard"].to_numpy() == self.eval_shard) != train
            if not keep.all():
                t = t.filter(pa.array(keep))
        lengths = pc.list_value_length(t["token_ids"]).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(np.nan_to_num(lengths, nan=0) != t["n_tokens"].to_numpy())
        if len(bad):
            doc = self.read_rows(path, row_group, train, doc_ids=True)["doc_id"][int(bad[0])].as_py() \
                if not doc_ids else t["doc_id"][int(bad[0])].as_py()
            raise ValueError(f"train_set row {doc!r} in {path} (row group {row_group}): n_tokens does not match "
                             "the length of token_ids; rebuild the selection with `pivot-spark select`")
        return t

    def pack(self, rows: pa.Table) -> np.ndarray:
        """Documents of ``rows`` as one int32 stream ``[bos] tokens [eos] [bos] tokens [eos] ...``."""
        col = rows["token_ids"].combine_chunks()
        values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        return self._pack(values, pc.list_value_length(col).to_numpy(zero_copy_only=False))

    def read_packed(self, u: Unit) -> np.ndarray:
        """One unit as a packed int32 stream: :meth:`read_rows` then :meth:`pack`, without Arrow filters or copies
        of the list column (the stream's hot path)."""
        t = _parquet_file(u.path, self.storage_options).read_row_group(u.row_group,
                                                                       columns=["token_ids", "n_tokens", "shard"])
        col = t["token_ids"].combine_chunks()
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        if (np.nan_to_num(lengths, nan=0) != t["n_tokens"].to_numpy()).any():
            self.read_rows(u.path, u.row_group, True)  # raises with the document named
        rows = np.arange(t.num_rows)
        if self.eval_shard is not None:
            rows = rows[t["shard"].to_numpy() != self.eval_shard]
        rows = rows[u.lo:u.hi]
        values = pc.list_flatten(col).to_numpy(zero_copy_only=False)
        if len(rows) < t.num_rows:
            picked = np.zeros(t.num_rows, dtype=bool)
            picked[rows] = True
            values = values[np.repeat(picked, lengths)]
            lengths = lengths[picked]
        return self._pack(values, lengths)

    def _pack(self, values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        lengths = lengths.astype(np.int64, copy=False)
        extra = 1 + (self.bos_id >= 0)
        ends = np.cumsum(lengths + extra) - 1
        out = np.empty(int(ends[-1]) + 1 if len(ends) else 0, dtype=np.int32)
        # each token moves right by the bos/eos of the documents before it (and its own bos)
        shift = np.repeat(np.arange(len(lengths), dtype=np.int64) * extra + (extra - 1), lengths)
        out[np.arange(len(values), dtype=np.int64) + shift] = values
        out[ends] = self.eos_id
        if self.bos_id >= 0:
            out[ends - lengths - 1] = self.bos_id
        return out


_FILES: dict[tuple[int, str], pq.ParquetFile] = {}


def _parquet_file(uri: str, storage_options: Mapping[str, str] | None = None) -> pq.ParquetFile:
    """Open a Parquet file by URI once per process (loader workers are forked: each opens its own handle).

    Object stores through ``pyarrow.fs`` with ``storage_options`` (the lake's: endpoint, credentials, region),
    keys absent there from the environment (AWS_* variables), as delta-rs does.
    """
    key = (os.getpid(), uri)
    if key not in _FILES:
        if "://" in uri and not uri.startswith("file://"):
            loc = location(uri, storage_options)
            _FILES[key] = pq.ParquetFile(loc.fs.open_input_file(loc.root))
        else:
            _FILES[key] = pq.ParquetFile(uri.removeprefix("file://"))
    return _FILES[key]


def open_train_set(lake: str, selection: str, arm: str, *, version: int | None = None,
                   eval_shard: int | str | None = "last", tokenizer_model: str | None = None,
                   storage_options: dict[str, str] | None = None) -> TrainSet:
    """Pin ``train_set`` at ``version`` (default: the newest) and index the selection's row groups.

    ``lake``: a lake URI or an offline bundle (:mod:`pivot_spark.bundle`). ``eval_shard``: a shard number,
    ``"last"`` (the highest shard, the one `select` holds out with ``heldout_shard``) or ``None`` (train on
    everything, no eval). Reads only the small columns here. ``tokenizer_model``: the SentencePiece file, by
    default the one of the hash the rows carry, where the lake (or bundle) keeps it.
    """
    reader = open_reader(lake, versions=None if version is None else {TABLE: version},
                         storage_options=storage_options)
    pinned = reader.version(TABLE)
    files = reader.files(TABLE, {"selection": selection, "arm": arm})
    if not files:
        raise ValueError(f"{TABLE} version {pinned} has no rows for selection={selection!r} arm={arm!r}")
    groups: list[tuple[str, int, np.ndarray, np.ndarray]] = []
    tokenizers: set[str] = set()
    for path in sorted(files):
        pf = _parquet_file(path, storage_options)
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i, columns=["shard", "n_tokens", "tokenizer"])
            if t.num_rows == 0:
                continue
            tokenizers.update(pc.unique(t["tokenizer"]).to_pylist())
            groups.append((path, i, t["shard"].to_numpy(), t["n_tokens"].to_numpy().astype(np.int64)))
    if len(tokenizers) != 1:
        raise ValueError(f"{selection}/{arm} mixes tokenizers {sorted(map(str, tokenizers))}: one selection must be "
                         "made with one tokenizer")
    tok_hash = str(tokenizers.pop())
    sp_path = tokenizer_model or str(reader.tokenizer_path(tok_hash))
    sp = spm.SentencePieceProcessor(model_file=sp_path)
    bos_id, eos_id = sp.bos_id(), sp.eos_id()
    if eos_id < 0:
        raise ValueError(f"tokenizer {sp_path} has no end-of-document piece (eos_id < 0): retrain it with eos")
    extra = 1 + (bos_id >= 0)
    shards = sorted({int(s) for _, _, sh, _ in groups for s in np.unique(sh)})
    if eval_shard == "last":
        if len(shards) < 2:
            raise ValueError(f"{selection}/{arm} has a single shard {shards}: nothing to hold out; pass "
                             "--eval-shard none to train on all of it")
        held: int | None = shards[-1]
    else:
        held = None if eval_shard is None else int(eval_shard)
        if held is not None and held not in shards:
            raise ValueError(f"eval shard {held} not among the shards {shards} of {selection}/{arm}")
    train, evals = [], []
    for path, i, sh, ntok in groups:
        is_eval = sh == held if held is not None else np.zeros(len(sh), dtype=bool)
        if (~is_eval).any():
            train.append(RowGroup(path, i, ntok[~is_eval] + extra))
        if is_eval.any():
            evals.append(RowGroup(path, i, ntok[is_eval] + extra))
    return TrainSet(reader.table_uri(TABLE), pinned, selection, arm, tok_hash, sp_path, sp.get_piece_size(),
                    shards, held, bos_id, eos_id, train, evals, dict(storage_options or {}))


class PackedStream(IterableDataset):
    """Endless shuffled batches ``int32[batch_size, seq_len + 1]`` of one rank; see the module docstring.

    ``start_batch`` (set by :class:`TokenLoader` on resume) is the number of batches this rank already consumed.
    """

    def __init__(self, ts: TrainSet, *, seq_len: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 block: int = 256, num_workers: int = 0, trace_dir: str | None = None) -> None:
        super().__init__()
        self.ts, self.seq_len, self.batch_size, self.seed = ts, seq_len, batch_size, seed
        self.rank, self.world, self.num_workers = rank, world, num_workers
        self.block = max(1, math.ceil(block / batch_size)) * batch_size  # whole batches per block
        self.start_batch = 0
        self.trace_dir = trace_dir
        self._units = ts.units(self.readers)

    @property
    def readers(self) -> int:
        return self.world * max(1, self.num_workers)

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a saved position to mean the same thing."""
        return {"table": self.ts.table_uri, "version": self.ts.version, "selection": self.ts.selection,
                "arm": self.ts.arm, "eval_shard": self.ts.eval_shard, "seq_len": self.seq_len,
                "batch_size": self.batch_size, "seed": self.seed, "world": self.world,
                "num_workers": self.num_workers, "block": self.block}

    def epoch_units(self, epoch: int, reader: int) -> list[Unit]:
        perm = np.random.default_rng([self.seed, epoch, 7919]).permutation(len(self._units))
        return [self._units[i] for i in perm[reader::self.readers]]

    def _read_unit(self, u: Unit, epoch: int, reader: int) -> np.ndarray:
        if self.trace_dir:
            rows = self.ts.read_rows(u.path, u.row_group, train=True, doc_ids=True).slice(u.lo, u.hi - u.lo)
            with open(Path(self.trace_dir) / f"reader{reader}.jsonl", "a") as f:
                f.write(json.dumps({"rank": self.rank, "reader": reader, "epoch": epoch, "unit": u.key(),
                                    "doc_ids": rows["doc_id"].to_pylist()}) + "\n")
        return self.ts.read_packed(u)

    def _tokens_from(self, offset: int, reader: int) -> Iterator[np.ndarray]:
        """The reader's endless token stream from ``offset``, reading only units at or after it."""
        epoch = 0
        while True:
            units = self.epoch_units(epoch, reader)
            cum = np.cumsum([u.n_tokens for u in units])
            if offset >= cum[-1]:
                offset -= int(cum[-1])
                epoch += 1
                continue
            j = int(np.searchsorted(cum, offset, side="right"))
            skip = offset - (int(cum[j - 1]) if j else 0)
            for u in units[j:]:
                yield self._read_unit(u, epoch, reader)[skip:]
                skip = 0
            offset = 0
            epoch += 1

    def _role(self) -> tuple[int, int]:
        """(reader id, batches this reader already delivered), stable across a resume that restarts workers."""
        info = get_worker_info()
        n = info.num_workers if info is not None else 1
        if n != max(1, self.num_workers):
            raise RuntimeError(f"PackedStream built for {self.num_workers} workers runs under {n}")
        role = ((info.id if info is not None else 0) + self.start_batch) % n
        done = max(0, (self.start_batch - role + n - 1) // n)
        return self.rank * n + role, done

    def __iter__(self) -> Iterator[torch.Tensor]:
        reader, done = self._role()
        rows_done = done * self.batch_size
        b, skip = divmod(rows_done, self.block)
        width = self.seq_len + 1
        chunks = self._tokens_from(b * self.block * width, reader)
        pending: list[np.ndarray] = []
        have = 0
        need = self.block * width
        while True:
            while have < need:
                c = next(chunks)
                pending.append(c)
                have += len(c)
            flat = np.concatenate(pending)
            pending, have = [flat[need:]], len(flat) - need
            rows = flat[:need].reshape(self.block, width)
            rows = rows[np.random.default_rng([self.seed, self.readers, reader, b]).permutation(self.block)]
            for i in range(skip, self.block, self.batch_size):
                yield torch.from_numpy(rows[i:i + self.batch_size])
            skip = 0
            b += 1


class TokenLoader:
    """DataLoader over a :class:`PackedStream` that counts delivered batches: the resumable data position."""

    def __init__(self, stream: PackedStream, *, pin_memory: bool = False, prefetch_factor: int = 4) -> None:
        self.stream, self.pin_memory, self.prefetch_factor = stream, pin_memory, prefetch_factor
        self.batches = 0

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.stream.start_batch = self.batches
        nw = self.stream.num_workers
        loader = DataLoader(self.stream, batch_size=None, num_workers=nw, pin_memory=self.pin_memory,
                            prefetch_factor=self.prefetch_factor if nw else None, persistent_workers=False)
        for batch in loader:
            self.batches += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches, **self.stream.fingerprint()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        now = self.stream.fingerprint()
        diff = {k: (state.get(k), v) for k, v in now.items() if state.get(k) != v}
        if diff:
            raise ValueError(f"cannot resume the data stream: settings changed since the checkpoint {diff} "
                             "(saved, now); resume with the same table version, seed, batch size, ranks and workers")
        self.batches = int(state["batches"])


def eval_batches(ts: TrainSet, *, seq_len: int, batch_size: int, max_batches: int, rank: int = 0,
                 world: int = 1) -> list[torch.Tensor]:
    """Fixed eval batches from the held-out shard, in file order, split across ranks (row ``i`` to rank ``i % world``).

    Deterministic and identical at every evaluation, so eval losses are comparable along a run.
    """
    if ts.eval_shard is None or not ts.eval_groups:
        return []
    width = seq_len + 1
    want = max_batches * batch_size * world
    parts, have = [], 0
    for g in ts.eval_groups:
        parts.append(ts.pack(ts.read_rows(g.path, g.index, train=False)))
        have += len(parts[-1])
        if have >= want * width:
            break
    flat = np.concatenate(parts)
    n = min(want, len(flat) // width) // world * world
    rows = flat[: n * width].reshape(n, width)[rank::world]
    return [torch.from_numpy(np.ascontiguousarray(rows[i:i + batch_size])) for i in range(0, len(rows), batch_size)]
