"""``pivot-spark status``: tables, versions, row counts and the last runs, as tables or as JSON (``--json``).

A lake path that does not exist or is a file is an error naming the path (an empty report would look like an
empty lake). Run ids are printed whole (folded where a column is narrow, never cut), and the newest run of each
selection is checked for arms dominated by one language (``report.max_lang_share``).
"""

from __future__ import annotations

import json
from typing import Any

from pyarrow import fs as pafs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pivot_spark.config import PivotConfig
from pivot_spark.io.fs import location, redact_uri
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import latest_pivot_set, ok_runs
from pivot_spark.pipeline.report import lang_warnings, print_warnings
from pivot_spark.schemas import TABLES


def require_lake(lake: Lake) -> None:
    """FileNotFoundError naming the path when there is no lake folder at ``lake.uri`` (a mistyped path, or a
    file)."""
    loc = location(lake.uri, lake.storage_options)
    kind = loc.fs.get_file_info(loc.root).type
    if kind == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no lake at {redact_uri(lake.uri)}: check --lake (or lake.uri); `pivot-spark "
                                "ingest` or `rebuild` makes a new lake")
    if kind != pafs.FileType.Directory:
        raise FileNotFoundError(f"{redact_uri(lake.uri)} is a file, not a lake: --lake (or lake.uri) must name "
                                "the lake's root folder")


def _json_field(text: str | None) -> Any:
    return json.loads(text) if text else {}


def lake_status(cfg: PivotConfig, *, n_runs: int = 10) -> dict[str, Any]:
    """The lake as data: every table of the contract (version, rows, files; null where it does not exist yet),
    the last ``n_runs`` runs, newest first, and warnings about the newest selections."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    require_lake(lake)
    tables: dict[str, dict[str, Any]] = {}
    for name, (_, parts) in TABLES.items():
        dt = lake.delta(name)
        tables[name] = {"version": None if dt is None else dt.version(),
                        "rows": None if dt is None else lake.row_count(name),
                        "files": None if dt is None else len(dt.file_uris()), "partitioned_by": list(parts)}
    runs: list[dict[str, Any]] = []
    if lake.exists("runs"):
        rows = lake.read_arrow("runs").sort_by([("finished", "descending")]).slice(0, n_runs).to_pylist()
        runs = [{"run_id": r["run_id"], "job": r["job"], "status": r["status"], "message": r["message"],
                 "started": r["started"].isoformat() if r["started"] else None,
                 "finished": r["finished"].isoformat() if r["finished"] else None,
                 "inputs": _json_field(r["inputs"]), "outputs": _json_field(r["outputs"]),
                 "counts": _json_field(r["counts"])} for r in rows]
    newest: dict[str, dict[str, Any]] = {}  # selection -> counts of its newest ok select run
    for r in ok_runs(lake, "select"):
        counts = _json_field(r["counts"])
        newest[str(counts.get("selection"))] = counts
    warnings = [w for counts in newest.values()
                for w in lang_warnings("select", counts, cfg.report.max_lang_share)]
    return {"lake": redact_uri(lake.uri), "tables": tables, "runs": runs, "warnings": warnings}


def print_status(cfg: PivotConfig, *, n_runs: int = 10, as_json: bool = False,
                 console: Console | None = None) -> dict[str, Any]:
    """:func:`lake_status` printed as JSON, or as tables on ``console`` (default: stdout)."""
    status = lake_status(cfg, n_runs=n_runs)
    if as_json:
        print(json.dumps(status, indent=2, ensure_ascii=False, default=str))
        return status
    con = console or Console()
    t = Table(title=f"lake {status['lake']}")
    for c in ("table", "version", "rows", "files", "partitions by"):
        t.add_column(c, overflow="fold")
    for name, info in status["tables"].items():
        parts = ", ".join(info["partitioned_by"])
        if info["version"] is None:
            t.add_row(name, "-", "-", "-", parts)
        else:
            t.add_row(name, str(info["version"]), f"{info['rows']:,}", str(info["files"]), parts)
    con.print(t)
    if status["runs"]:
        r = Table(title="last runs")
        r.add_column("finished (UTC)", overflow="fold")
        # whole, folded only when it must be; derived run ids start with their job's name, other ids name it
        r.add_column("run", overflow="fold", no_wrap=True)
        r.add_column("status", overflow="fold")
        r.add_column("outputs / error", overflow="fold")
        for run in status["runs"]:
            detail = (run["message"] or "") if run["status"] == "failed" else \
                ", ".join(f"{k}@v{v}" for k, v in run["outputs"].items())
            name = run["run_id"] if run["run_id"].startswith(f"{run['job']}-") else \
                f"{run['run_id']}\n({run['job']})"
            r.add_row((run["finished"] or "")[:16].replace("T", " "), Text(name), run["status"],
                      Text(detail.splitlines()[0] if detail else ""))
        con.print(r)
    elif not any(info["version"] is not None for info in status["tables"].values()):
        con.print(f"no tables in {status['lake']} yet: `pivot-spark ingest` or `rebuild` fills it")
    print_warnings(con, status["warnings"])
    return status


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
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    require_lake(lake)
    label, rows = pivot_listing(lake, pivot_set, top)
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
