"""The token stream over a real train_set: disjoint readers, full coverage, determinism, exact resume."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest
import torch
from deltalake import write_deltalake

from pivot_spark.artifacts import store_tokenizer
from pivot_spark.schemas import TRAIN_SET
from training.data import PackedStream, TokenLoader, eval_batches, open_train_set


def _stream(ts, *, rank=0, world=1, workers=0, seed=3, batch=4, seq=32, block=24):
    return PackedStream(ts, seq_len=seq, batch_size=batch, seed=seed, rank=rank, world=world, block=block,
                        num_workers=workers)


def _take(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_open_pins_version_and_holds_out_last_shard(lake):
    ts = open_train_set(lake, "demo", "pivot")
    assert ts.version == 1 and ts.shards == [0, 1, 2, 3] and ts.eval_shard == 3
    assert ts.eval_groups and ts.train_docs > 50 and ts.vocab_size == 800
    for g in ts.train_groups[:5]:
        assert 3 not in ts.read_rows(g.path, g.index, train=True)["shard"].to_pylist()
    for g in ts.eval_groups[:5]:
        assert set(ts.read_rows(g.path, g.index, train=False)["shard"].to_pylist()) == {3}
    pinned = open_train_set(lake, "demo", "pivot", version=0, eval_shard=None)
    assert pinned.version == 0 and pinned.eval_shard is None and pinned.train_docs > ts.train_docs


def test_pack_delimits_documents(lake):
    ts = open_train_set(lake, "demo", "pivot")
    g = ts.train_groups[0]
    rows = ts.read_rows(g.path, g.index, train=True)
    want = np.concatenate([[ts.bos_id, *ids, ts.eos_id] for ids in rows["token_ids"].to_pylist()])
    np.testing.assert_array_equal(ts.pack(rows), want)
    assert len(want) == int(g.row_tokens.sum())


@pytest.mark.parametrize(("world", "workers"), [(1, 1), (2, 1), (2, 3)])
def test_readers_are_disjoint_and_cover_every_token(lake, world, workers):
    ts = open_train_set(lake, "demo", "pivot")
    streams = [_stream(ts, rank=r, world=world, workers=workers) for r in range(world)]
    readers = world * workers
    for epoch in (0, 1):
        keys = [u.key() for g in range(readers) for u in streams[g // workers].epoch_units(epoch, g)]
        assert len(keys) == len(set(keys)) == len(streams[0]._units)
    # the tokens each reader streams in its first epoch, all readers together, are exactly the training tokens
    got = []
    for g in range(readers):
        s = streams[g // workers]
        need = sum(u.n_tokens for u in s.epoch_units(0, g))
        chunks, n = [], 0
        for c in s._tokens_from(0, g):
            chunks.append(c)
            n += len(c)
            if n >= need:
                break
        got.append(np.concatenate(chunks)[:need])
    every = np.concatenate([ts.pack(ts.read_rows(g.path, g.index, train=True)) for g in ts.train_groups])
    np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.sort(every))


def test_stream_is_deterministic_and_seeded(lake):
    ts = open_train_set(lake, "demo", "pivot")
    a = _take(TokenLoader(_stream(ts)), 12)
    b = _take(TokenLoader(_stream(ts)), 12)
    c = _take(TokenLoader(_stream(ts, seed=4)), 12)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    assert a[0].shape == (4, 33) and a[0].dtype == torch.int32


@pytest.mark.parametrize(("workers", "consumed"), [(0, 5), (0, 6), (0, 13), (2, 7), (2, 12)])
def test_resume_continues_with_the_exact_batch(lake, workers, consumed):
    """Block = 24 rows = 6 batches of 4: positions inside, at and past block boundaries, with and without workers."""
    ts = open_train_set(lake, "demo", "pivot")
    straight = _take(TokenLoader(_stream(ts, workers=workers)), consumed + 8)
    first = TokenLoader(_stream(ts, workers=workers))
    _take(first, consumed)
    state = first.state_dict()
    assert state["batches"] == consumed
    resumed = TokenLoader(_stream(ts, workers=workers))
    resumed.load_state_dict(state)
    after = _take(resumed, 8)
    assert all(torch.equal(x, y) for x, y in zip(straight[consumed:], after, strict=True))


def test_resume_refuses_changed_settings(lake):
    ts = open_train_set(lake, "demo", "pivot")
    first = TokenLoader(_stream(ts))
    _take(first, 2)
    other = TokenLoader(_stream(ts, batch=8))
    with pytest.raises(ValueError, match="batch_size"):
        other.load_state_dict(first.state_dict())


def test_eval_batches_split_ranks_and_stay_fixed(lake):
    ts = open_train_set(lake, "demo", "pivot")
    r0 = eval_batches(ts, seq_len=32, batch_size=4, max_batches=2, rank=0, world=2)
    r1 = eval_batches(ts, seq_len=32, batch_size=4, max_batches=2, rank=1, world=2)
    assert len(r0) == len(r1) == 2 and not torch.equal(r0[0], r1[0])
    assert all(torch.equal(x, y) for x, y in zip(r0, eval_batches(ts, seq_len=32, batch_size=4, max_batches=2,
                                                                   rank=0, world=2), strict=True))


def _tiny_table(tmp_path, sp_model, n_tokens_delta=0, shards=(0, 1)):
    lake = str(tmp_path / "lake")
    h = store_tokenizer(lake, sp_model)
    rows = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    t = pa.table({"selection": ["s"] * 3, "arm": ["a"] * 3, "doc_id": ["d0", "d1", "d2"],
                  "token_ids": rows, "n_tokens": [len(r) + n_tokens_delta for r in rows],
                  "shard": [shards[i % len(shards)] for i in range(3)], "lang": ["en"] * 3,
                  "tokenizer": [h] * 3}, schema=TRAIN_SET)
    write_deltalake(f"{lake}/train_set", t, partition_by=["selection", "arm"])
    return lake


def test_bad_rows_give_clear_errors(tmp_path, sp_model):
    lake = _tiny_table(tmp_path, sp_model, n_tokens_delta=1)
    ts = open_train_set(lake, "s", "a")
    g = ts.train_groups[0]
    with pytest.raises(ValueError, match="n_tokens does not match"):
        ts.read_rows(g.path, g.index, train=True)
    with pytest.raises(ValueError, match="no rows for selection"):
        open_train_set(lake, "s", "other")
    single = _tiny_table(tmp_path / "single", sp_model, shards=(0,))
    with pytest.raises(ValueError, match="--eval-shard none"):
        open_train_set(single, "s", "a")
    with pytest.raises(ValueError, match="fewer than the 4 readers"):
        PackedStream(open_train_set(single, "s", "a", eval_shard=None), seq_len=4, batch_size=1, seed=0,
                     world=2, num_workers=2)
