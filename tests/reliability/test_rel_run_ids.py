"""A run id names one input: per-stage run ids under a rebuild's, and a reused run id with other input refused."""

from __future__ import annotations

import json

import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.rebuild import stage_config, stages
from pivot_spark.pipeline.runner import RunIdReused, read_intent, run_job
from tests.support.reliability import pivot_rows, runs_row


def _cfg(lake, *extra):
    return load_config("smoke", [f"lake.uri={lake}", *extra])


def _table_job(lake: Lake, cfg, tag: str, identity):
    """A job that pins ``pivots`` and commits nothing but its ``runs`` row (no Spark)."""

    def body(ctx):
        ctx.pin("pivots")
        return {"tag": tag}

    return run_job(cfg, "demo", body, input_tables=("pivots",), identity=identity, quiet=True)


def test_a_given_run_id_with_other_input_is_refused_naming_it(lake_path):
    lake = Lake(str(lake_path))
    cfg = _cfg(lake.uri, "run.run_id=nightly")
    first = _table_job(lake, cfg, "a", {"files": [["a.jsonl", 10, 1]]})
    assert first["status"] == "ok"
    again = _table_job(lake, cfg, "a", {"files": [["a.jsonl", 10, 1]]})
    assert again["status"] == "already-committed"
    with pytest.raises(RunIdReused, match="run id 'nightly' was used by an earlier demo run with other input"):
        _table_job(lake, cfg, "b", {"files": [["b.jsonl", 20, 2]]})
    intent = read_intent(lake, "nightly")
    assert intent is not None and intent["identity"] == {"files": [["a.jsonl", 10, 1]]}  # the first input stays


def test_a_finished_run_id_over_newer_table_versions_is_refused(lake_path):
    lake = Lake(str(lake_path))
    cfg = _cfg(lake.uri, "run.run_id=pinned")
    lake.write_arrow("runs", runs_row("setup"), mode="append", app_id="setup")  # makes the lake
    _table_job(lake, cfg, "a", None)
    lake.write_arrow("pivots", pivot_rows("p"), mode="append", app_id="new-pivots")  # the input moved on
    with pytest.raises(RunIdReused, match=r"other table versions \(pivots vNone, now v0\)"):
        _table_job(lake, cfg, "a", None)


def test_an_unfinished_run_retries_with_the_versions_it_pinned(lake_path):
    lake = Lake(str(lake_path))
    cfg = _cfg(lake.uri, "run.run_id=retry")

    def crash(ctx):
        ctx.pin("pivots")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_job(cfg, "demo", crash, input_tables=("pivots",), quiet=True)
    lake.write_arrow("pivots", pivot_rows("p"), mode="append", app_id="new-pivots")
    done = _table_job(lake, cfg, "a", None)  # same identity, unfinished: the retry reads the first pins
    assert done["status"] == "ok"
    runs = [r for r in lake.read_arrow("runs").to_pylist() if r["status"] == "ok"]
    assert json.loads(runs[0]["inputs"]) == {"pivots": None}


def test_rebuild_stages_run_under_their_own_run_ids(tmp_path):
    cfg = _cfg(tmp_path / "lake", "run.run_id=nightly-7")
    lake = Lake(cfg.lake.uri)
    ids = {name: stage_config(cfg, name).run.run_id for name, _ in stages(cfg, lake)}
    assert ids == {s: f"nightly-7.{s}" for s in ("ingest", "train-tokenizer", "annotate", "cooccur", "pivots",
                                                   "score", "select")}
    assert stage_config(cfg, "ingest").run.snapshot == "snap-nightly-7"
    assert stage_config(cfg, "annotate").run.snapshot is None
    derived = _cfg(tmp_path / "lake")
    assert stage_config(derived, "ingest") is derived  # no given id: each stage derives its own
    with_snapshot = _cfg(tmp_path / "lake", "run.run_id=n", "ingest.snapshot=may")
    assert stage_config(with_snapshot, "ingest").run.snapshot is None  # ingest.snapshot stands
