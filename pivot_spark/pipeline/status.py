"""``pivot-spark status``: tables, versions, row counts and the last runs."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import latest_pivot_set
from pivot_spark.schemas import TABLES


def table_rows(lake: Lake, table: str) -> int:
    return lake.row_count(table)


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


def pivot_listing(lake: Lake, pivot_set: str | None = None, top: int = 50) -> tuple[str, list[dict[str, object]]]:
    """The top ``top`` pivots of ``pivot_set`` (default: the newest set) with their pieces, hub statistics and
    the languages they occur in (``token_stats``, share of occurrences, largest first). Driver-side reads."""
    import pyarrow.compute as pc

    label = pivot_set or latest_pivot_set(lake)
    if label is None:
        raise FileNotFoundError(f"no pivot set in {lake.uri}: run `pivot-spark pivots` first")
    piv = lake.read_arrow("pivots", partition_filters=[("pivot_set", "=", label)]).to_pandas()
    if piv.empty:
        raise ValueError(f"pivot set {label!r} is not in {lake.uri}")
    piv = piv.sort_values("rank").head(top)
    tok = str(piv["tokenizer"].iloc[0])
    ids = [int(t) for t in piv["token_id"]]
    stats = lake.read_arrow("token_stats", columns=["token_id", "lang", "count", "tokenizer"],
                            filter=pc.field("token_id").isin(ids) & (pc.field("tokenizer") == tok)).to_pandas()
    per = stats.groupby(["token_id", "lang"])["count"].sum()
    rows = []
    for r in piv.itertuples():
        langs = per.loc[int(r.token_id)] if int(r.token_id) in per.index.get_level_values(0) else per.iloc[:0]
        share = (langs / langs.sum()).sort_values(ascending=False) if len(langs) else langs
        rows.append({"rank": int(r.rank), "piece": str(r.piece), "token_id": int(r.token_id),
                     "score": float(r.score), "degree": int(r.degree), "n_langs": int(r.n_langs),
                     "occurrences": int(langs.sum()) if len(langs) else 0,
                     "languages": " ".join(f"{k}:{v:.2f}" for k, v in share.head(5).items())})
    return label, rows


def print_pivots(cfg: PivotConfig, *, pivot_set: str | None = None, top: int = 50, markdown: bool = False) -> None:
    label, rows = pivot_listing(Lake(cfg.lake.uri, cfg.lake.storage_options), pivot_set, top)
    cols = ["rank", "piece", "score", "degree", "n_langs", "occurrences", "languages"]
    if markdown:
        print(f"pivot set `{label}`, top {len(rows)}\n")
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            cells = [f"`{r[c]}`" if c == "piece" else (f"{r[c]:.1f}" if c == "score" else str(r[c])) for c in cols]
            print("| " + " | ".join(cells) + " |")
        return
    t = Table(title=f"pivot set {label}: top {len(rows)}")
    for c in cols:
        t.add_column(c, justify="left" if c in ("piece", "languages") else "right")
    for r in rows:
        t.add_row(*[f"{r[c]:.1f}" if c == "score" else str(r[c]) for c in cols])
    Console().print(t)
