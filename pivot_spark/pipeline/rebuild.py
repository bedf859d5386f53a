"""``pivot-spark rebuild``: ingest -> (train-tokenizer) -> annotate -> cooccur -> pivots -> score -> select.

Each stage is an ordinary job with a run id derived from its pinned inputs, so the chain is incremental and
idempotent without bookkeeping of its own: with no new input every stage finds its run already committed and
nothing is written; with a new snapshot, ingest adds only the new documents, annotate and cooccur process only
those, and pivots, score and select recompute from the updated (additive) counts. A rebuild interrupted anywhere
and run again resumes at the interrupted stage, whose retry reads the inputs its first attempt pinned.
The tokenizer is trained once per lake (retraining would re-annotate everything); set tokenizer.model_path or run
train-tokenizer yourself to change it.

With ``--run-id X`` each stage runs as ``X.<stage>`` (``X.ingest``, ``X.annotate``, ...; the ingest snapshot is
``snap-X``), so every stage has a run of its own and a rebuild run again with ``X`` resumes or finds each stage
done; ``X`` itself names the rebuild's own ``runs`` row. The rebuild holds the lake's writer lease for its whole
chain (:mod:`pivot_spark.lake.lease`), so no other writer slips in between a stage's decisions and its commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake, app_id_for
from pivot_spark.names import check_name, check_names
from pivot_spark.pipeline.annotate import annotate, train_tokenizer
from pivot_spark.pipeline.catalog import current_tokenizer
from pivot_spark.pipeline.cooccur import cooccur
from pivot_spark.pipeline.ingest import ingest
from pivot_spark.pipeline.pivots import pivots
from pivot_spark.pipeline.report import headline, lang_warnings, print_config, print_warnings
from pivot_spark.pipeline.runner import error_message, job_lease
from pivot_spark.pipeline.score import score
from pivot_spark.pipeline.select import select
from pivot_spark.schemas import RUNS

Stage = tuple[str, Callable[[PivotConfig], dict[str, Any]]]
log = logging.getLogger(__name__)


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


def stage_config(cfg: PivotConfig, stage: str) -> PivotConfig:
    """The config a stage runs with: with a given run id ``X``, its run id is ``X.<stage>`` (and ingest's snapshot
    ``snap-X`` unless one is set); without one, ``cfg`` (each stage derives its own)."""
    given = cfg.run.run_id
    if given is None:
        return cfg
    run = {"run_id": f"{given}.{stage}"}
    if stage == "ingest" and not (cfg.ingest.snapshot or cfg.run.snapshot):
        run["snapshot"] = f"snap-{given}"
    return cfg.model_copy(update={"run": cfg.run.model_copy(update=run)})


def _tokenizer_if_missing(cfg: PivotConfig, lake: Lake) -> dict[str, Any]:
    tok = current_tokenizer(lake, cfg)
    if tok is not None:
        return {"status": "kept", "counts": {"tokenizer": tok}, "outputs": {}, "run_id": "-"}
    return train_tokenizer(cfg, quiet=True)


def rebuild(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    """Run the stages in order; a failing stage ends the rebuild, which is then recorded as ``failed`` (the stage
    records its own failed run) and the error re-raised."""
    check_names(cfg)
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    plan = stages(cfg, lake)
    for name, _ in plan:
        if cfg.run.run_id:
            check_name(f"stage run id of --run-id {cfg.run.run_id!r}", stage_config(cfg, name).run.run_id or "")
    con = Console(stderr=True)
    if not quiet:
        con.rule("pivot-spark rebuild")
        con.print(f"lake: {lake.uri}   preset: {cfg.preset}", highlight=False, markup=False)
        print_config(con, cfg)
    with job_lease(cfg, "rebuild", lake):
        return _run_stages(cfg, lake, plan, con, quiet=quiet)


def _run_stages(cfg: PivotConfig, lake: Lake, plan: list[Stage], con: Console, *, quiet: bool) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    started = datetime.now(UTC)
    t_all = time.perf_counter()
    for name, fn in plan:
        if not quiet:
            con.print(f"[bold cyan]rebuild[/] stage [bold]{name}[/] ...")
        t0 = time.perf_counter()
        try:
            res = fn(stage_config(cfg, name))
        except (Exception, KeyboardInterrupt) as e:
            results.append({"stage": name, "status": "failed", "run_id": "-", "counts": {}, "outputs": {},
                            "message": error_message(e), "seconds": round(time.perf_counter() - t0, 1)})
            summary = _summary(results, t_all)
            try:
                _record(cfg, lake, summary, started, f"stage {name}: {error_message(e)}")
            except Exception as rec_error:  # the stage's own error is the one to see
                log.warning("rebuild: could not record the failed rebuild in runs: %s", error_message(rec_error))
            if not quiet:
                print_rebuild(summary, max_lang_share=cfg.report.max_lang_share)
            raise
        results.append({**res, "stage": name, "seconds": round(time.perf_counter() - t0, 1)})
    summary = _summary(results, t_all)
    if summary["changed"]:
        _record(cfg, lake, summary, started)
    if not quiet:
        print_rebuild(summary, max_lang_share=cfg.report.max_lang_share)
    return summary


def _summary(results: list[dict[str, Any]], t_all: float) -> dict[str, Any]:
    return {"job": "rebuild", "stages": results, "changed": [r["stage"] for r in results if r["status"] == "ok"],
            "failed": [r["stage"] for r in results if r["status"] == "failed"],
            "seconds": round(time.perf_counter() - t_all, 1)}


def _record(cfg: PivotConfig, lake: Lake, summary: dict[str, Any], started: datetime,
            failure: str | None = None) -> None:
    """The rebuild's own ``runs`` row (its id from its stages' run ids): ``ok``, or ``failed`` with ``failure``
    in a transaction of the attempt's own, so a later rebuild with the same id still records."""
    results = summary["stages"]
    run_id = cfg.run.run_id or "rebuild-" + hashlib.sha256(
        "/".join(r["run_id"] if r["status"] != "failed" else r["stage"] for r in results).encode()).hexdigest()[:16]
    summary["run_id"] = run_id
    counts = {r["stage"]: {"run_id": r["run_id"], "status": r["status"], "seconds": r["seconds"]} for r in results}
    row = {"run_id": run_id, "job": "rebuild", "config": cfg.to_json(), "inputs": "{}",
           "outputs": json.dumps({k: v for r in results for k, v in r.get("outputs", {}).items()}),
           "counts": json.dumps(counts), "status": "failed" if failure else "ok", "message": failure,
           "started": started, "finished": datetime.now(UTC)}
    attempt = f"{run_id}/failed/{started.strftime('%Y%m%dT%H%M%S%fZ')}" if failure else run_id
    lake.write_arrow("runs", pa.Table.from_pylist([row], schema=RUNS), mode="append",
                     app_id=app_id_for("rebuild", "runs", attempt))


def print_rebuild(summary: dict[str, Any], *, max_lang_share: float) -> None:
    """One row per stage: its status, time and headline counts (drop reasons, languages, arms); then warnings
    about the selection's arms."""
    out = Console()
    title = "rebuild" + (f" · {summary['run_id']}" if "run_id" in summary else " · nothing new")
    t = Table(title=title + (" · failed" if summary["failed"] else ""))
    for c in ("stage", "status", "seconds", "what"):
        t.add_column(c, overflow="fold")
    warnings: list[str] = []
    for r in summary["stages"]:
        what = r["message"] if r["status"] == "failed" else headline(r["stage"], r.get("counts", {}))
        t.add_row(r["stage"], r["status"], str(r["seconds"]), Text(what))
        warnings += lang_warnings(r["stage"], r.get("counts", {}), max_lang_share)
    out.print(t)
    print_warnings(out, warnings)
    if not summary["changed"] and not summary["failed"]:
        out.print("No new input: every stage was already committed; nothing was written.")
