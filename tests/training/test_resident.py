"""The device-resident stream (exact resume, disjoint ranks, injected documents) and the common held-out set."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from pivot_spark.lake.reader import open_reader
from training.config import TrainSettings
from training.data import open_train_set
from training.resident import ResidentLoader, common_eval_batches, common_eval_rows, injected_documents


def _loader(ts, **kw):
    args = {"seq_len": 32, "batch_size": 4, "seed": 3, "device": torch.device("cpu")} | kw
    return ResidentLoader(ts, **args)


def test_resume_continues_with_the_exact_batch_across_epochs(lake):
    ts = open_train_set(lake, "demo", "pivot")
    a = _loader(ts)
    n = a.per_epoch + 5  # into the second epoch
    straight = [b.clone() for b in itertools.islice(iter(a), n)]
    b = _loader(ts)
    first = list(itertools.islice(iter(b), 7))
    state = b.state_dict()
    c = _loader(ts)
    c.load_state_dict(state)
    rest = list(itertools.islice(iter(c), n - 7))
    for x, y in zip(straight, first + rest, strict=True):
        assert torch.equal(x, y)
    with pytest.raises(ValueError, match="settings changed"):
        _loader(ts, seed=4).load_state_dict(state)


def test_ranks_split_every_epoch_disjointly(lake):
    ts = open_train_set(lake, "demo", "pivot")
    seen = []
    for rank in range(2):
        ld = _loader(ts, rank=rank, world=2)
        rows = torch.cat(list(itertools.islice(iter(ld), ld.per_epoch)))
        seen += [tuple(r.tolist()) for r in rows]
    stock = Counter(tuple(r.tolist()) for r in ld.rows)
    assert not Counter(seen) - stock  # no row more often within an epoch, across the ranks, than the stream has it
    assert len(seen) >= 0.9 * ld.n_rows


def test_injected_documents_are_in_the_stream(lake, sp_model, tmp_path):
    ts = open_train_set(lake, "demo", "pivot")
    gloss = tmp_path / "g.jsonl"
    gloss.write_text(json.dumps({"text": "English: water\nFrench: eau"}) + "\n", encoding="utf-8")
    docs = injected_documents(gloss, str(sp_model))
    plain, mixed = _loader(ts), _loader(ts, inject=docs, inject_repeats=5)
    flat = mixed.rows.flatten().numpy()
    seq = np.concatenate([[ts.bos_id], docs[0], [ts.eos_id]])
    hits = sum(np.array_equal(flat[i:i + len(seq)], seq) for i in np.flatnonzero(flat == seq[0]))
    assert hits >= 4  # five copies, one may straddle the tail cut
    assert mixed.injected["repeats"] == 5 and mixed.n_rows > plain.n_rows
    with pytest.raises(ValueError, match="resident"):
        TrainSettings(max_steps=1, inject=str(gloss))


def test_common_held_out_set_is_shared_and_never_trained_on(lake):
    pivot, random = open_train_set(lake, "demo", "pivot"), open_train_set(lake, "demo", "random")
    a, info = common_eval_rows(lake, pivot)
    b, _ = common_eval_rows(lake, random)
    np.testing.assert_array_equal(a, b)  # every arm measures its eval loss on the same documents
    assert info["documents"] > 0 and info["held_shard"] == 3
    trained, held = set(), set()
    for f in open_reader(lake).files("train_set", {"selection": "demo"}):
        t = pq.read_table(f, columns=["doc_id", "shard"])
        trained |= set(t.filter(pc.not_equal(t["shard"], 3))["doc_id"].to_pylist())
        held |= set(t.filter(pc.equal(t["shard"], 3))["doc_id"].to_pylist())
    assert info["documents"] == len(held - trained)
    batches, binfo = common_eval_batches(lake, pivot, seq_len=32, batch_size=4, max_batches=2)
    assert len(batches) == 2 and batches[0].shape == (4, 33) and binfo["rows"] == 8
