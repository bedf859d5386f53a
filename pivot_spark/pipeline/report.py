"""What a run's summary says: readable counts, drop reasons, language mixes, and warnings about the selection.

The jobs put their summary counts in ``runs.counts`` (JSON); this module turns them into the lines that
``pivot-spark <job>``, ``rebuild`` and ``status`` print, so the three read the same way:

- every count of a job, nested counts (drop reasons, documents per language or source) as ``key=n`` pairs,
  largest first;
- each arm of a selection with its documents, tokens, pivot proportion and language mix;
- a warning for each arm in which one language holds more than ``report.max_lang_share`` of the tokens: such an
  arm trains a mostly monolingual model, whatever the arm's name says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape

from pivot_spark.config import PivotConfig

# what the rebuild table shows per stage (everything else is in `pivot-spark status --json` and the runs table)
HEADLINES: dict[str, tuple[str, ...]] = {
    "ingest": ("records", "documents", "duplicates", "quarantined", "quarantine_reasons", "skipped",
               "skipped_reasons", "snapshot"),
    "train-tokenizer": ("tokenizer", "vocab_size"),
    "annotate": ("documents", "tokens", "documents_without_tokens", "docs_by_lang"),
    "cooccur": ("counted", "cooccurrence_rows", "kept_pairs"),
    "pair-cooccur": ("pairs", "rows", "pairs_with_cooccurrence"),
    "pivots": ("pivot_set", "pivots", "dropped", "top20"),
    "score": ("documents", "pivot_set"),
    "select": ("selection", "rows", "arms"),
}
TOP_ITEMS = 8  # nested counts listed before "+N more"


def print_config(console: Console, cfg: PivotConfig) -> None:
    """The effective config, as YAML (secrets redacted by the config's JSON serialization)."""
    console.print("[dim]effective config:[/]")
    console.print(cfg.to_yaml(), highlight=False, markup=False, end="")


def lang_shares(mix: Any) -> dict[str, float]:
    """An arm's language mix as ``{lang: token share}``, largest first: ``select`` stores it as text
    (``"ja:0.81 en:0.05"``) or as a mapping."""
    if isinstance(mix, Mapping):
        pairs = [(str(k), float(v)) for k, v in mix.items()]
    else:
        pairs = [(k, float(v)) for k, _, v in (p.rpartition(":") for p in str(mix or "").split()) if k]
    return dict(sorted(pairs, key=lambda kv: -kv[1]))


def arm_line(arm: Mapping[str, Any]) -> str:
    mix = " ".join(f"{k} {v:.2f}" for k, v in lang_shares(arm.get("lang_mix")).items())
    parts = [f"{arm.get('documents', 0):,} docs", f"{arm.get('tokens', 0):,} tokens"]
    if "mean_pivot_proportion" in arm:
        parts.append(f"pivot proportion {arm['mean_pivot_proportion']}")
    return ", ".join(parts) + (f"; languages {mix}" if mix else "")


def lang_warnings(job: str, counts: Mapping[str, Any], max_share: float) -> list[str]:
    """One line per arm of a ``select`` summary whose largest language holds more than ``max_share`` of its
    tokens."""
    if job != "select":
        return []
    out = []
    for name, arm in (counts.get("arms") or {}).items():
        shares = lang_shares(arm.get("lang_mix"))
        if shares:
            lang, share = next(iter(shares.items()))
            if share > max_share:
                out.append(f"arm {name} of selection {counts.get('selection', '?')}: {share:.0%} of its tokens "
                           f"are {lang} (more than report.max_lang_share={max_share:g})")
    return out


def format_value(value: Any) -> str:
    """A count as text: numbers with separators; mappings of numbers as ``key=n`` pairs, largest first."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
            items = sorted(value.items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{k}={format_value(v)}" for k, v in items[:TOP_ITEMS])
            return text + (f", +{len(items) - TOP_ITEMS} more" if len(items) > TOP_ITEMS else "")
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def count_rows(counts: Mapping[str, Any], keys: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(what, value) rows of a summary, the ``arms`` of a selection one row each; ``keys``: only these, in this
    order."""
    rows = []
    for k in keys if keys is not None else tuple(counts):
        if k not in counts:
            continue
        if k == "arms" and isinstance(counts[k], Mapping):
            rows += [(f"arm {a}", arm_line(r)) for a, r in counts[k].items()]
        else:
            rows.append((k, format_value(counts[k])))
    return rows


def headline(stage: str, counts: Mapping[str, Any]) -> str:
    """One stage of a rebuild in a few lines."""
    keys = HEADLINES.get(stage)
    return "\n".join(f"{k}: {v}" for k, v in count_rows(counts, keys))


def print_warnings(console: Console, warnings: list[str]) -> None:
    for w in warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
