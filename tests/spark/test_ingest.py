"""The ingest job on a local Spark session: accounting, idempotency, failure, dedup."""

from __future__ import annotations

import json

import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.ingest import ingest, snapshot_name
from tests.faults import blocked_folder

pytestmark = pytest.mark.spark

BAD_LINES = [
    json.dumps({"id": "a", "text": "Hello world, this is a test.", "source": "t"}),
    json.dumps({"id": "b", "text": "Hello world, this is a test.", "source": "t"}),  # exact duplicate
    '{"id": "c", "text": broken',
    json.dumps({"id": "d"}),
    json.dumps({"id": "e", "text": 123}),
    json.dumps({"id": "f", "text": "   \n "}),
    json.dumps({"id": "g", "text": "x" * 5000}),
    json.dumps({"id": "h", "text": "Zweiter Text", "extra": {"k": 1}}),
]


def _write_input(path, lines, tail=b""):
    path.write_bytes(("\n".join(lines) + "\n").encode() + tail)
    return path


def _cfg(lake, inp, *extra):
    return load_config("smoke", [f"lake.uri={lake}", f"ingest.input={inp}", "ingest.max_text_bytes=4000", *extra])


def test_every_bad_record_accounted_and_rerun_is_a_noop(spark, tmp_path):
    inp = _write_input(tmp_path / "in.jsonl", BAD_LINES, b'{"id": "i", "text": "bad \xff utf8"}\n')
    lake = Lake(str(tmp_path / "lake"))
    s = ingest(_cfg(lake.uri, inp, "run.run_id=r1"), quiet=True)
    c = s["counts"]
    assert c["records"] == 9 == c["documents"] + c["duplicates"] + c["quarantined"]
    assert (c["documents"], c["duplicates"], c["quarantined"]) == (2, 1, 6)
    assert c["quarantine_reasons"] == {"malformed_json": 1, "missing_text": 1, "non_string_text": 1,
                                       "empty_text": 1, "text_too_large": 1, "invalid_utf8": 1}
    q = lake.read_arrow("quarantine").to_pylist()
    assert {r["reason"] for r in q} == set(c["quarantine_reasons"]) and all(r["run_id"] == "r1" for r in q)
    docs = lake.read_arrow("documents").to_pylist()
    assert sorted(d["record_id"] for d in docs) == ["a", "h"]
    assert json.loads(next(d for d in docs if d["record_id"] == "h")["metadata"]) == {"extra": {"k": 1}}
    versions = {t: lake.version(t) for t in ("documents", "quarantine", "runs")}
    again = ingest(_cfg(lake.uri, inp, "run.run_id=r1"), quiet=True)
    assert again["status"] == "already-committed"
    assert {t: lake.version(t) for t in versions} == versions
    # A new run over the same input: every document is a duplicate of one already in the lake.
    third = ingest(_cfg(lake.uri, inp, "run.run_id=r2"), quiet=True)
    assert third["counts"]["documents"] == 0 and third["counts"]["duplicates"] == 3
    assert lake.version("documents") == versions["documents"]


def test_failed_task_leaves_every_table_as_it_was(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    first = _write_input(tmp_path / "a.jsonl", [json.dumps({"text": "first document"})])
    ingest(_cfg(lake.uri, first, "run.run_id=ok"), quiet=True)
    before = {t: lake.version(t) for t in ("documents", "quarantine", "runs")}
    second = _write_input(tmp_path / "b.jsonl", BAD_LINES)
    cfg = _cfg(lake.uri, second, "run.run_id=crash")
    # the documents task fails creating the new snapshot's partition folder
    new_partition = tmp_path / "lake" / "documents" / f"snapshot={snapshot_name(cfg, 'crash')}"
    with blocked_folder(new_partition), pytest.raises(Exception, match=new_partition.name):
        ingest(cfg, quiet=True)
    assert {t: lake.version(t) for t in before} == before  # quarantine was staged but never committed
    # The same run id, re-run, completes from the same pinned inputs.
    done = ingest(_cfg(lake.uri, second, "run.run_id=crash"), quiet=True)
    assert done["counts"]["documents"] == 2 and lake.version("documents") == before["documents"] + 1
