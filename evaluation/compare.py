"""Side-by-side CLWTD results of several arms (models), each with several seeds, and their differences.

Decision (the paper is silent): the difference of an arm against the reference arm is computed on the items and
directions both have, for one metric (default acc@1, :mod:`evaluation.metrics`) and one scope (all records, or
an item set and/or the non-copyable records), per direction and for the mean over directions, with two intervals:

- **paired by seed** (the headline): the arm's and the reference's means over items and directions are taken per
  seed, seed k of one arm paired with seed k of the other (runs are given in the same seed order), and a Student-t
  interval with n_seeds - 1 degrees of freedom is put on the mean of the paired differences. Seeds are the units
  of replication of training; with one seed there is no interval.
- **items, conditional on the seeds**: each item's value is averaged over the arm's seeds, then items are
  resampled with replacement (the same items for both arms). This is the uncertainty from the choice of words
  for the models that were trained, not for a new training run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.metrics import CHANCE, LABELS, PRIMARY, seed_t_interval


@dataclass
class Arm:
    name: str
    runs: list[str]
    results: list[dict[str, Any]]


def load_run(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "clwtd.json"
    if not p.exists():
        raise FileNotFoundError(f"{p}: not a pivot-eval clwtd result (clwtd.json or its folder)")
    res = json.loads(p.read_text(encoding="utf-8"))
    if "items" not in res:
        raise ValueError(f"{p} has no per-item scores: re-run pivot-eval clwtd")
    return res


def load_arms(runs: Sequence[Sequence[str]], names: Sequence[str]) -> list[Arm]:
    """One :class:`Arm` per group of runs (clwtd.json files or their folders), named by ``names``."""
    if len(runs) != len(names):
        raise ValueError(f"{len(runs)} --runs groups but {len(names)} names")
    if len(runs) < 2:
        raise ValueError("compare needs at least two arms")
    arms = []
    for group, name in zip(runs, names, strict=True):
        paths = [r for r in group if r]
        arms.append(Arm(name, paths, [load_run(p) for p in paths]))
    return arms


def per_item(res: dict[str, Any], metric: str) -> dict[str, dict[str, float]]:
    """direction -> item -> value of ``metric`` in one clwtd.json (``items`` holds S)."""
    if metric == "S":
        return res["items"]
    if metric not in res.get("item_metrics", {}):
        raise ValueError(f"{res.get('model')}: clwtd.json has no per-item {metric!r}: re-run pivot-eval clwtd")
    return res["item_metrics"][metric]


def cube(arm: Arm, directions: Sequence[str], items: Sequence[str], metric: str = "S",
         drop: set[tuple[str, str]] | None = None) -> np.ndarray:
    """seeds x items x directions values of ``metric``, NaN where a run lacks an item or (direction, item) is in
    ``drop``."""
    out = np.full((len(arm.results), len(items), len(directions)), np.nan)
    row = {i: k for k, i in enumerate(items)}
    for s, res in enumerate(arm.results):
        vals = per_item(res, metric)
        for c, d in enumerate(directions):
            for i, v in vals.get(d, {}).items():
                if i in row and (d, i) not in (drop or set()):
                    out[s, row[i], c] = v
    return out


def _direction_means(x: np.ndarray) -> np.ndarray:
    """items x directions -> per-direction mean over the items present."""
    with np.errstate(all="ignore"):
        return np.nanmean(x, axis=0)


def item_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of (per-direction difference, mean-over-directions difference) of two seeds x items x
    directions cubes over the same items: seeds averaged per item, items resampled (paired)."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        ia, ib = np.nanmean(a, axis=0), np.nanmean(b, axis=0)
    per_dir, overall = [], []
    for _ in range(n_boot):
        rows = rng.integers(0, ia.shape[0], ia.shape[0])
        ma, mb = _direction_means(ia[rows]), _direction_means(ib[rows])
        per_dir.append(ma - mb)
        overall.append(np.nanmean(ma) - np.nanmean(mb))
    return np.asarray(per_dir), np.asarray(overall)


def seed_means(c: np.ndarray) -> np.ndarray:
    """seeds x directions means over items, and (last column) the mean over directions, of one arm's cube."""
    with np.errstate(all="ignore"):
        per = np.nanmean(c, axis=1)
        return np.concatenate([per, np.nanmean(per, axis=1, keepdims=True)], axis=1)


def _ci(x: np.ndarray) -> list[float]:
    x = x[~np.isnan(x)]
    return [float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))] if len(x) else [math.nan, math.nan]


def compare(arms: Sequence[Arm], *, reference: str | None = None, n_boot: int = 2000, seed: int = 0,
            metric: str = PRIMARY, items: set[str] | None = None, exclude_copyable: bool = False) -> dict[str, Any]:
    """Every arm against ``reference`` on ``metric``, over the items common to all runs (within ``items`` when
    given), without the copyable records with ``exclude_copyable``."""
    ref = next((a for a in arms if a.name == (reference or arms[-1].name)), None)
    if ref is None:
        raise ValueError(f"reference arm {reference!r} is not among {[a.name for a in arms]}")
    directions = sorted(set.intersection(*[set(r["items"]) for a in arms for r in a.results]))
    common = sorted(set.intersection(*[{i for d in directions for i in r["items"].get(d, {})}
                                       for a in arms for r in a.results]))
    if items is not None:
        common = [i for i in common if i in items]
    drop = {(d, i) for a in arms for r in a.results for d, ids in r.get("copyable", {}).items() for i in ids} \
        if exclude_copyable else set()
    cubes = {a.name: cube(a, directions, common, metric, drop) for a in arms}
    n_records = int(np.sum(~np.isnan(cubes[ref.name][0]))) if len(common) else 0
    summary: dict[str, Any] = {"directions": directions, "n_items": len(common), "n_records": n_records,
                               "reference": ref.name, "metric": metric, "metric_label": LABELS[metric],
                               "chance": CHANCE[metric], "exclude_copyable": exclude_copyable,
                               "arms": {}, "differences": {}, "n_boot": n_boot}
    for a in arms:
        sm = seed_means(cubes[a.name])  # seeds x (directions + overall)
        sd = np.std(sm, axis=0, ddof=1) if len(a.runs) > 1 else np.zeros(sm.shape[1])
        summary["arms"][a.name] = {
            "runs": a.runs,
            "per_direction": {d: {"mean": float(np.mean(sm[:, k])), "seed_sd": float(sd[k])}
                              for k, d in enumerate(directions)},
            "mean": float(np.mean(sm[:, -1])), "seed_sd": float(sd[-1]),
            "seed_means": [float(v) for v in sm[:, -1]],
        }
    for a in arms:
        if a is ref:
            continue
        ca, cb = cubes[a.name], cubes[ref.name]
        n = min(ca.shape[0], cb.shape[0])
        paired = seed_means(ca)[:n] - seed_means(cb)[:n]  # seed k with seed k
        item_dir, item_all = item_bootstrap(ca, cb, n_boot=n_boot, seed=seed)
        with np.errstate(all="ignore"):
            point = _direction_means(np.nanmean(ca, axis=0)) - _direction_means(np.nanmean(cb, axis=0))
        summary["differences"][f"{a.name}-{ref.name}"] = {
            "per_direction": {d: {"diff": float(point[k]), "ci95_items_given_seeds": _ci(item_dir[:, k]),
                                  "paired_by_seed": seed_t_interval(paired[:, k])}
                              for k, d in enumerate(directions)},
            "mean": {"diff": float(np.nanmean(point)), "ci95_items_given_seeds": _ci(item_all),
                     "paired_by_seed": seed_t_interval(paired[:, -1])},
        }
    return summary


def _fmt(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:+.4f}"


def markdown(summary: dict[str, Any]) -> str:
    names = list(summary["arms"])
    scope = "non-copyable records" if summary["exclude_copyable"] else "all records"
    lines = ["# CLWTD comparison", "",
             f"Metric **{summary['metric_label']}** (chance {summary['chance']:.4f}); {summary['n_items']} items "
             f"common to all runs, {scope}; reference arm `{summary['reference']}`. Arms: mean over items and "
             "directions, ± sd over seeds. Differences: mean; 95% t-interval over per-seed paired differences "
             f"(n seeds); 95% item-bootstrap interval conditional on the trained seeds ({summary['n_boot']} "
             "replicates).", "",
             "| direction | " + " | ".join(names) + " | " +
             " | ".join(f"{k} (paired by seed; items given seeds)" for k in summary["differences"]) + " |",
             "|---" * (1 + len(names) + len(summary["differences"])) + "|"]

    def fmt_arm(a: str, d: str | None) -> str:
        arm = summary["arms"][a]
        v = arm if d is None else arm["per_direction"][d]
        return f"{v['mean']:.4f} ± {v['seed_sd']:.4f}"

    def fmt_diff(k: str, d: str | None) -> str:
        v = summary["differences"][k]["mean"] if d is None else summary["differences"][k]["per_direction"][d]
        t, b = v["paired_by_seed"], v["ci95_items_given_seeds"]
        return (f"{_fmt(v['diff'])} [{_fmt(t['ci95'][0])}, {_fmt(t['ci95'][1])}] (n={t['n_seeds']}); "
                f"[{_fmt(b[0])}, {_fmt(b[1])}]")

    for d in [*summary["directions"], None]:
        label = d if d else "**mean over directions**"
        lines.append(f"| {label} | " + " | ".join(fmt_arm(a, d) for a in names) + " | " +
                     " | ".join(fmt_diff(k, d) for k in summary["differences"]) + " |")
    lines += ["", "Runs:", *[f"- `{a}`: {', '.join(summary['arms'][a]['runs'])} (seed means: "
                            f"{', '.join(f'{m:.4f}' for m in summary['arms'][a]['seed_means'])})" for a in names],
              "", "See docs/evaluation.md section 5.", ""]
    return "\n".join(lines)
