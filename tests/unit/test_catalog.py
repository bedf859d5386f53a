"""The run catalog (typed columns of ``runs``) without Spark, on a lake whose ``runs`` table predates them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
from deltalake import write_deltalake

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import CatalogEntry, counted, latest_pivot_set, latest_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.schemas import RUNS

TYPED = ("tokenizer", "pivot_set", "counted")
OLD_RUNS = pa.schema([f for f in RUNS if f.name not in TYPED])
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _old_row(run_id: str, job: str, counts: dict, minutes: int) -> dict:
    return {"run_id": run_id, "job": job, "config": "{}", "inputs": "{}", "outputs": "{}",
            "counts": json.dumps(counts), "status": "ok", "message": None,
            "started": T0 + timedelta(minutes=minutes), "finished": T0 + timedelta(minutes=minutes)}


def _old_lake(tmp_path) -> Lake:
    """A lake as the jobs wrote it before the typed columns: the catalog facts only in ``counts``."""
    lake = Lake(str(tmp_path / "lake"))
    rows = [_old_row("t1", "train-tokenizer", {"tokenizer": "tok-a", "vocab_size": 8000}, 1),
            _old_row("c1", "cooccur", {"tokenizer": "tok-a", "counted": {"s1": [10, 50], "s2": [10]}}, 2),
            _old_row("c2", "cooccur", {"tokenizer": "tok-a", "counted": {}, "note": "nothing"}, 3),
            _old_row("p1", "pivots", {"pivot_set": "ps-old", "tokenizer": "tok-a"}, 4),
            _old_row("r1", "rebuild", {"cooccur": {"run_id": "c1", "status": "ok"}}, 5)]
    write_deltalake(lake.table_uri("runs"), pa.Table.from_pylist(rows, schema=OLD_RUNS))
    return lake


def test_old_rows_are_read_from_their_counts(tmp_path) -> None:
    lake = _old_lake(tmp_path)
    assert latest_tokenizer(lake) == "tok-a"
    assert latest_pivot_set(lake) == "ps-old"
    assert counted(lake, "tok-a") == {("s1", 10), ("s1", 50), ("s2", 10)}
    assert counted(lake, "tok-b") == set()


def test_runner_adds_the_typed_columns_to_an_old_runs_table(tmp_path) -> None:
    lake = _old_lake(tmp_path)
    cfg = load_config("smoke", [f"lake.uri={lake.uri}"])

    def job(entry: CatalogEntry):
        def body(ctx: RunContext) -> dict:
            ctx.catalog = entry
            return {"note": "catalog only"}

        return body

    run_job(cfg, "cooccur", job(CatalogEntry(tokenizer="tok-a", counted=(("s3", 10),))), quiet=True)
    run_job(cfg, "pivots", job(CatalogEntry(tokenizer="tok-a", pivot_set="ps-new")), quiet=True)
    runs = lake.read_arrow("runs")
    assert set(TYPED) <= set(runs.column_names) and runs.num_rows == 7
    new = {r["job"]: r for r in runs.to_pylist() if r["run_id"].startswith(("cooccur-", "pivots-"))}
    assert new["cooccur"]["counted"] == [{"snapshot": "s3", "window": 10}]
    assert new["pivots"]["pivot_set"] == "ps-new" and new["pivots"]["counted"] is None
    # old rows (null typed columns) and new rows together
    assert counted(lake, "tok-a") == {("s1", 10), ("s1", 50), ("s2", 10), ("s3", 10)}
    assert latest_pivot_set(lake) == "ps-new"
    assert latest_tokenizer(lake) == "tok-a"
