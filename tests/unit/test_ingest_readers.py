"""Readers, units and filesystems of ingest on the committed fixtures (tests/fixtures/ingest), without Spark."""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard
from pyarrow import fs as pafs

from pivot_spark.config import FORMAT_PRESETS
from pivot_spark.io.fs import excluded, list_files, location, redact_options, redact_uri
from pivot_spark.io.readers import Reason, Unit, deal_units, detect_format, plan_units
from pivot_spark.steps.normalize import DEFAULT_FIELDS, FieldMap, ingest_units

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
EXCLUDE = [".*", "_*", "*.partial", "MANIFEST.json"]


def _ingest(folder: Path, fields=DEFAULT_FIELDS, split: int = 1 << 28):
    loc = location(str(folder))
    files, skipped = list_files(loc, exclude=EXCLUDE)
    units, unknown = plan_units(loc.fs, [(f.path, f.uri, f.size) for f in files], parquet_split_bytes=split)
    rows = pa.Table.from_batches(list(ingest_units(
        loc.fs, units, source_default=folder.name, max_text_bytes=100_000, preview_chars=200,
        fields=FieldMap.from_config(fields)))).to_pylist()
    return rows, units, [files[i] for i in unknown], skipped


def _outcomes(rows):
    return [(r["file"].rsplit("/", 1)[-1], r["record"], r["kind"], r["reason"]) for r in rows]


def test_detect_format():
    assert detect_format("a.jsonl.gz") == ("jsonl", "gzip")
    assert detect_format("a.ndjson.bz2") == ("jsonl", "bz2")
    assert detect_format("A.JSON.ZST") == ("json", "zstd")
    assert detect_format("part-0000.json.gz") == ("json", "gzip")
    assert detect_format("x.parquet") == ("parquet", None)
    assert detect_format("x.parquet.gz") is None  # Parquet compresses inside
    assert detect_format("crawl.warc.gz") == ("warc", "gzip")
    assert detect_format("crawl.warc.zst") is None
    assert detect_format("doc.txt.gz") == ("text", "gzip")
    assert detect_format("notes.md") is None and detect_format("noext") is None
    assert detect_format("noext", "jsonl") == ("jsonl", None)


def test_misc_every_record_and_every_break_accounted():
    rows, units, unknown, skipped = _ingest(FIX / "misc")
    assert [f.relative for f in unknown] == ["README.rst"] and [f.relative for f in skipped] == ["_SUCCESS"]
    assert _outcomes(rows) == [
        ("array.json", 1, "doc", None),
        ("array.json", 2, "quarantine", "not_an_object"),
        ("array.json", 3, "doc", None),
        ("broken.jsonl.gz", 1, "doc", None),  # the good gzip member survives ...
        ("broken.jsonl.gz", 2, "doc", None),
        ("broken.jsonl.gz", 3, "quarantine", "corrupt_compression"),  # ... the broken one is one row
        ("broken.parquet", 1, "quarantine", "unreadable_parquet"),
        ("mixed.jsonl", 1, "quarantine", "missing_text"),
        ("mixed.jsonl", 2, "quarantine", "malformed_json"),
        ("mixed.jsonl", 3, "doc", None),
        ("note.txt", 1, "doc", None),
        ("truncated.jsonl.zst", 1, "doc", None),  # the complete zstd frame survives
        ("truncated.jsonl.zst", 2, "doc", None),
        ("truncated.jsonl.zst", 3, "doc", None),
        ("truncated.jsonl.zst", 4, "quarantine", "truncated_file"),
        ("truncated.ndjson.bz2", 1, "doc", None),
        ("truncated.ndjson.bz2", 2, "doc", None),
        ("truncated.ndjson.bz2", 3, "quarantine", "truncated_file"),
    ]
    by_id = {r["record_id"]: r for r in rows if r["kind"] == "doc"}
    assert by_id["arr-1"]["uri"] == "https://example.it/1" and by_id["arr-1"]["lang_hint"] == "it"
    assert json.loads(by_id["arr-3"]["metadata"]) == {"topic": "pivots"}
    assert by_id["arr-3"]["uri"].endswith("misc/array.json#3")
    assert by_id["note.txt"]["text"].startswith("Semantic pivots") and by_id["note.txt"]["metadata"] is None
    broken = next(r for r in rows if r["reason"] == "corrupt_compression")
    assert "decompress" in broken["raw"] and broken["uri"].endswith("broken.jsonl.gz#3")


def test_dolma_preset():
    rows, *_ = _ingest(FIX / "dolma", FORMAT_PRESETS["dolma"])
    assert [(r["record"], r["kind"], r["reason"]) for r in rows] == [
        (1, "doc", None), (2, "doc", None), (3, "quarantine", "missing_text"), (4, "doc", None), (5, "doc", None)]
    docs = {r["record_id"]: r for r in rows if r["kind"] == "doc"}
    c4 = docs["c4-0001"]
    assert (c4["source"], c4["uri"], c4["lang_hint"]) == ("c4", "https://example.org/en/pivots", "en")
    assert json.loads(c4["metadata"]) == {"added": "2024-01-05T00:00:00.000Z",
                                          "created": "2019-04-18T00:00:00.000Z", "metadata": {"length": 97}}
    assert docs["c4-0004"]["content_hash"] == c4["content_hash"]  # the duplicate dedup will drop
    assert docs["pes2o-0005"]["uri"].endswith("part-0000.json.gz#5") and docs["pes2o-0005"]["lang_hint"] is None


def test_fineweb2_preset_split_by_row_groups_reads_the_same():
    whole, units1, *_ = _ingest(FIX / "fineweb2", FORMAT_PRESETS["fineweb2"])
    split, units3, *_ = _ingest(FIX / "fineweb2", FORMAT_PRESETS["fineweb2"], split=1)
    assert [u.row_groups for u in units1] == [None]
    assert [u.row_groups for u in units3] == [(0, 1), (1, 2), (2, 3)]
    assert whole == split
    assert [(r["record"], r["kind"], r["reason"]) for r in split] == [
        (1, "doc", None), (2, "doc", None), (3, "doc", None), (4, "quarantine", "missing_text"),
        (5, "doc", None), (6, "doc", None), (7, "doc", None)]
    ru = split[6]
    assert (ru["uri"], ru["lang_hint"], ru["source"]) == ("https://ru.example.net/page/6", "rus", "fineweb2")
    meta = json.loads(ru["metadata"])
    assert meta["language_script"] == "Cyrl" and meta["dump"] == "CC-MAIN-2024-10"
    assert not {"text", "id", "url", "language"} & set(meta)


def test_warc_every_record_accounted():
    rows, *_ = _ingest(FIX / "warc")
    assert _outcomes(rows) == [
        ("crawl-00000.warc.gz", 1, "skip", "warc_not_response"),  # warcinfo
        ("crawl-00000.warc.gz", 2, "skip", "warc_not_response"),  # request
        ("crawl-00000.warc.gz", 3, "doc", None),
        ("crawl-00000.warc.gz", 4, "quarantine", "warc_not_html"),  # a PDF
        ("crawl-00000.warc.gz", 5, "skip", "warc_http_status"),  # a 301
        ("crawl-00000.warc.gz", 6, "quarantine", "warc_extraction_empty"),
        ("crawl-00000.warc.gz", 7, "doc", None),
        ("crawl-00001.warc.gz", 1, "doc", None),
        ("crawl-00001.warc.gz", 2, "quarantine", "unreadable_warc"),
    ]
    fr = rows[2]
    assert (fr["uri"], fr["lang_hint"]) == ("https://example.fr/pivots", "fra")
    assert fr["record_id"] == "<urn:uuid:11111111-2222-3333-4444-000000000003>"
    assert "Les pivots sémantiques" in fr["text"] and "var t" not in fr["text"] and "Example footer" not in fr["text"]
    assert json.loads(fr["metadata"]) == {"content_type": "text/html", "http_status": 200,
                                          "warc_date": "2024-03-01T12:00:00Z"}
    assert "application/pdf" in rows[3]["raw"]


def test_truncated_warc_and_exact_salvage(tmp_path):
    good = (FIX / "warc" / "crawl-00000.warc.gz").read_bytes()
    (tmp_path / "cut.warc.gz").write_bytes(good[:-200])
    rows, *_ = _ingest(tmp_path)
    assert [r["reason"] for r in rows][-1] == "truncated_file" and len(rows) == 7
    # every record before a break is kept, for each compression
    lines = b"".join(b'{"text": "record %d"}\n' % i for i in range(20000))
    for name, data in {"g.jsonl.gz": gzip.compress(lines, mtime=0), "b.jsonl.bz2": bz2.compress(lines, 1),
                       "z.jsonl.zst": zstandard.ZstdCompressor().compress(lines)}.items():
        d = tmp_path / name.split(".")[0]
        d.mkdir()
        (d / name).write_bytes(data[: len(data) * 2 // 3])
        rows, *_ = _ingest(d)
        docs = [r for r in rows if r["kind"] == "doc"]
        assert rows[-1]["reason"] == Reason.TRUNCATED_FILE and rows[-1]["record"] == len(docs) + 1, name
        assert [r["text"] for r in docs] == [f"record {i}" for i in range(len(docs))], name
        assert len(docs) > 5000, name  # bz2 and zstd decode whole blocks: what ends in the cut one is lost


def test_units_are_dealt_by_size_deterministically():
    units = [Unit(i, f"p{i}", f"p{i}", size, "jsonl") for i, size in enumerate([100, 1, 50, 50, 2, 99])]
    tasks = deal_units(units, 3)
    assert [[u.file_no for u in t] for t in tasks] == [[0, 1], [4, 5], [2, 3]]  # 101, 101, 100 bytes
    assert deal_units(units, 3) == tasks and len(deal_units(units, 99)) == 6 and len(deal_units([], 4)) == 1


def test_locations_uris_and_redaction(tmp_path):
    loc = location(f"file://{tmp_path}")
    assert isinstance(loc.fs, pafs.LocalFileSystem) and loc.uri(loc.root) == str(tmp_path)
    s3 = location("s3://bucket/corpus/", {"aws_endpoint_url": "http://127.0.0.1:9", "AWS_REGION": "us-east-1",
                                          "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert isinstance(s3.fs, pafs.S3FileSystem) and s3.root == "bucket/corpus"
    assert s3.uri("bucket/corpus/a.jsonl") == "s3://bucket/corpus/a.jsonl"
    opts = s3.fs.__reduce__()[1][0]  # what the filesystem was built with
    assert (opts["endpoint_override"], opts["scheme"], opts["region"]) == ("127.0.0.1:9", "http", "us-east-1")
    assert (opts["access_key"], opts["secret_key"]) == ("k", "s")
    az = location("abfss://data@acct.dfs.core.windows.net/corpus", {"AZURE_STORAGE_ACCOUNT_KEY": "a2V5"})
    assert isinstance(az.fs, pafs.AzureFileSystem) and az.root == "data/corpus"
    assert az.uri("data/corpus/x.jsonl") == "abfss://data@acct.dfs.core.windows.net/corpus/x.jsonl"
    with pytest.raises(ValueError, match="storage account"):
        location("az://data/corpus", {})
    with pytest.raises(ValueError, match="credentials belong"):
        location("s3://AKIA:secret@bucket/x")
    assert redact_uri("s3://AKIA:secret@bucket/x?secret_key=abc&region=eu") == \
        "s3://***@bucket/x?secret_key=***&region=eu"
    assert redact_options({"AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AWS_ACCESS_KEY_ID": "k",
                           "AWS_REGION": "r", "AWS_ENDPOINT_URL": "http://h"}) == {
        "AWS_SECRET_ACCESS_KEY": "***", "AWS_SESSION_TOKEN": "***", "AWS_ACCESS_KEY_ID": "***",
        "AWS_REGION": "r", "AWS_ENDPOINT_URL": "http://h"}
    assert excluded("a/_temporary/x.jsonl", EXCLUDE) and excluded("b.partial/x.jsonl", EXCLUDE)
    assert not excluded("a/b/x.jsonl", EXCLUDE)


def test_listing_is_one_recursive_call(tmp_path):
    for i in range(30):
        d = tmp_path / f"shard-{i % 3}"
        d.mkdir(exist_ok=True)
        (d / f"{i:03d}.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "MANIFEST.json").write_text("{}")
    calls: Counter[str] = Counter()

    class Counting(pafs.FSSpecHandler):  # counts the calls a listing makes, reading the real folder
        def get_file_info(self, paths):
            calls["get_file_info"] += len(paths)
            return super().get_file_info(paths)

        def get_file_info_selector(self, selector):
            calls["selector"] += 1
            return super().get_file_info_selector(selector)

    from fsspec.implementations.local import LocalFileSystem

    from pivot_spark.io.fs import Location

    loc = Location(pafs.PyFileSystem(Counting(LocalFileSystem())), str(tmp_path))
    files, skipped = list_files(loc, exclude=EXCLUDE)
    assert len(files) == 30 and [f.relative for f in skipped] == ["MANIFEST.json"]
    assert [f.relative for f in files][:3] == ["shard-0/000.jsonl", "shard-0/003.jsonl", "shard-0/006.jsonl"]
    assert all(f.size > 0 and f.mtime_ns > 0 for f in files)
    assert dict(calls) == {"get_file_info": 1, "selector": 1}  # the root's type, then one recursive listing
