"""Names that become paths, partition values or predicate literals: run ids and labels.

A run id names the intent file ``{lake}/_runs/{run_id}.json`` and goes into application transaction ids; a
snapshot, selection or pivot set label becomes a partition folder (``snapshot=...``) or the value a Delta
predicate compares with. Each is checked once, where it enters (the config, the runner), against one safe
character set: 1 to 128 letters, digits, ``.``, ``_`` and ``-``, not starting with ``.`` and without ``..``. A
name that passes can neither leave the lake's folders nor change the meaning of a predicate.

Predicates are still built without splicing: :func:`sql_string` quotes a literal for delta-rs (SQL) predicates,
doubling quotes, so even a value that bypassed the check cannot end the literal early.
"""

from __future__ import annotations

import re
from typing import Any

MAX_NAME_CHARS = 128
_SAFE = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_NAME_CHARS}}}")
# Config keys whose values are such names (the run id and the labels).
NAME_KEYS = ("run.run_id", "run.snapshot", "ingest.snapshot", "pivots.pivot_set", "score.pivot_set",
             "select.selection")


class InvalidName(ValueError):
    """A run id or label outside the safe character set."""


def name_problem(value: str) -> str | None:
    """Why ``value`` is no safe name, or None when it is one."""
    if not _SAFE.fullmatch(value):
        if not value:
            return "it is empty"
        if len(value) > MAX_NAME_CHARS:
            return f"it has {len(value)} characters (at most {MAX_NAME_CHARS})"
        bad = sorted({c for c in value if not _SAFE.fullmatch(c)})
        return f"it holds {' '.join(repr(c) for c in bad)}"
    if value.startswith(".") or ".." in value:
        return "it starts with '.' or holds '..'"
    return None


def check_name(what: str, value: str) -> str:
    """``value`` if it is a safe name; otherwise :class:`InvalidName` naming ``what`` (e.g. ``--run-id``), the value
    and the rule."""
    problem = name_problem(value)
    if problem is not None:
        raise InvalidName(f"{what} {value!r} is not a valid name ({problem}): use 1 to {MAX_NAME_CHARS} letters, "
                         "digits, '.', '_' and '-', not starting with '.' and without '..'")
    return value


def check_names(cfg: Any) -> None:
    """Every run id and label of a :class:`pivot_spark.config.PivotConfig` (:data:`NAME_KEYS`) is a safe name, or
    :class:`InvalidName` naming the first key that is not."""
    for key in NAME_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None:
            check_name(key, value)


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal for a delta-rs predicate: in single quotes, each quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def equals_predicate(columns: dict[str, str]) -> str:
    """``col = 'value' AND ...`` for delta-rs, every value quoted with :func:`sql_string` and every column name
    checked (they are the project's own, plain identifiers)."""
    if not columns:
        raise ValueError("a predicate needs at least one column")
    parts = []
    for col, value in columns.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", col):
            raise ValueError(f"column name {col!r} in a predicate")
        parts.append(f"{col} = {sql_string(str(value))}")
    return " AND ".join(parts)
