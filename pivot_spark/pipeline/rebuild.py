"""``pivot-spark rebuild``: ingest -> (train-tokenizer) -> annotate -> cooccur -> pivots -> score -> select.

Each stage is an ordinary job with a run id derived from its pinned inputs, so the chain is incremental and
idempotent without bookkeeping of its own: with no new input every stage finds its run already committed and
nothing is written; with a new snapshot, ingest adds only the new documents, annotate and cooccur process only
those, and pivots, score and select recompute from the updated (additive) counts. A rebuild interrupted anywhere
and run again resumes at the interrupted stage, whose retry reads the inputs its first attempt pinned.
The tokenizer is trained once per lake (retraining would re-annotate everything); set tokenizer.model_path or run
train-tokenizer yourself to change it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake, app_id_for
from pivot_spark.pipeline.annotate import annotate, train_tokenizer
from pivot_spark.pipeline.catalog import current_tokenizer
from pivot_spark.pipeline.cooccur import cooccur
from pivot_spark.pipeline.ingest import ingest
from pivot_spark.pipeline.pivots import pivots
from pivot_spark.pipeline.score import score
from pivot_spark.pipeline.select import select
from pivot_spark.schemas import RUNS

Stage = tuple[str, Callable[[PivotConfig], dict[str, Any]]]


def stages(cfg: PivotConfig, lake: Lake) -> list[Stage]:
    out: list[Stage] = [("ingest", lambda c: ingest(c, quiet=True))]
    out.append(("train-tokenizer", lambda c: _tokenizer_if_missing(c, lake)))
    out += [
        ("annotate", lambda c: annotate(c, quiet=True)),
        ("cooccur", lambda c: cooccur(c, quiet=True)),
        ("pivots", lambda c: pivots(c, quiet=True)),
        ("score", lambda c: score(c, quiet=True)),
        ("select", lambda c: select(c, quiet=True)),
    ]
    return out


def _tokenizer_if_missing(cfg: PivotConfig, lake: Lake) -> dict[str, Any]:
    tok = current_tokenizer(lake, cfg)
    if tok is not None:
        return {"status": "kept", "counts": {"tokenizer": tok}, "outputs": {}, "run_id": "-"}
    return train_tokenizer(cfg, quiet=True)


def rebuild(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    con = Console(stderr=True)
    results: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    t_all = time.perf_counter()
    for name, fn in stages(cfg, lake):
        if not quiet:
            con.print(f"[bold cyan]rebuild[/] stage [bold]{name}[/] ...")
        t0 = time.perf_counter()
        res = fn(cfg)
        res = {**res, "stage": name, "seconds": round(time.perf_counter() - t0, 1)}
        results.append(res)
    changed = [r for r in results if r["status"] == "ok"]
    summary: dict[str, Any] = {"job": "rebuild", "stages": results, "changed": [r["stage"] for r in changed],
                               "seconds": round(time.perf_counter() - t_all, 1)}
    if changed:
        run_id = cfg.run.run_id or "rebuild-" + hashlib.sha256(
            "/".join(r["run_id"] for r in results).encode()).hexdigest()[:16]
        summary["run_id"] = run_id
        row = {"run_id": run_id, "job": "rebuild", "config": cfg.to_json(), "inputs": "{}",
               "outputs": json.dumps({k: v for r in results for k, v in r.get("outputs", {}).items()}),
               "counts": json.dumps({r["stage"]: {"run_id": r["run_id"], "status": r["status"],
                                                  "seconds": r["seconds"]} for r in results}),
               "status": "ok", "message": None, "started": started, "finished": datetime.now(UTC)}
        lake.write_arrow("runs", pa.Table.from_pylist([row], schema=RUNS), mode="append",
                         app_id=app_id_for("rebuild", "runs", run_id))
    if not quiet:
        print_rebuild(summary)
    return summary


def _headline(r: dict[str, Any]) -> str:
    c = r.get("counts", {})
    keys = {
        "ingest": ("records", "documents", "duplicates", "quarantined", "snapshot"),
        "train-tokenizer": ("tokenizer", "vocab_size"),
        "annotate": ("documents", "tokens", "documents_without_tokens"),
        "cooccur": ("counted", "cooccurrence_rows", "kept_pairs"),
        "pivots": ("pivot_set", "pivots", "top20"),
        "score": ("documents", "pivot_set"),
        "select": ("selection", "rows", "arms"),
    }[r["stage"]]
    parts = []
    for k in keys:
        if k in c:
            v = c[k]
            if k == "arms":
                v = {a: f"{x['documents']} docs/{x['tokens']} tok, pivot {x['mean_pivot_proportion']}"
                     for a, x in v.items()}
            parts.append(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v}")
    return "  ".join(parts)


def print_rebuild(summary: dict[str, Any]) -> None:
    t = Table(title="rebuild" + (f" · {summary['run_id']}" if "run_id" in summary else " · nothing new"))
    for c in ("stage", "status", "seconds", "what"):
        t.add_column(c, overflow="fold")
    for r in summary["stages"]:
        t.add_row(r["stage"], r["status"], str(r["seconds"]), _headline(r))
    Console().print(t)
    if not summary["changed"]:
        Console().print("No new input: every stage was already committed; nothing was written.")
