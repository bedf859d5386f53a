"""The ingest job on a local Spark session: accounting, idempotency, failure, dedup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.ingest import ingest, snapshot_name
from tests.faults import blocked_folder

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[2]

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
    data = [t for t in before if t != "runs"]
    assert {t: lake.version(t) for t in data} == {t: before[t] for t in data}  # quarantine staged, not committed
    # the failure is recorded in runs, in a commit of its own
    assert lake.version("runs") == (before["runs"] or 0) + 1
    (failed,) = [r for r in lake.read_arrow("runs").to_pylist() if r["status"] == "failed"]
    assert failed["run_id"] == "crash" and new_partition.name in failed["message"]
    # The same run id, re-run, completes from the same pinned inputs.
    done = ingest(_cfg(lake.uri, second, "run.run_id=crash"), quiet=True)
    assert done["counts"]["documents"] == 2 and lake.version("documents") == (before["documents"] or 0) + 1


FIX = REPO / "tests" / "fixtures" / "ingest"


def _counts(summary):
    c = summary["counts"]
    assert c["records"] == c["documents"] + c["duplicates"] + c["quarantined"] + c.get("skipped", 0)
    return c


def test_formats_presets_and_reconciliation(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    misc = _counts(ingest(_cfg(lake.uri, FIX / "misc", "run.run_id=misc"), quiet=True))
    assert (misc["records"], misc["documents"], misc["duplicates"], misc["quarantined"]) == (18, 11, 0, 7)
    assert misc["quarantine_reasons"] == {"corrupt_compression": 1, "malformed_json": 1, "missing_text": 1,
                                          "not_an_object": 1, "truncated_file": 2, "unreadable_parquet": 1}
    assert misc["skipped_files"]["unknown_format"] == {"count": 1, "example": str(FIX / "misc" / "README.rst"),
                                                       "by_extension": {".rst": 1}}
    assert misc["skipped_files"]["excluded"]["count"] == 1  # _SUCCESS
    assert misc["files_by_format"] == {"json": 1, "jsonl": 4, "parquet": 1, "text": 1}

    dolma = _counts(ingest(_cfg(lake.uri, FIX / "dolma", "ingest.format_preset=dolma", "run.run_id=dolma"),
                           quiet=True))
    assert (dolma["records"], dolma["documents"], dolma["duplicates"], dolma["quarantined"]) == (5, 3, 1, 1)
    assert dolma["documents_by_source"] == {"c4": 1, "common-crawl": 1, "pes2o": 1}

    fw = _counts(ingest(_cfg(lake.uri, FIX / "fineweb2", "ingest.format_preset=fineweb2",
                             "ingest.parquet_split_bytes=1", "run.run_id=fw"), quiet=True))
    # three texts (de, es, pt) are already in the lake, from Dolma and the JSON array: duplicates across sources
    assert (fw["files"], fw["units"], fw["records"], fw["documents"], fw["duplicates"], fw["quarantined"]) == \
        (1, 3, 7, 3, 3, 1)

    warc = _counts(ingest(_cfg(lake.uri, FIX / "warc", "run.run_id=warc"), quiet=True))
    assert (warc["records"], warc["documents"], warc["quarantined"], warc["skipped"]) == (9, 3, 3, 3)
    assert warc["skipped_reasons"] == {"warc_http_status": 1, "warc_not_response": 2}
    assert warc["quarantine_reasons"] == {"unreadable_warc": 1, "warc_extraction_empty": 1, "warc_not_html": 1}

    docs = {d["record_id"]: d for d in lake.read_arrow("documents").to_pylist()}
    assert len(docs) == 11 + 3 + 3 + 3
    assert (docs["c4-0001"]["uri"], docs["c4-0001"]["lang_hint"]) == ("https://example.org/en/pivots", "en")
    assert json.loads(docs["c4-0001"]["metadata"])["metadata"] == {"length": 97}
    ru = docs["<urn:uuid:00000000-0000-0000-0000-000000000006>"]
    assert (ru["uri"], ru["lang_hint"], ru["source"]) == ("https://ru.example.net/page/6", "rus", "fineweb2")
    assert json.loads(ru["metadata"])["language_score"] == pytest.approx(0.96)
    fr = docs["<urn:uuid:11111111-2222-3333-4444-000000000003>"]
    assert (fr["uri"], fr["lang_hint"], fr["source"]) == ("https://example.fr/pivots", "fra", "warc")
    q = lake.read_arrow("quarantine").to_pylist()
    assert len(q) == 7 + 1 + 1 + 3
    trunc = [r for r in q if r["reason"] == "truncated_file"]
    assert sorted(r["uri"].rsplit("/", 1)[-1] for r in trunc) == ["truncated.jsonl.zst#4", "truncated.ndjson.bz2#3"]
    assert all(r["raw"] for r in q)  # every quarantine row says what went wrong


def test_dedup_broadcast_and_shuffle_plans_agree(spark, tmp_path):
    tables = []
    for name, extra in (("broadcast", []), ("shuffle", ["ingest.dedup_broadcast_rows=0"])):
        lake = Lake(str(tmp_path / name))
        c = _counts(ingest(load_config("smoke", [f"lake.uri={lake.uri}", "run.run_id=dedup", *extra]),
                           quiet=True))
        assert (c["records"], c["documents"], c["duplicates"]) == (1178, 1156, 22)
        t = lake.read_arrow("documents").drop_columns(["run_id"]).sort_by("doc_id")
        tables.append(t)
    assert tables[0].equals(tables[1])
