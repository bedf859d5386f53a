"""The run catalog: what earlier runs made, for the jobs that build on it.

Later jobs find their inputs through the ``runs`` table: annotate, cooccur and the jobs after it work with the
newest tokenizer, score and select with the newest pivot set, and cooccur skips the (snapshot, window) pairs
already counted for its tokenizer. A run records these facts in typed columns of its ``runs`` row
(:data:`pivot_spark.schemas.RUNS`: ``tokenizer``, ``pivot_set``, ``counted``), set by the job through
:attr:`RunContext.catalog <pivot_spark.pipeline.runner.RunContext.catalog>` as a :class:`CatalogEntry` and written
by the runner with the row. The ``counts`` JSON of the row stays the human-readable summary.

Lakes from before the typed columns: their ``runs`` table gains the columns (schema merge) with the first row
written by this version, and their older rows read as null there. Those rows are not rewritten; for them
:func:`entry_of` reads the same facts from the ``counts`` JSON the jobs wrote then. A row is such an older row
when it has neither ``tokenizer`` nor ``pivot_set``: every run whose facts the catalog reads sets ``tokenizer``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake

TOKENIZER_JOB = "train-tokenizer"
COOCCUR_JOB = "cooccur"
PIVOTS_JOB = "pivots"


@dataclass(frozen=True)
class CatalogEntry:
    """What one run made or worked with: the typed catalog columns of its ``runs`` row."""

    tokenizer: str | None = None  # content hash of the SentencePiece model
    pivot_set: str | None = None
    counted: tuple[tuple[str, int], ...] | None = None  # cooccur: (snapshot, window) pairs counted by the run

    def columns(self) -> dict[str, Any]:
        """The entry as values of the ``runs`` columns."""
        return {"tokenizer": self.tokenizer, "pivot_set": self.pivot_set,
                "counted": None if self.counted is None else [{"snapshot": s, "window": w} for s, w in self.counted]}


def ok_runs(lake: Lake, job: str) -> list[dict[str, Any]]:
    """The successful runs of ``job`` as ``runs`` rows, oldest first."""
    if not lake.exists("runs"):
        return []
    t = lake.read_arrow("runs", filter=(pc.field("job") == job) & (pc.field("status") == "ok"))
    return sorted(t.to_pylist(), key=lambda r: r["finished"])


def entry_of(row: Mapping[str, Any]) -> CatalogEntry:
    """The catalog entry of a ``runs`` row: its typed columns, or, for a row written before they existed, the
    same facts from its ``counts`` JSON."""
    if row.get("tokenizer") is None and row.get("pivot_set") is None:
        return _entry_from_counts(row.get("counts"))
    counted = row.get("counted")
    return CatalogEntry(tokenizer=row.get("tokenizer"), pivot_set=row.get("pivot_set"),
                        counted=None if counted is None else tuple((c["snapshot"], c["window"]) for c in counted))


def _entry_from_counts(counts: str | None) -> CatalogEntry:
    """What the older jobs put in their ``counts`` summary: ``tokenizer``, ``pivot_set`` and (cooccur)
    ``counted`` as ``{snapshot: [window, ...]}``."""
    c = json.loads(counts or "{}")
    counted = c.get("counted")
    return CatalogEntry(
        tokenizer=c.get("tokenizer"), pivot_set=c.get("pivot_set"),
        counted=tuple((s, int(w)) for s, ws in counted.items() for w in ws) if isinstance(counted, dict) else None)


def latest_tokenizer(lake: Lake) -> str | None:
    """The tokenizer of the newest successful ``train-tokenizer`` run (None when there is none)."""
    runs = ok_runs(lake, TOKENIZER_JOB)
    return entry_of(runs[-1]).tokenizer if runs else None


def latest_pivot_set(lake: Lake) -> str | None:
    """The pivot set of the newest successful ``pivots`` run (None when there is none)."""
    runs = ok_runs(lake, PIVOTS_JOB)
    return entry_of(runs[-1]).pivot_set if runs else None


def counted(lake: Lake, tokenizer: str) -> set[tuple[str, int]]:
    """The (snapshot, window) pairs that successful ``cooccur`` runs have counted with ``tokenizer``."""
    done: set[tuple[str, int]] = set()
    for r in ok_runs(lake, COOCCUR_JOB):
        entry = entry_of(r)
        if entry.tokenizer == tokenizer:
            done |= set(entry.counted or ())
    return done


def current_tokenizer(lake: Lake, cfg: PivotConfig) -> str | None:
    """Hash of the tokenizer the lake works with: ``tokenizer.model_path`` if set (stored in the lake under its
    hash), else the newest trained one."""
    if cfg.tokenizer.model_path:
        return lake.store_tokenizer(cfg.tokenizer.model_path)
    return latest_tokenizer(lake)


def require_tokenizer(lake: Lake, cfg: PivotConfig,
                      todo: str = "`pivot-spark train-tokenizer` and `annotate` first") -> str:
    """:func:`current_tokenizer`, or FileNotFoundError saying what to run (``todo``) when there is none."""
    tok = current_tokenizer(lake, cfg)
    if tok is None:
        raise FileNotFoundError(f"no tokenizer in this lake: run {todo}")
    return tok


def require_pivot_set(lake: Lake, cfg: PivotConfig, then: str) -> str:
    """``score.pivot_set`` if set, else the newest pivot set; FileNotFoundError when there is none."""
    label = cfg.score.pivot_set or latest_pivot_set(lake)
    if label is None:
        raise FileNotFoundError(f"no pivot set in this lake: run `pivot-spark pivots` {then}")
    return label
