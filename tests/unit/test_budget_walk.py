"""The budget walk over positions (steps/budget_walk.py) takes exactly what fill_budget takes, answered here by
numpy the way a Spark job answers it, with every size of row batch and bucket count."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pivot_spark.steps.budget_walk import Range, Rows, Stats, Walk, merge_ranges, walk
from pivot_spark.steps.select import fill_budget, fill_steps


class Answerer:
    """Answers a walk's requests over documents at the given positions (a subset of 0..n-1, like the documents
    of one language inside a global order), counting what came back."""

    def __init__(self, positions: np.ndarray, n_tokens: np.ndarray, driver_rows: int, buckets: int) -> None:
        self.pos, self.n = positions, n_tokens
        self.driver_rows, self.buckets = driver_rows, buckets
        self.requests = 0

    def __call__(self, req: Stats | Rows) -> Any:
        self.requests += 1
        m = (self.pos >= req.lo) & (self.pos < req.hi) & (self.n <= req.cap)
        if isinstance(req, Rows):
            assert m.sum() <= req.rows <= self.driver_rows
            return self.pos[m], self.n[m]
        bucket = (self.pos[m] - req.lo) // req.width
        out = []
        for b in np.unique(bucket):
            sizes = self.n[m][bucket == b]
            out.append((int(b), len(sizes), int(sizes.sum()), int(sizes.min())))
        assert len(out) <= self.buckets
        return out[::-1]  # any order

    def run(self, gen: Walk) -> tuple[list[Range], int]:
        try:
            req = next(gen)
            while True:
                req = gen.send(self(req))
        except StopIteration as stop:
            return stop.value


def taken(ranges: list[Range], positions: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    mask = np.zeros(len(positions), dtype=bool)
    for lo, hi, cap in ranges:
        mask |= (positions >= lo) & (positions < hi) & (n_tokens <= cap)
    return mask


def sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly small documents, some large ones, a few empty: the greedy skips many of them."""
    small = rng.integers(1, 60, n)
    large = rng.integers(200, 3000, n)
    out = np.where(rng.random(n) < 0.2, large, small)
    out[rng.random(n) < 0.02] = 0
    return out.astype(np.int64)


@pytest.mark.parametrize("driver_rows", [0, 1, 7, 100, 10**6])
@pytest.mark.parametrize("buckets", [2, 3, 16, 1024])
def test_walk_takes_what_fill_budget_takes(driver_rows: int, buckets: int) -> None:
    rng = np.random.default_rng(driver_rows * 7 + buckets)
    for n_docs in (0, 1, 2, 57, 900):
        n_tokens = sizes(rng, n_docs)
        total = int(n_tokens.sum())
        for budget in {0, 1, 50, total // 3, max(total - 1, 0), total, total + 5}:
            positions = np.arange(n_docs)
            answer = Answerer(positions, n_tokens, driver_rows, buckets)
            ranges, tokens = answer.run(walk(budget, n_docs, driver_rows=driver_rows, buckets=buckets))
            got = taken(ranges, positions, n_tokens)
            want = fill_budget(n_tokens, budget)
            assert got.tolist() == want.tolist(), (n_docs, budget)
            assert tokens == int(n_tokens[want].sum())


def test_walk_over_a_subset_of_positions() -> None:
    """A walk over some documents of a larger order (one language; the documents not taken yet): positions
    have gaps, and the walk sees only its own documents."""
    rng = np.random.default_rng(3)
    n_all = 5000
    n_tokens_all = sizes(rng, n_all)
    mine = np.flatnonzero(rng.random(n_all) < 0.3)
    n_tokens = n_tokens_all[mine]
    budget = int(n_tokens.sum()) // 2
    answer = Answerer(mine, n_tokens, driver_rows=20, buckets=8)
    ranges, tokens = answer.run(walk(budget, n_all, driver_rows=20, buckets=8))
    assert taken(ranges, mine, n_tokens).tolist() == fill_budget(n_tokens, budget).tolist()
    assert answer.requests > 3  # several rounds: prefix buckets, zoom, tails


def test_greedy_skipping_needs_several_rounds() -> None:
    """Large documents early in the order that no longer fit, then smaller ones that do: the walk must skip
    and continue, as fill_budget does, through several zoom levels."""
    n_tokens = np.array([400, 300, 500, 350, 90, 200, 80, 60, 100, 40, 30, 45, 20, 10, 12, 5, 3] * 40,
                        dtype=np.int64)
    budget = 2345
    for driver_rows, buckets in [(0, 2), (3, 2), (5, 4)]:
        answer = Answerer(np.arange(len(n_tokens)), n_tokens, driver_rows, buckets)
        ranges, _ = answer.run(walk(budget, len(n_tokens), driver_rows=driver_rows, buckets=buckets))
        want = fill_budget(n_tokens, budget)
        assert taken(ranges, np.arange(len(n_tokens)), n_tokens).tolist() == want.tolist()
        assert (~want[: np.flatnonzero(want)[-1]]).sum() > 3  # documents skipped between taken ones


def test_fill_steps_describe_fill_budget() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        n_tokens = sizes(rng, int(rng.integers(0, 80)))
        budget = int(rng.integers(0, 2000))
        mask = np.zeros(len(n_tokens), dtype=bool)
        for start, end, cap in fill_steps(n_tokens, budget):
            mask[start:end] |= n_tokens[start:end] <= cap
        # the plain sequential walk
        left, want = budget, []
        for n in n_tokens:
            want.append(bool(n <= left))
            left -= n if n <= left else 0
        assert mask.tolist() == want == fill_budget(n_tokens, budget).tolist()


def test_merge_ranges_joins_adjacent_ranges_with_one_cap() -> None:
    assert merge_ranges([(0, 5, 9), (5, 8, 9), (8, 9, 4), (10, 12, 4)]) == [(0, 8, 9), (8, 9, 4), (10, 12, 4)]
    with pytest.raises(ValueError, match="buckets"):
        next(walk(10, 10, driver_rows=0, buckets=1))
