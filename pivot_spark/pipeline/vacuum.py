"""``pivot-spark vacuum``: delete the files no version within the retention needs.

A table folder collects two kinds of files that no reader of the current version uses:

- files that a later version removed (overwrites, ``repair``), which older versions still read; and
- orphans: files that no version ever committed, left by jobs that died between writing their files and their
  commit (a killed or failed job commits nothing, by design). A plain Parquet read of the folder, which the
  project never does but other tools might, counts them as rows.

``vacuum`` runs delta-rs ``vacuum`` in its full mode on every table of the lake (or those given): it deletes
the files that are referenced by no version of the log and are older than the retention, and the files removed
by a version older than the retention. Files younger than the retention stay (the files a running job has
written but not yet committed are young), and so do all files of the versions given with ``keep`` (a
``train_set`` version that a training run reads). After a vacuum, versions older than the retention may no
longer be readable.

``--dry-run`` lists what would be deleted and changes nothing. A real vacuum holds the lake's writer lease and is
recorded in ``runs`` (job ``vacuum``, a run per invocation: orphans appear without a new table version).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.schemas import TABLES

DEFAULT_RETENTION_HOURS = 168  # Delta's default deleted-file retention: one week


def parse_keep(items: Sequence[str]) -> dict[str, list[int]]:
    """``TABLE=VERSION`` items as table -> versions; ValueError naming a malformed item."""
    out: dict[str, list[int]] = {}
    for item in items:
        table, _, version = item.partition("=")
        if table not in TABLES or not version.strip().isdigit():
            raise ValueError(f"--keep {item!r}: use TABLE=VERSION with one of the lake's tables "
                             f"({', '.join(TABLES)}) and a version number, e.g. --keep train_set=12")
        out.setdefault(table, []).append(int(version))
    return out


def vacuum_tables(lake: Lake, tables: Sequence[str], *, retention_hours: int, dry_run: bool,
                  keep: Mapping[str, Sequence[int]]) -> dict[str, list[str]]:
    """Per table, the files deleted (or, with ``dry_run``, those that would be), relative to the table folder."""
    out: dict[str, list[str]] = {}
    for table in tables:
        dt = lake.delta(table)
        if dt is None:
            continue
        files = dt.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False,
                          full=True, keep_versions=list(keep.get(table, [])) or None)
        out[table] = sorted(files)
    return out


def _chosen(tables: Sequence[str] | None) -> list[str]:
    unknown = sorted(set(tables or []) - set(TABLES))
    if unknown:
        raise ValueError(f"vacuum: no table {', '.join(unknown)} in a lake (tables: {', '.join(TABLES)})")
    return list(tables) if tables else list(TABLES)


def vacuum(cfg: PivotConfig, *, retention_hours: int = DEFAULT_RETENTION_HOURS, dry_run: bool = False,
           tables: Sequence[str] | None = None, keep: Mapping[str, Sequence[int]] | None = None,
           quiet: bool = False) -> dict[str, Any]:
    """Vacuum the lake's tables (see the module); returns the files per table and their count."""
    if retention_hours < 0:
        raise ValueError(f"--retention-hours {retention_hours}: the retention is a number of hours, 0 or more")
    chosen, keep = _chosen(tables), dict(keep or {})
    if dry_run:  # reads only: no lease, no run
        files = vacuum_tables(Lake(cfg.lake.uri, cfg.lake.storage_options), chosen,
                              retention_hours=retention_hours, dry_run=True, keep=keep)
        summary: dict[str, Any] = {"job": "vacuum", "status": "dry-run", "files": files,
                                   "counts": {t: len(f) for t, f in files.items()}}
    else:
        done: dict[str, list[str]] = {}

        def body(ctx: RunContext) -> dict[str, Any]:
            done.update(vacuum_tables(ctx.lake, chosen, retention_hours=retention_hours, dry_run=False, keep=keep))
            return {"deleted": {t: len(f) for t, f in done.items()}}

        # a run per invocation: new orphans come without a new table version, so the inputs cannot tell
        identity = {"retention_hours": retention_hours, "tables": chosen, "keep": keep,
                    "at": datetime.now(UTC).isoformat()}
        run = run_job(cfg, "vacuum", body, identity=identity, quiet=True)
        summary = {**run, "files": done, "counts": run["counts"].get("deleted", {})}
    if not quiet:
        print_vacuum(summary, retention_hours=retention_hours)
    return summary


def print_vacuum(summary: Mapping[str, Any], *, retention_hours: int) -> None:
    out = Console()
    dry = summary["status"] == "dry-run"
    t = Table(title=f"vacuum · retention {retention_hours} h" + (" · dry run: nothing deleted" if dry else ""))
    t.add_column("table")
    t.add_column("files " + ("to delete" if dry else "deleted"), justify="right")
    t.add_column("files", overflow="fold")
    for table, files in summary["files"].items():
        t.add_row(table, str(len(files)), "\n".join(files))
    out.print(t)
