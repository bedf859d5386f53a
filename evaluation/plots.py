"""PNG figures of the evaluation (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap(matrix: Sequence[Sequence[float | None]], langs: Sequence[str], path: Path, title: str) -> None:
    """Rows: source language, columns: target language; cells annotated with the mean score."""
    plt = _plt()
    m = np.array([[math.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(langs), 0.8 + 0.7 * len(langs)))
    finite = m[np.isfinite(m)]
    lim = max(float(np.abs(finite).max()) if finite.size else 1.0, 1e-6)
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("target")
    ax.set_ylabel("source")
    for i in range(len(langs)):
        for j in range(len(langs)):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.3f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="CLWTD score S")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def lens_curves(curves: dict[str, dict[str, list[float]]], path: Path, title: str) -> None:
    """One panel per direction: mean top-1 probability and mass on source, target and pivot tokens by layer."""
    plt = _plt()
    dirs = sorted(curves)
    cols = min(4, max(1, len(dirs)))
    rows = math.ceil(len(dirs) / cols) if dirs else 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True)
    styles = {"top1_prob": "k-", "p_source": "b--", "p_target": "g-", "p_pivot": "r-."}
    for ax, d in zip(axes.flat, dirs, strict=False):
        c = curves[d]
        for k, style in styles.items():
            if k in c:
                ax.plot(range(1, len(c[k]) + 1), c[k], style, label=k)
        ax.set_title(f"{d} (n={int(c['n'][0])})", fontsize=8)
        ax.set_xlabel("layer", fontsize=8)
    for ax in list(axes.flat)[len(dirs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def behaviour_scatter(frame: Any, path: Path, title: str) -> None:
    """log(1 + co-occurrence frequency) against the behaviour label (jittered), one colour per direction."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    rng = np.random.default_rng(0)
    kept = frame[frame["label"] != "excluded"]
    for d, g in kept.groupby("direction"):
        y = (g["label"] == "cooccurrence").to_numpy(dtype=float) + rng.uniform(-0.15, 0.15, len(g))
        ax.scatter(np.log1p(g["freq"].to_numpy(dtype=float)), y, s=8, alpha=0.6, label=str(d))
    ax.set_yticks([0, 1], ["semantic pivot", "co-occurrence"])
    ax.set_xlabel("log(1 + pair co-occurrence count)")
    ax.set_title(title, fontsize=9)
    if len(kept):
        ax.legend(fontsize=6, ncol=3, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
