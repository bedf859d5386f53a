"""Side-by-side CLWTD results of several arms (models), each with several seeds, with paired bootstrap CIs.

Decision (the paper is silent): the difference of an arm against the reference arm is computed on the items
both have, per direction and for the mean over directions, with two bootstrap intervals:

- **items** (paired): each item's score is averaged over the arm's seeds, then items are resampled with
  replacement, the same items for both arms. This is the uncertainty from the choice of words only.
- **items + seeds** (the headline): each replicate resamples items (paired, shared by both arms) and, within
  each arm independently, its seeds with replacement. This also carries the training-seed variance, which with
  few seeds is what usually dominates; with one seed per arm it equals the items interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


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


def cube(arm: Arm, directions: Sequence[str], items: Sequence[str]) -> np.ndarray:
    """seeds x items x directions scores, NaN where a run lacks an item."""
    out = np.full((len(arm.results), len(items), len(directions)), np.nan)
    row = {i: k for k, i in enumerate(items)}
    for s, res in enumerate(arm.results):
        for c, d in enumerate(directions):
            for i, v in res["items"].get(d, {}).items():
                if i in row:
                    out[s, row[i], c] = v
    return out


def _direction_means(x: np.ndarray) -> np.ndarray:
    """items x directions -> per-direction mean over the items present."""
    with np.errstate(all="ignore"):
        return np.nanmean(x, axis=0)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int, seed: int, resample_seeds: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of (per-direction difference, mean-over-directions difference) of two
    seeds x items x directions cubes over the same items."""
    rng = np.random.default_rng(seed)
    n_items = a.shape[1]
    per_dir, overall = [], []
    for _ in range(n_boot):
        rows = rng.integers(0, n_items, n_items)
        sa = rng.integers(0, a.shape[0], a.shape[0]) if resample_seeds else np.arange(a.shape[0])
        sb = rng.integers(0, b.shape[0], b.shape[0]) if resample_seeds else np.arange(b.shape[0])
        with np.errstate(all="ignore"):
            ma = _direction_means(np.nanmean(a[sa][:, rows], axis=0))
            mb = _direction_means(np.nanmean(b[sb][:, rows], axis=0))
        per_dir.append(ma - mb)
        overall.append(np.nanmean(ma) - np.nanmean(mb))
    return np.asarray(per_dir), np.asarray(overall)


def _ci(x: np.ndarray) -> list[float]:
    x = x[~np.isnan(x)]
    return [float(np.quantile(x, 0.025)), float(np.quantile(x, 0.975))] if len(x) else [math.nan, math.nan]


def compare(arms: Sequence[Arm], *, reference: str | None = None, n_boot: int = 2000, seed: int = 0
            ) -> dict[str, Any]:
    ref = next((a for a in arms if a.name == (reference or arms[-1].name)), None)
    if ref is None:
        raise ValueError(f"reference arm {reference!r} is not among {[a.name for a in arms]}")
    directions = sorted(set.intersection(*[set(r["items"]) for a in arms for r in a.results]))
    items = sorted(set.intersection(*[{i for d in directions for i in r["items"].get(d, {})}
                                      for a in arms for r in a.results]))
    cubes = {a.name: cube(a, directions, items) for a in arms}
    summary: dict[str, Any] = {"directions": directions, "n_items": len(items), "reference": ref.name, "arms": {},
                               "differences": {}, "n_boot": n_boot}
    for a in arms:
        c = cubes[a.name]
        with np.errstate(all="ignore"):
            per_seed = np.nanmean(c, axis=1)  # seeds x directions
        summary["arms"][a.name] = {
            "runs": a.runs,
            "per_direction": {d: {"mean": float(np.mean(per_seed[:, k])),
                                  "seed_sd": float(np.std(per_seed[:, k], ddof=1)) if len(a.runs) > 1 else 0.0}
                              for k, d in enumerate(directions)},
            "mean": float(np.mean(np.nanmean(per_seed, axis=1))),
            "seed_means": [float(v) for v in np.nanmean(per_seed, axis=1)],
        }
    for a in arms:
        if a is ref:
            continue
        ca, cb = cubes[a.name], cubes[ref.name]
        with np.errstate(all="ignore"):
            point_dir = _direction_means(np.nanmean(ca, axis=0)) - _direction_means(np.nanmean(cb, axis=0))
        item_dir, item_all = paired_bootstrap(ca, cb, n_boot=n_boot, seed=seed, resample_seeds=False)
        full_dir, full_all = paired_bootstrap(ca, cb, n_boot=n_boot, seed=seed + 1, resample_seeds=True)
        summary["differences"][f"{a.name}-{ref.name}"] = {
            "per_direction": {d: {"diff": float(point_dir[k]), "ci95_items": _ci(item_dir[:, k]),
                                  "ci95_items_seeds": _ci(full_dir[:, k])} for k, d in enumerate(directions)},
            "mean": {"diff": float(np.nanmean(point_dir)), "ci95_items": _ci(item_all),
                     "ci95_items_seeds": _ci(full_all)},
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    names = list(summary["arms"])
    lines = ["# CLWTD comparison", "",
             f"{summary['n_items']} items common to all runs; reference arm `{summary['reference']}`; "
             f"{summary['n_boot']} bootstrap replicates. Scores: mean S over items (seed-averaged), ± sd over seeds.",
             "", "| direction | " + " | ".join(names) + " | " +
             " | ".join(f"{k} (95% CI items+seeds; items only)" for k in summary["differences"]) + " |",
             "|---" * (1 + len(names) + len(summary["differences"])) + "|"]

    def fmt_arm(a: str, d: str | None) -> str:
        arm = summary["arms"][a]
        if d is None:
            return f"{arm['mean']:.4f}"
        v = arm["per_direction"][d]
        return f"{v['mean']:.4f} ± {v['seed_sd']:.4f}"

    def fmt_diff(k: str, d: str | None) -> str:
        v = summary["differences"][k]["mean"] if d is None else summary["differences"][k]["per_direction"][d]
        a, b = v["ci95_items_seeds"], v["ci95_items"]
        return f"{v['diff']:+.4f} [{a[0]:+.4f}, {a[1]:+.4f}]; [{b[0]:+.4f}, {b[1]:+.4f}]"

    for d in [*summary["directions"], None]:
        label = d if d else "**mean over directions**"
        lines.append(f"| {label} | " + " | ".join(fmt_arm(a, d) for a in names) + " | " +
                     " | ".join(fmt_diff(k, d) for k in summary["differences"]) + " |")
    lines += ["", "Runs:", *[f"- `{a}`: {', '.join(summary['arms'][a]['runs'])} (seed means: "
                            f"{', '.join(f'{m:.4f}' for m in summary['arms'][a]['seed_means'])})" for a in names],
              "", "CI items+seeds: items resampled (paired) and each arm's seeds resampled; CI items: seeds "
              "averaged per item, items resampled (paired). See docs/evaluation.md.", ""]
    return "\n".join(lines)
