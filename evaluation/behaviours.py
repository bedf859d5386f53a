"""Semantic pivot vs co-occurrence behaviour, and how well co-occurrence frequency predicts it (docs/evaluation.md
section 4).

An item (in one direction) shows **semantic pivot behaviour** when the most confident top-1 token over all
layers is neither the final layer's top-1 token nor one of the source word's tokens: some intermediate token
dominates a middle layer. Otherwise it shows **co-occurrence behaviour**. Records are labelled only where the label
can mean something: the model has at least ``min_layers`` layers (a 2-layer model has no middle to speak of), the
model solves the record (its true source ranks first among the 10 candidates in CLWTD: the paper explains how a
translation is reached, not a failure), and source and target share no real token (the copy would look like
either; the bare word-start piece ``▁`` of CJK words is not a real shared token). The predictor is ``log(1 + f)``
with ``f`` the pair's co-occurrence count in the corpus (``pair_cooccurrence``, one window, summed over snapshots)
and, where the model's training rows are given, the number of the model's own training documents that contain
both words; the AUC of each for the co-occurrence label is reported per direction and averaged over directions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluation.dataset import Item


def pair_id(item_id: str, lang_a: str, lang_b: str) -> str:
    """One id per item and unordered language pair (co-occurrence is symmetric): ``water.n|en|fr``."""
    a, b = sorted((lang_a, lang_b))
    return f"{item_id}|{a}|{b}"


def pair_records(items: Iterable[Item]) -> list[dict[str, str]]:
    """The ``--pairs`` file of ``pivot-spark pair-cooccur``: every item's unordered language pairs."""
    out = []
    for it in items:
        langs = sorted(it.words)
        for i, a in enumerate(langs):
            for b in langs[i + 1:]:
                out.append({"pair_id": pair_id(it.id, a, b), "lang_a": a, "word_a": it.words[a], "lang_b": b,
                            "word_b": it.words[b]})
    return out


def label(record: dict[str, Any], solved: set[tuple[str, str]] | None = None) -> str:
    """'excluded' (shared real token), 'unsolved' (not ranked first in CLWTD, when ``solved`` is given), 'pivot'
    or 'cooccurrence' for one logit-lens record."""
    src, tgt = set(record["source_ids"]), set(record["target_ids"])
    if src & tgt:
        return "excluded"
    if solved is not None and (record["id"], record["direction"]) not in solved:
        return "unsolved"
    layers = record["layers"]
    peak = max(layers, key=lambda r: (r["top1_prob"], -r["layer"]))  # earliest layer on ties
    final = layers[-1]["top1_id"]
    if peak["top1_id"] != final and peak["top1_id"] not in src:
        return "pivot"
    return "cooccurrence"


def label_records(records: Sequence[dict[str, Any]], solved: set[tuple[str, str]] | None = None) -> pd.DataFrame:
    rows = []
    for r in records:
        layers = r["layers"]
        peak = max(layers, key=lambda x: (x["top1_prob"], -x["layer"]))
        src, tgt = r["direction"].split("->")
        rows.append({"id": r["id"], "direction": r["direction"], "pair_id": pair_id(r["id"], src, tgt),
                     "label": label(r, solved), "peak_layer": peak["layer"], "peak_token": peak["top1_token"],
                     "peak_prob": peak["top1_prob"], "final_token": layers[-1]["top1_token"]})
    return pd.DataFrame(rows)


def auc_table(labelled: pd.DataFrame, column: str = "freq") -> dict[str, Any]:
    """AUC of log(1 + ``column``) for the co-occurrence label, per direction (NaN when one class is missing) and
    the mean over directions where it is defined; over the labelled records only."""
    from sklearn.metrics import roc_auc_score

    kept = labelled[labelled["label"].isin(["pivot", "cooccurrence"])]
    per: dict[str, Any] = {}
    for d, g in kept.groupby("direction"):
        y = (g["label"] == "cooccurrence").to_numpy()
        score = np.log1p(g[column].to_numpy(dtype=float))
        auc = float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else math.nan
        per[str(d)] = {"auc": auc, "n": int(len(g)), "n_cooccurrence": int(y.sum()),
                       "n_pivot": int(len(y) - y.sum()), "mean_log_freq_cooccurrence": _mean(score[y]),
                       "mean_log_freq_pivot": _mean(score[~y])}
    defined = [v["auc"] for v in per.values() if not math.isnan(v["auc"])]
    return {"directions": per, "mean_auc": float(np.mean(defined)) if defined else math.nan,
            "n_directions_with_auc": len(defined), "n_excluded_shared_token": int((labelled["label"] == "excluded").sum())}


def own_pair_doc_counts(token_lists: Iterable[np.ndarray], pairs: dict[str, tuple[Sequence[int], Sequence[int]]]
                        ) -> dict[str, int]:
    """pair id -> number of documents (token id arrays) that contain both words' token sequences."""
    docs = [np.asarray(t, dtype=np.int64) for t in token_lists]
    if not docs:
        return {p: 0 for p in pairs}
    flat = np.concatenate(docs)
    doc_of = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    memo: dict[tuple[int, ...], set[int]] = {}

    def containing(seq: Sequence[int]) -> set[int]:
        key = tuple(int(x) for x in seq)
        if key not in memo:
            at = np.flatnonzero(flat == key[0]) if key else np.array([], dtype=np.int64)
            for k in range(1, len(key)):
                at = at[at + k < len(flat)]
                at = at[(flat[at + k] == key[k]) & (doc_of[at + k] == doc_of[at])]
            memo[key] = set(doc_of[at].tolist())
        return memo[key]

    return {p: len(containing(a) & containing(b)) for p, (a, b) in pairs.items()}


def _mean(a: np.ndarray) -> float:
    return float(a.mean()) if len(a) else math.nan
