"""The word-level cross-lingual translation score (CLWTD) as docs/evaluation.md section 1 defines it.

For an item and direction L1 -> L2 with correct source x*, target y* and the item's nine L1 distractors x_j:

    loss(y | x)  = mean over 5 shot draws of  -(1/N) sum_i log P(y_i | prompt(x), y_<i)   (N tokens of " " + y)
    P(y | x)     = exp(-loss(y | x))
    S            = P(y* | x*) - (1/9) sum_j P(y* | x_j)

Every candidate's summed log-likelihood per draw is kept (``ll``, 10 x 5 per record, in ``clwtd-items.jsonl``), so
any metric can be recomputed offline; :mod:`evaluation.metrics` derives the primary one (the rank of the true source
among the 10 candidates: acc@1, MRR), the log-likelihood ratio and S from it.

The prompt is ``Please translate words from {L1} to {L2}.\\n\\n`` + five ``{L1}: {w1}\\n{L2}: {w2}\\n\\n`` blocks
from other items + ``{L1}: {x}\\n{L2}:``; the scored continuation is ``" " + y``. One draw's five shots are
shared by x* and the nine x_j, so the distractor term differs from the correct one only in the source word.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.dataset import LANG_NAMES, Item
from evaluation.metrics import CHANCE, METRICS, record_metrics
from evaluation.model_io import Encoded, continuation_nll, encode_pair

log = logging.getLogger(__name__)

N_SHOTS = 5
N_DRAWS = 5


def parse_direction(d: str) -> tuple[str, str]:
    src, sep, tgt = d.partition("->")
    if not sep or src not in LANG_NAMES or tgt not in LANG_NAMES or src == tgt:
        raise ValueError(f"bad direction {d!r}: use e.g. en->fr with languages from {sorted(LANG_NAMES)}")
    return src, tgt


def build_prompt(src: str, tgt: str, shots: Sequence[tuple[str, str]], x: str) -> str:
    l1, l2 = LANG_NAMES[src], LANG_NAMES[tgt]
    blocks = "".join(f"{l1}: {a}\n{l2}: {b}\n\n" for a, b in shots)
    return f"Please translate words from {l1} to {l2}.\n\n{blocks}{l1}: {x}\n{l2}:"


def draw_shots(items: Sequence[Item], index: int, src: str, tgt: str, *, seed: int,
               n_shots: int = N_SHOTS, n_draws: int = N_DRAWS) -> list[list[int]]:
    """``n_draws`` independent draws of ``n_shots`` other items with both languages, seeded per item and
    direction. A shot may not reuse the item's source word, target word or a source-side distractor (the
    prompt would then contain the answer or a distractor's translation)."""
    item = items[index]
    banned_src = {item.words[src], *item.distractors.get(src, [])}
    eligible = [i for i, it in enumerate(items) if i != index and src in it.words and tgt in it.words
                and it.words[src] not in banned_src and it.words[tgt] != item.words[tgt]]
    if len(eligible) < n_shots:
        raise ValueError(f"only {len(eligible)} items can serve as shots for {item.id} {src}->{tgt}; "
                         f"need {n_shots}: the data set is too small for this direction")
    return [random.Random(f"{seed}|{src}->{tgt}|{item.id}|{d}").sample(eligible, n_shots) for d in range(n_draws)]


def score_from_losses(losses: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``losses``: (1 + n_distractors, n_draws) mean NLLs, row 0 the correct source. Averages over draws at
    the loss level, then exponentiates. Returns (S, P(y*|x*), P(y*|x_j) for each j)."""
    p = np.exp(-losses.mean(axis=1))
    return float(p[0] - p[1:].mean()), float(p[0]), p[1:]


@dataclass(frozen=True)
class ItemScore:
    item: str
    direction: str
    score: float
    p_correct: float
    p_distractors: tuple[float, ...]
    loss_correct: float
    n_target_tokens: int
    boundary_merges: int
    ll: tuple[tuple[float, ...], ...] = ()  # candidates x draws summed log-likelihoods, row 0 the true source
    copyable: bool = False  # source and target share a real piece or are cognates (evaluation.itemsets)

    def metrics(self) -> dict[str, float]:
        """acc1, rr, rank, llr and S from the raw log-likelihoods (:func:`evaluation.metrics.record_metrics`)."""
        return record_metrics(np.asarray(self.ll), self.n_target_tokens)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.item, "direction": self.direction, "S": self.score, "p_correct": self.p_correct,
                "p_distractors": list(self.p_distractors), "loss_correct": self.loss_correct,
                "n_target_tokens": self.n_target_tokens, "boundary_merges": self.boundary_merges,
                "copyable": self.copyable, **{k: v for k, v in self.metrics().items() if k != "S"},
                "ll": [list(r) for r in self.ll]}

    @classmethod
    def from_json(cls, rec: dict[str, Any]) -> ItemScore:
        return cls(rec["id"], rec["direction"], rec["S"], rec["p_correct"], tuple(rec["p_distractors"]),
                   rec["loss_correct"], rec["n_target_tokens"], rec["boundary_merges"],
                   tuple(tuple(r) for r in rec["ll"]), rec.get("copyable", False))


def direction_requests(tok: Any, items: Sequence[Item], src: str, tgt: str, *, seed: int,
                       max_items: int | None = None) -> tuple[list[int], list[Encoded]]:
    """All (prompt, " " + y*) requests of one direction: per item 10 sources x 5 draws, in that order.

    Prompts are tokenized in one batch call. The continuation's ids are found once per item (on its first
    prompt, :func:`encode_pair`) and appended to every prompt's ids: all prompts of a direction end with the
    same ``{L2}:``, so the prompt/continuation boundary tokenizes the same way in all of them."""
    idx = [i for i, it in enumerate(items) if src in it.words and tgt in it.words and src in it.distractors]
    idx = idx[:max_items]  # shots still come from the whole data set
    prompts: list[str] = []
    for i in idx:
        it = items[i]
        draws = draw_shots(items, i, src, tgt, seed=seed)
        for x in [it.words[src], *it.distractors[src]]:
            for shot_ids in draws:
                prompts.append(build_prompt(src, tgt, [(items[s].words[src], items[s].words[tgt]) for s in shot_ids], x))
    prompt_ids = tok(prompts)["input_ids"] if prompts else []
    per_item = len(prompts) // max(len(idx), 1)
    encoded: list[Encoded] = []
    for k, i in enumerate(idx):
        first = encode_pair(tok, prompts[k * per_item], " " + items[i].words[tgt])
        cont = tuple(first.ids[first.start:])
        merged = len(prompt_ids[k * per_item]) - first.start  # prompt tokens merged into the continuation: 0
        for j in range(k * per_item, (k + 1) * per_item):
            cut = len(prompt_ids[j]) - merged
            encoded.append(Encoded(tuple(prompt_ids[j][:cut]) + cont, cut, merged > 0))
    return idx, encoded


def score_direction(model: Any, tok: Any, items: Sequence[Item], src: str, tgt: str, *, seed: int,
                    batch_size: int, device: str, max_items: int | None = None) -> list[ItemScore]:
    """Scores of the (first ``max_items``) items of one direction."""
    from evaluation.itemsets import copyable

    idx, encoded = direction_requests(tok, items, src, tgt, seed=seed, max_items=max_items)
    if not idx:
        return []
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    nll = continuation_nll(model, encoded, batch_size=batch_size, device=device, pad_id=pad)
    per_item = len(encoded) // len(idx)
    n_src = per_item // N_DRAWS
    out = []
    for k, i in enumerate(idx):
        block = nll[k * per_item:(k + 1) * per_item].reshape(n_src, N_DRAWS)
        enc = encoded[k * per_item:(k + 1) * per_item]
        s, pc, pd = score_from_losses(block)
        n_tok = len(enc[0].ids) - enc[0].start
        ll = tuple(tuple(round(-float(v) * n_tok, 6) for v in row) for row in block)
        out.append(ItemScore(items[i].id, f"{src}->{tgt}", s, pc, tuple(float(v) for v in pd),
                             float(block[0].mean()), n_tok, sum(e.merged for e in enc), ll,
                             copyable(tok, items[i].words[src], items[i].words[tgt], src, tgt)))
    return out


# -- aggregation ---------------------------------------------------------------------------------------------------
def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean over items."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def overall_ci(table: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
               ) -> tuple[float, float]:
    """CI of the mean over directions of the per-direction means, resampling items (rows of an items x
    directions table with NaN where an item lacks a direction) jointly across directions."""
    if table.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        sample = table[rng.integers(0, table.shape[0], size=table.shape[0])]
        with np.errstate(all="ignore"):
            stats.append(np.nanmean(np.nanmean(sample, axis=0)))
    stats_arr = np.asarray(stats)
    stats_arr = stats_arr[~np.isnan(stats_arr)]
    return float(np.quantile(stats_arr, alpha / 2)), float(np.quantile(stats_arr, 1 - alpha / 2))


def _metric_table(scores: Sequence[ItemScore], metric: str) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """direction -> item -> value, and the items x directions table (NaN where an item lacks a direction)."""
    by_dir: dict[str, dict[str, float]] = {}
    for s in scores:
        by_dir.setdefault(s.direction, {})[s.item] = s.score if metric == "S" else s.metrics()[metric]
    ids = sorted({s.item for s in scores})
    dnames = sorted(by_dir)
    table = np.full((len(ids), len(dnames)), np.nan)
    row = {i: k for k, i in enumerate(ids)}
    for c, d in enumerate(dnames):
        for i, v in by_dir[d].items():
            table[row[i], c] = v
    return by_dir, table


def scope_summary(scores: Sequence[ItemScore], *, seed: int = 0) -> dict[str, Any]:
    """Every metric's mean over directions (of per-direction means) with its item-bootstrap CI, and the counts."""
    out: dict[str, Any] = {"n_items": len({s.item for s in scores}), "n_records": len(scores), "metrics": {}}
    for m in METRICS:
        by_dir, table = _metric_table(scores, m)
        mean = float(np.mean([np.mean(list(v.values())) for v in by_dir.values()])) if by_dir else math.nan
        out["metrics"][m] = {"mean": mean, "ci95": list(overall_ci(table, seed=seed)), "chance": CHANCE[m]}
    return out


def summarize(scores: Iterable[ItemScore], langs: Sequence[str], *, seed: int = 0,
              subset: set[str] | None = None, item_sets: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """Per-direction mean, bootstrap CI and n of S and of every metric; the language matrix of S and of acc@1
    (rows source, columns target); the mean over directions with a joint bootstrap CI; per-item values of every
    metric for paired comparisons; the copyable records; per scope (all, non-copyable, each item set and its
    non-copyable part) the metrics' means."""
    scores = [s for s in scores if subset is None or s.item in subset]
    by_dir, table = _metric_table(scores, "S")
    item_metrics = {m: _metric_table(scores, m)[0] for m in METRICS if m != "S"}
    directions: dict[str, Any] = {}
    for d, per in sorted(by_dir.items()):
        vals = np.array(list(per.values()))
        lo, hi = bootstrap_ci(vals, seed=seed)
        pc = [s.p_correct for s in scores if s.direction == d]
        metrics = {}
        for m, md in item_metrics.items():
            mv = np.array(list(md[d].values()))
            metrics[m] = {"mean": float(mv.mean()), "ci95": list(bootstrap_ci(mv, seed=seed))}
        directions[d] = {"n": len(vals), "mean": float(vals.mean()), "ci95": [lo, hi],
                         "median": float(np.median(vals)), "share_positive": float((vals > 0).mean()),
                         "p_correct_mean": float(np.mean(pc)), "metrics": metrics}
    matrix = [[directions.get(f"{a}->{b}", {}).get("mean") if a != b else None for b in langs] for a in langs]
    matrix_acc1 = [[directions[f"{a}->{b}"]["metrics"]["acc1"]["mean"] if f"{a}->{b}" in directions else None
                    for b in langs] for a in langs]
    dnames = sorted(by_dir)
    mean = float(np.mean([v["mean"] for v in directions.values()])) if directions else math.nan
    scopes = {"all": scores, "non_copyable": [s for s in scores if not s.copyable]}
    for name, ids in (item_sets or {}).items():
        scopes[name] = [s for s in scores if s.item in ids]
        scopes[f"{name}:non_copyable"] = [s for s in scopes[name] if not s.copyable]
    return {"directions": directions, "langs": list(langs), "matrix": matrix, "matrix_acc1": matrix_acc1,
            "mean": mean, "mean_ci95": list(overall_ci(table, seed=seed)), "n_items": len({s.item for s in scores}),
            "scopes": {k: scope_summary(v, seed=seed) for k, v in scopes.items()},
            "items": {d: by_dir[d] for d in dnames},
            "item_metrics": {m: {d: v[d] for d in dnames} for m, v in item_metrics.items()},
            "copyable": {d: sorted(s.item for s in scores if s.direction == d and s.copyable) for d in dnames}}


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, allow_nan=True) + "\n", encoding="utf-8")
    tmp.replace(path)
