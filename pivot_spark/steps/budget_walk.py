"""The greedy budget fill of :func:`pivot_spark.steps.select.fill_budget` over documents that stay where they are.

The documents of one walk have dense **positions** ``0..n-1`` in the walk's order (a global sort); the walk takes,
in position order, each document that still fits in what is left of the budget. :func:`walk` computes the same
picks as :func:`~pivot_spark.steps.select.fill_budget` without holding the documents: it is a generator that asks
for two kinds of summaries and receives their answers (``send``), so that whoever holds the documents (a Spark
job, or numpy in the tests) answers many walks' questions in one pass:

- :class:`Stats`: for the positions ``[lo, hi)`` cut into buckets of ``width`` positions, per non-empty bucket
  the number, token sum and smallest size of the documents with ``n_tokens <= cap`` (one row per bucket);
- :class:`Rows`: the ``(position, n_tokens)`` of those documents, at most ``driver_rows`` of them.

How it decides, for a range of positions and ``left`` tokens: documents larger than ``left`` can never be taken
(``left`` only shrinks), so only those with ``n_tokens <= left`` count. If they all fit together, the whole range
is taken; if they are few (``driver_rows``), their sizes come back and :func:`fill_steps` walks them; otherwise
the buckets are walked in order: a bucket whose documents all fit is taken whole, one whose smallest document no
longer fits is passed over, and the bucket where the running sum crosses ``left`` is walked the same way with
smaller buckets. The picks are returned as :data:`Range` triples, not document lists: the documents taken are
those at positions ``[lo, hi)`` with ``n_tokens <= cap`` for some triple.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pivot_spark.steps.select import fill_steps

# Documents at positions [lo, hi) with n_tokens <= cap.
Range = tuple[int, int, int]
# One answer row of a Stats request: bucket number (from lo), documents, tokens, smallest n_tokens.
Bucket = tuple[int, int, int, int]


@dataclass(frozen=True)
class Stats:
    """Per bucket ``(position - lo) // width`` of ``[lo, hi)``: documents, token sum and smallest ``n_tokens``
    of the documents with ``n_tokens <= cap``; answered with a list of :data:`Bucket` rows (any order, empty
    buckets left out)."""

    lo: int
    hi: int
    cap: int
    width: int


@dataclass(frozen=True)
class Rows:
    """The ``(position, n_tokens)`` of the documents in ``[lo, hi)`` with ``n_tokens <= cap``; answered with
    two int64 arrays (any order). There are at most ``rows`` of them (known from an earlier :class:`Stats`)."""

    lo: int
    hi: int
    cap: int
    rows: int


Request = Stats | Rows
Walk = Generator[Request, Any, tuple[list[Range], int]]


def walk(budget: int, n_positions: int, *, driver_rows: int, buckets: int) -> Walk:
    """Fill ``budget`` over the documents at positions ``[0, n_positions)``; returns (after the last answer,
    as ``StopIteration.value``) the picks as merged :data:`Range` triples and the tokens taken. ``driver_rows``
    bounds the rows a :class:`Rows` request brings back (0: never ask for rows), ``buckets`` (at least 2) the
    rows of a :class:`Stats` answer."""
    if buckets < 2:
        raise ValueError(f"buckets must be at least 2, got {buckets}")
    ranges: list[Range] = []
    left = yield from _walk_range(0, n_positions, int(budget), ranges, max(driver_rows, 0), buckets)
    return merge_ranges(ranges), int(budget) - left


def _walk_range(lo: int, hi: int, left: int, ranges: list[Range], driver_rows: int, buckets: int
                ) -> Generator[Request, Any, int]:
    """Walk the documents at ``[lo, hi)`` with ``left`` tokens; appends the picks to ``ranges``, returns what
    is left."""
    if hi <= lo:
        return left
    width = -(-(hi - lo) // buckets)
    answer = yield Stats(lo, hi, left, width)
    stats: list[Bucket] = sorted(answer)
    rows = sum(b[1] for b in stats)
    tokens = sum(b[2] for b in stats)
    if rows == 0:
        return left
    if tokens <= left:
        ranges.append((lo, hi, left))
        return left - tokens
    if rows <= driver_rows:
        return (yield from _tail(lo, hi, left, rows, ranges))
    cap = left  # the bucket rows count the documents with n_tokens <= cap
    for bucket, n_rows, n_tok, smallest in stats:
        b_lo = lo + bucket * width
        b_hi = min(b_lo + width, hi)
        if smallest > left:  # nothing here fits any more
            continue
        if n_tok <= left:
            # every document counted here fits (each is at most n_tok <= left), and those not counted are
            # larger than cap >= left: the bucket's documents with n_tokens <= cap are taken
            ranges.append((b_lo, b_hi, cap))
            left -= n_tok
        elif n_rows <= driver_rows:
            left = yield from _tail(b_lo, b_hi, left, n_rows, ranges)
        else:
            left = yield from _walk_range(b_lo, b_hi, left, ranges, driver_rows, buckets)
    return left


def _tail(lo: int, hi: int, left: int, rows: int, ranges: list[Range]) -> Generator[Request, Any, int]:
    """Walk few documents on the caller's side: their sizes come back and :func:`fill_steps` walks them."""
    answer = yield Rows(lo, hi, left, rows)
    pos, n_tokens = (np.asarray(a, dtype=np.int64) for a in answer)
    order = np.argsort(pos, kind="stable")
    pos, n_tokens = pos[order], n_tokens[order]
    for start, end, cap in fill_steps(n_tokens, left):
        took = n_tokens[start:end] <= cap
        if took.any():
            ranges.append((int(pos[start]), int(pos[end]) if end < len(pos) else hi, cap))
            left -= int(n_tokens[start:end][took].sum())
    return left


def merge_ranges(ranges: list[Range]) -> list[Range]:
    """Adjacent ranges with the same cap as one."""
    out: list[Range] = []
    for r in ranges:
        if out and out[-1][1] == r[0] and out[-1][2] == r[2]:
            out[-1] = (out[-1][0], r[1], r[2])
        else:
            out.append(r)
    return out
