"""Ingest steps without Spark: every raw record becomes a document or a quarantine reason."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from pivot_spark.steps.normalize import (
    RawRecord,
    Reason,
    ingest_files,
    list_input_files,
    normalize_text,
    validate_record,
)

KW = {"source_default": "src", "max_text_bytes": 100, "preview_chars": 50}


def _v(data):
    return validate_record(RawRecord("f.jsonl", 1, data), **KW)


def test_normalize_nfc_controls_newlines():
    assert normalize_text("e\u0301t\u00e9\r\nx\u0007y\u009f\tz") == "\u00e9t\u00e9\nxy\tz"


def test_each_bad_kind_gets_its_reason():
    assert _v(b'{"text": oops').reason is Reason.MALFORMED_JSON
    assert _v(b'{"text": "a \xff b"}').reason is Reason.INVALID_UTF8
    assert _v(b'{"text": "\\ud800"}').reason is Reason.INVALID_UTF8
    assert _v(b'[1, 2]').reason is Reason.NOT_AN_OBJECT
    assert _v(b'{"id": 1}').reason is Reason.MISSING_TEXT
    assert _v(b'{"text": null}').reason is Reason.MISSING_TEXT
    assert _v(b'{"text": ["a"]}').reason is Reason.NON_STRING_TEXT
    assert _v(b'{"text": " \\n\\u0007 "}').reason is Reason.EMPTY_TEXT
    assert _v(json.dumps({"text": "x" * 101}).encode()).reason is Reason.TEXT_TOO_LARGE


def test_good_record_keeps_id_and_metadata():
    o = _v(json.dumps({"id": 7, "text": "Bonjour", "lang_hint": "fr", "k": [1]}).encode())
    assert o.doc is not None and o.reason is None
    assert o.doc["record_id"] == "7" and o.doc["lang_hint"] == "fr" and json.loads(o.doc["metadata"]) == {"k": [1]}
    same = _v(json.dumps({"id": 8, "text": "Bonjour"}).encode())
    assert same.doc["doc_id"] == o.doc["doc_id"]  # same source + content -> same id


def test_all_formats_and_truncated_archive(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write('{"text": "three"}\n')
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "four"}\n'))
    pq.write_table(pa.table({"text": ["five", None], "id": ["p1", "p2"]}), tmp_path / "d.parquet")
    (tmp_path / "e.txt").write_text("six")
    good = gzip.compress(b'{"text": "seven"}\n' * 50)
    (tmp_path / "f.jsonl.gz").write_bytes(good[: len(good) // 2])  # truncated archive
    (tmp_path / "ignored.bin").write_bytes(b"x")
    files = [f[0] for f in list_input_files(tmp_path)]
    assert len(files) == 6
    rows = pa.Table.from_batches(list(ingest_files(files, **KW))).to_pylist()
    docs = sorted(r["text"] for r in rows if r["kind"] == "doc")
    bad = [r["reason"] for r in rows if r["kind"] == "quarantine"]
    assert {"one", "two", "three", "four", "five", "six"} <= set(docs)
    assert sorted(bad) == ["missing_text", "unreadable_file"]
