"""Ingest steps without Spark: every raw record becomes a document, a quarantine reason or a counted skip."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from pivot_spark.config import FORMAT_PRESETS, load_config
from pivot_spark.steps.normalize import (
    DEFAULT_FIELDS,
    FieldMap,
    RawRecord,
    Reason,
    ingest_files,
    list_input_files,
    normalize_text,
    validate_record,
)

KW: dict[str, Any] = {"source_default": "src", "max_text_bytes": 100, "preview_chars": 50}


def _v(data, fields=None):
    return validate_record(RawRecord("f.jsonl", 1, data), **KW, **({"fields": fields} if fields else {}))


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
    assert o.doc["uri"] == "f.jsonl#1" and o.doc["source"] == "src"
    same = _v(json.dumps({"id": 8, "text": "Bonjour"}).encode())
    assert same.doc["doc_id"] == o.doc["doc_id"]  # same source + content -> same id
    assert same.doc["metadata"] is None


def test_field_mapping_paths_candidates_and_metadata():
    dolma = FieldMap.from_config(FORMAT_PRESETS["dolma"])
    rec = {"id": "x1", "text": "Hallo Welt", "source": "c4", "added": "2024",
           "metadata": {"url": "https://e.de/a", "language": "de", "length": 10}}
    d = _v(rec, dolma).doc
    assert (d["uri"], d["lang_hint"], d["source"], d["record_id"]) == ("https://e.de/a", "de", "c4", "x1")
    # the rest of the record, with the mapped nested fields taken out
    assert json.loads(d["metadata"]) == {"added": "2024", "metadata": {"length": 10}}
    fw = FieldMap.from_config(FORMAT_PRESETS["fineweb2"])
    d = _v({"text": "Bonjour", "id": "u", "url": "https://e.fr", "language": "fra", "source": "ignored",
            "language_score": 0.9}, fw).doc
    assert (d["uri"], d["lang_hint"], d["source"]) == ("https://e.fr", "fra", "src")  # source not mapped
    assert json.loads(d["metadata"]) == {"language_score": 0.9, "source": "ignored"}
    custom = FieldMap.from_config({"text": ["body", "content"], "id": "meta.key", "uri": None,
                                   "metadata": "extra"})
    d = _v({"content": "Hola", "meta": {"key": 5}, "uri": "not used", "extra": {"a": 1}}, custom).doc
    assert d["text"] == "Hola" and d["record_id"] == "5" and d["uri"] == "f.jsonl#1"
    assert json.loads(d["metadata"]) == {"a": 1}
    assert json.loads(_v({"body": "Hola", "extra": '{"b": 2}'}, custom).doc["metadata"]) == {"b": 2}
    assert json.loads(_v({"body": "Hola", "extra": 3}, custom).doc["metadata"]) == {"extra": 3}
    assert _v({"content": None, "body": None}, custom).reason is Reason.MISSING_TEXT
    # columnar readers read only what the mapping needs, unless metadata is "the rest"
    assert custom.columns() == ["align_group", "body", "content", "extra", "lang_hint", "meta", "source"]
    assert FieldMap.from_config(DEFAULT_FIELDS).columns() is None


def test_format_preset_config_and_secret_redaction():
    cfg = load_config("smoke", ["ingest.format_preset=fineweb2", "ingest.fields.lang_hint=language_script",
                                "ingest.storage_options={AWS_SECRET_ACCESS_KEY: s3cr3t, AWS_REGION: eu-west-1}"])
    f = cfg.ingest.fields
    assert (f.uri, f.lang_hint, f.source) == ("url", "language_script", None)  # the preset, one key overridden
    assert cfg.ingest.storage_options["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert "s3cr3t" not in cfg.to_json() and "s3cr3t" not in cfg.to_yaml()
    assert json.loads(cfg.to_json())["ingest"]["storage_options"] == {"AWS_REGION": "eu-west-1",
                                                                      "AWS_SECRET_ACCESS_KEY": "***"}
    # ingest.storage_options default to the lake's
    plain = load_config("smoke", ["lake.storage_options={AWS_REGION: us-east-2}"])
    assert plain.ingest.effective_storage_options(plain.lake) == {"AWS_REGION": "us-east-2"}


def test_all_formats_and_truncated_archive(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write('{"text": "three"}\n')
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"text": "four"}\n'))
    pq.write_table(pa.table({"text": ["five", None], "id": ["p1", "p2"]}), tmp_path / "d.parquet")
    (tmp_path / "e.txt").write_text("six")
    good = gzip.compress(b"".join(b'{"text": "seven %d"}\n' % i for i in range(50)))
    (tmp_path / "f.jsonl.gz").write_bytes(good[: len(good) // 2])  # truncated archive
    (tmp_path / "g.json").write_text('[{"text": "eight"}, {"text": "nine"}]')
    (tmp_path / "ignored.bin").write_bytes(b"x")
    (tmp_path / ".hidden.jsonl").write_text('{"text": "hidden"}\n')
    files = [f[0] for f in list_input_files(str(tmp_path), exclude=[".*"])]
    assert len(files) == 7 and not any(f.endswith((".bin", ".hidden.jsonl")) for f in files)
    rows = pa.Table.from_batches(list(ingest_files(files, **KW))).to_pylist()
    docs = sorted(r["text"] for r in rows if r["kind"] == "doc")
    bad = [r["reason"] for r in rows if r["kind"] == "quarantine"]
    assert {"one", "two", "three", "four", "five", "six", "eight", "nine"} <= set(docs)
    assert sorted(bad) == ["missing_text", "truncated_file"]
    sevens = [d for d in docs if d.startswith("seven")]
    assert 0 < len(sevens) < 50
    trunc = next(r for r in rows if r["reason"] == "truncated_file")
    assert trunc["record"] == len(sevens) + 1  # the records before the break are kept, the rest is one row
