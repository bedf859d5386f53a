"""Per-record metrics of the translation task from raw log-likelihoods, and the intervals that compare arms.

A record is one item in one direction: the summed log-likelihood ``ll[c, d]`` of the target continuation
``" " + y*`` after the prompt of candidate source ``c`` (row 0 the true source x*, rows 1..9 the distractors x_j)
in shot draw ``d``, over ``n`` continuation tokens. Every candidate is scored on the same target tokens, so the
candidates are compared on equal terms; the per-token score of a candidate is ``s_c = mean_d ll[c, d] / n``
(minus the loss averaged over draws, as the paper averages at the loss level).

- **rank** of the true source among the 10 candidates by ``s_c`` (1 best). Ties are broken at random, so a
  record's ``acc1`` and ``rr`` are their expectations under a random tie-break: ``acc1 = 1/(1+t)`` when no
  distractor scores higher and ``t`` tie, else 0; ``rr`` the mean of ``1/(1+g+k)``, k = 0..t, with ``g``
  distractors higher. Chance (exchangeable candidates): ``acc1`` 0.1, ``rr`` (1/10) sum 1/r = 0.2929.
  **acc@1** (mean ``acc1``) is the primary metric, **MRR** (mean ``rr``) its finer companion.
- **llr** ``= s_0 - mean_j s_j``: the mean per-token log-likelihood ratio of the true source over the
  distractors (nats per token; 0 at chance in expectation). Secondary: scale-free, unlike S.
- **S** ``= exp(s_0) - mean_j exp(s_j)``: the paper's score (docs/evaluation.md section 1), reported as the paper
  defines it; it weights a record by its absolute probability.

Intervals over arms (``seed_t_interval``): seeds are the units of replication of training, so a difference of
two arms is judged on its per-seed paired differences (seed k of one arm with seed k of the other, which share
the initialisation seed): a Student-t interval with ``n_seeds - 1`` degrees of freedom. The items-only bootstrap of
:mod:`evaluation.compare` is conditional on the seeds that were trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

METRICS = ("acc1", "rr", "llr", "S")
PRIMARY = "acc1"
CHANCE = {"acc1": 0.1, "rr": float(np.mean(1.0 / np.arange(1, 11))), "llr": 0.0, "S": 0.0}
LABELS = {"acc1": "acc@1", "rr": "MRR", "llr": "log-likelihood ratio (nats/token)", "S": "S (paper)"}


def candidate_scores(ll: np.ndarray, n_tokens: int) -> np.ndarray:
    """Per-token score of each candidate: ``ll`` (candidates x draws, summed log-likelihoods) averaged over draws,
    divided by the continuation's token count."""
    ll = np.asarray(ll, dtype=float)
    if ll.ndim != 2 or ll.shape[0] < 2:
        raise ValueError(f"need candidates x draws log-likelihoods with at least two candidates, got {ll.shape}")
    if n_tokens < 1:
        raise ValueError("the continuation has no tokens")
    return ll.mean(axis=1) / n_tokens


def record_metrics(ll: np.ndarray, n_tokens: int) -> dict[str, float]:
    """``acc1``, ``rr``, ``rank`` (mid-rank on ties), ``llr`` and ``S`` of one record (row 0 the true source)."""
    s = candidate_scores(ll, n_tokens)
    true, others = s[0], s[1:]
    greater = int((others > true).sum())
    ties = int((others == true).sum())
    acc1 = 1.0 / (1 + ties) if greater == 0 else 0.0
    rr = float(np.mean([1.0 / (1 + greater + k) for k in range(ties + 1)]))
    p = np.exp(s)
    return {"acc1": acc1, "rr": rr, "rank": 1 + greater + ties / 2, "llr": float(true - others.mean()),
            "S": float(p[0] - p[1:].mean())}


def t_quantile(q: float, df: int) -> float:
    """Student-t quantile (scipy when present; it ships with scikit-learn)."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def seed_t_interval(diffs: Sequence[float], *, alpha: float = 0.05) -> dict[str, Any]:
    """Mean of per-seed paired differences with its Student-t interval (``n - 1`` degrees of freedom). With one
    seed there is no interval (NaN): one training run says nothing about the seed-to-seed spread."""
    d = np.asarray([x for x in diffs if not math.isnan(x)], dtype=float)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        return {"diff": mean, "n_seeds": n, "sd": math.nan, "ci95": [math.nan, math.nan]}
    sd = float(d.std(ddof=1))
    half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
    return {"diff": mean, "n_seeds": n, "sd": sd, "ci95": [mean - half, mean + half]}
