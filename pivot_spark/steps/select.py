"""Training-set selection arms over per-document metadata (pandas: ``doc_id, n_tokens, pivot_proportion, lang``).

Every arm fills the same token budget the same way: walk the arm's order of documents and take each document
that still fits in what is left of the budget, skipping those that do not. So an arm never exceeds the budget,
and it falls short by less than one document: if any document was skipped, the total is above ``budget -
n_tokens(first skipped document) >= budget - max document tokens``; if none was, the pool is used up, and
:func:`select_arm` raises instead when the whole pool is smaller than the budget.

Order is deterministic for a seed and independent of row order or partitioning: a document's random key is a
64-bit BLAKE2b hash of ``(seed, doc_id)``.

- ``random``: ascending random key.
- ``pivot``: highest ``pivot_proportion`` first, ties by random key; with ``pivot_random_share = s`` the first
  ``(1 - s) x budget`` tokens come from that order and the rest from the random order (documents not yet taken).
- ``langmatch``: random documents matching a reference language mix (token shares, usually the pivot arm's):
  each language is filled to its share of the budget in random order, then any remainder (at most one
  document per language) is topped up from the remaining documents in random order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

Arm = Literal["pivot", "random", "langmatch"]
ARMS: tuple[str, ...] = ("pivot", "random", "langmatch")


def seeded_hash(seed: int, ids: Iterable[str], salt: str = "order") -> np.ndarray:
    """Stable uint64 key per id: the same for a seed on every machine, Python and pandas version."""
    prefix = f"{salt}:{seed}:".encode()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(prefix + str(i).encode(), digest_size=8).digest(), "little")
            for i in ids
        ),
        dtype=np.uint64,
    )


def signed_key(seed: int, ids: Iterable[str], salt: str = "order") -> np.ndarray:
    """:func:`seeded_hash` as int64 with the same order (the top bit flipped): a key for engines without
    unsigned 64-bit integers."""
    return (seeded_hash(seed, ids, salt) ^ np.uint64(1 << 63)).view(np.int64)


def fill_budget(n_tokens: np.ndarray, budget: int) -> np.ndarray:
    """Boolean mask of the documents taken when walking ``n_tokens`` in order and taking each one that still
    fits in the remaining budget (module docstring)."""
    n_tokens = np.asarray(n_tokens, dtype=np.int64)
    taken = np.zeros(len(n_tokens), dtype=bool)
    for start, end, cap in fill_steps(n_tokens, budget):
        taken[start:end] = n_tokens[start:end] <= cap
    return taken


def fill_steps(n_tokens: np.ndarray, budget: int) -> list[tuple[int, int, int]]:
    """The walk of :func:`fill_budget` as steps ``(start, end, cap)``: the documents taken are, for each step,
    those in ``[start, end)`` with ``n_tokens <= cap``. The walk takes, among the documents that fit now, the
    leading run that fits together; the document after it no longer fits and is skipped, and the walk resumes
    behind it with what is left, which only shrinks; so the steps are few where documents are many."""
    n_tokens = np.asarray(n_tokens, dtype=np.int64)
    steps = []
    left, start = int(budget), 0
    while start < len(n_tokens):
        fits = np.flatnonzero(n_tokens[start:] <= left) + start
        k = int(np.searchsorted(np.cumsum(n_tokens[fits]), left, side="right"))
        end = int(fits[k]) if k < len(fits) else len(n_tokens)
        steps.append((start, end, left))
        left -= int(n_tokens[fits[:k]].sum())
        if k == len(fits):
            break
        start = end + 1
    return steps


def select_arm(
    meta: pd.DataFrame,
    arm: Arm,
    *,
    token_budget: int,
    seed: int,
    pivot_random_share: float = 0.0,
    reference_lang_mix: Mapping[str, float] | None = None,
) -> list[str]:
    """The ``doc_id``s of one arm, in the arm's order (module docstring). ``langmatch`` needs
    ``reference_lang_mix`` (language -> token share, e.g. :func:`lang_mix` of the pivot arm)."""
    _check_meta(meta)
    if token_budget <= 0:
        raise ValueError(f"token_budget must be positive, got {token_budget}")
    pool_tokens = int(meta["n_tokens"].sum())
    if pool_tokens < token_budget:
        raise ValueError(
            f"the pool has {pool_tokens} tokens, fewer than the budget {token_budget}: "
            "lower select.token_budget or add documents"
        )
    key = seeded_hash(seed, meta["doc_id"])
    random_order = np.lexsort((meta["doc_id"].to_numpy(dtype=str), key))
    n_tokens = meta["n_tokens"].to_numpy(dtype=np.int64)
    if arm == "random":
        chosen = random_order[fill_budget(n_tokens[random_order], token_budget)]
    elif arm == "pivot":
        if not 0.0 <= pivot_random_share <= 1.0:
            raise ValueError(f"pivot_random_share must be in [0, 1], got {pivot_random_share}")
        proportion = meta["pivot_proportion"].to_numpy(dtype=float)
        pivot_order = np.lexsort((meta["doc_id"].to_numpy(dtype=str), key, -proportion))
        pivot_budget = int(round(token_budget * (1.0 - pivot_random_share)))
        first = pivot_order[fill_budget(n_tokens[pivot_order], pivot_budget)]
        chosen = np.concatenate([first, _top_up(random_order, first, n_tokens, token_budget)])
    elif arm == "langmatch":
        if not reference_lang_mix:
            raise ValueError("the langmatch arm needs reference_lang_mix (language -> token share)")
        chosen = _lang_matched(meta, random_order, n_tokens, token_budget, reference_lang_mix)
    else:
        raise ValueError(f"unknown arm {arm!r}: use one of {ARMS}")
    return meta["doc_id"].to_numpy(dtype=object)[chosen].tolist()


def assign_shards(doc_ids: Sequence[str], n_shards: int, seed: int) -> np.ndarray:
    """Shard number (int32) per document: documents in seeded-hash order dealt round robin, so shards differ by
    at most one document, no shard is empty while there are enough documents, and the answer does not depend
    on the order of ``doc_ids``."""
    if n_shards <= 0:
        raise ValueError(f"n_shards must be positive, got {n_shards}")
    ids = np.asarray(list(doc_ids), dtype=str)
    order = np.lexsort((ids, seeded_hash(seed, ids, salt="shard")))
    shards = np.empty(len(ids), dtype=np.int32)
    shards[order] = np.arange(len(ids)) % n_shards
    return shards


def lang_mix(meta: pd.DataFrame, doc_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Language summary of a selection (all of ``meta`` when ``doc_ids`` is None): ``lang, n_docs, n_tokens,
    token_share``, largest share first; a missing language is reported as ``und``."""
    rows = meta if doc_ids is None else meta[meta["doc_id"].isin(set(doc_ids))]
    return mix_table(
        rows.assign(lang=rows["lang"].fillna("und"))
        .groupby("lang", as_index=False)
        .agg(n_docs=("doc_id", "size"), n_tokens=("n_tokens", "sum"))
    )


def mix_table(per_lang: pd.DataFrame) -> pd.DataFrame:
    """:func:`lang_mix` from per-language counts (``lang, n_docs, n_tokens``, one row per language)."""
    summary = per_lang[["lang", "n_docs", "n_tokens"]].copy()
    total = summary["n_tokens"].sum()
    summary["token_share"] = summary["n_tokens"] / total if total else 0.0
    return summary.sort_values(["token_share", "lang"], ascending=[False, True]).reset_index(drop=True)


def lang_quotas(budget: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Tokens per language for ``langmatch``: each language's share of ``budget`` under ``mix`` (language ->
    token share, normalised by the sum of the shares), rounded down; languages in sorted order."""
    total_share = float(sum(mix.values()))
    if total_share <= 0:
        raise ValueError("reference_lang_mix has no positive share")
    return {lang: int(budget * mix[lang] / total_share) for lang in sorted(mix)}


def _top_up(order: np.ndarray, taken: np.ndarray, n_tokens: np.ndarray, budget: int) -> np.ndarray:
    """Documents of ``order`` not in ``taken`` that fill what ``taken`` leaves of ``budget``."""
    rest = order[~np.isin(order, taken)]
    left = budget - int(n_tokens[taken].sum())
    return rest[fill_budget(n_tokens[rest], left)] if left > 0 else rest[:0]


def _lang_matched(
    meta: pd.DataFrame, random_order: np.ndarray, n_tokens: np.ndarray, budget: int, mix: Mapping[str, float]
) -> np.ndarray:
    quotas = lang_quotas(budget, mix)
    langs = meta["lang"].fillna("und").to_numpy(dtype=object)[random_order]
    parts = []
    for lang, quota in quotas.items():
        in_lang = random_order[langs == lang]
        parts.append(in_lang[fill_budget(n_tokens[in_lang], quota)])
    first = np.concatenate(parts) if parts else random_order[:0]
    return np.concatenate([first, _top_up(random_order, first, n_tokens, budget)])


def _check_meta(meta: pd.DataFrame) -> None:
    missing = {"doc_id", "n_tokens", "pivot_proportion", "lang"} - set(meta.columns)
    if missing:
        raise ValueError(f"selection metadata lacks columns {sorted(missing)}")
    if meta["doc_id"].duplicated().any():
        raise ValueError("selection metadata has duplicate doc_id values")
    if (meta["n_tokens"] < 0).any():
        raise ValueError("selection metadata has negative n_tokens")
