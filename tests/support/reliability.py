"""Helpers of the reliability tests (tests/reliability): the programs run as an operator runs them (a process
each), rows for small lakes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[2]


def program(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600,
            cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m <module> args...`` as a process of its own (the programs' console scripts run the same
    ``main``), from the repository root; output captured."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, **(env or {})})


def pivot_spark(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return program("pivot_spark.cli", *args, **kw)


def document_rows(texts: list[str], *, run_id: str, snapshot: str, source: str = "t") -> pa.Table:
    """``documents`` rows for ``texts`` as ingest makes them (ids and hashes from the text)."""
    from pivot_spark.schemas import DOCUMENTS
    from pivot_spark.steps.normalize import content_hash, doc_id_of

    rows = [{"doc_id": doc_id_of(source, content_hash(t)), "record_id": str(i), "source": source,
             "uri": f"mem://{run_id}#{i}", "text": t, "n_bytes": len(t.encode()), "content_hash": content_hash(t),
             "lang_hint": None, "align_group": None, "metadata": None, "run_id": run_id, "snapshot": snapshot}
            for i, t in enumerate(texts)]
    return pa.Table.from_pylist(rows, schema=DOCUMENTS)


def runs_row(run_id: str, job: str = "demo") -> pa.Table:
    from pivot_spark.schemas import RUNS

    now = dt.datetime.now(dt.UTC)
    return pa.Table.from_pylist([{"run_id": run_id, "job": job, "config": "{}", "inputs": "{}", "outputs": "{}",
                                  "counts": "{}", "status": "ok", "message": None, "started": now,
                                  "finished": now}], schema=RUNS)


def pivot_rows(label: str, n: int = 2) -> pa.Table:
    """``n`` rows of pivot set ``label``."""
    from pivot_spark.schemas import PIVOTS

    return pa.Table.from_pylist([{"pivot_set": label, "token_id": i, "piece": f"p{i}", "score": 1.0, "degree": 1,
                                  "n_langs": 2, "rank": i + 1, "tokenizer": "tok"} for i in range(n)],
                                schema=PIVOTS)
