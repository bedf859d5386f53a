"""``pivot-spark status``: tables, versions, row counts and the last runs."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.schemas import TABLES


def table_rows(lake: Lake, table: str) -> int:
    dt = lake.delta(table)
    if dt is None:
        return 0
    acts = dt.get_add_actions(flatten=True)
    col = acts.column("num_records") if "num_records" in acts.schema.names else None
    if col is not None and col.null_count == 0:
        return int(sum(col.to_pylist()))
    return dt.to_pyarrow_dataset().count_rows()


def print_status(cfg: PivotConfig, *, n_runs: int = 10) -> dict[str, dict[str, int | None]]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    con = Console()
    t = Table(title=f"lake {lake.uri}")
    for c in ("table", "version", "rows", "files", "partitions by"):
        t.add_column(c)
    out: dict[str, dict[str, int | None]] = {}
    for name, (_, parts) in TABLES.items():
        dt = lake.delta(name)
        if dt is None:
            t.add_row(name, "-", "-", "-", ", ".join(parts))
            continue
        rows = table_rows(lake, name)
        files = len(dt.file_uris())
        out[name] = {"version": dt.version(), "rows": rows}
        t.add_row(name, str(dt.version()), f"{rows:,}", str(files), ", ".join(parts))
    con.print(t)
    if lake.exists("runs"):
        runs = lake.read_arrow("runs").sort_by([("finished", "descending")]).slice(0, n_runs).to_pylist()
        r = Table(title="last runs")
        for c in ("finished", "job", "run_id", "status", "outputs"):
            r.add_column(c)
        for row in runs:
            r.add_row(str(row["finished"])[:19], row["job"], row["run_id"], row["status"],
                      ", ".join(f"{k}@v{v}" for k, v in json.loads(row["outputs"] or "{}").items()))
        con.print(r)
    return out
