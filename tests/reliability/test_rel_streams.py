"""Every break of a compressed input stream is a quarantine row, never lost records or a failed task; `.json`
files are read. Each codec's file is cut at many places and damaged at many places."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from pivot_spark.io.fs import list_files, location
from pivot_spark.io.readers import plan_units
from pivot_spark.steps.normalize import ingest_units

RECORDS = [json.dumps({"id": f"r{i}", "text": f"record number {i} " + "word " * (i % 7)}) for i in range(60)]
RAW = ("\n".join(RECORDS) + "\n").encode()
CODECS = {
    ".jsonl.gz": lambda b: gzip.compress(b, mtime=0),
    ".jsonl.bz2": bz2.compress,
    ".jsonl.zst": lambda b: zstandard.ZstdCompressor(level=3, write_checksum=True).compress(b),
    ".json.gz": lambda b: gzip.compress(b"[" + b",\n".join(r.encode() for r in RECORDS) + b"]", mtime=0),
}


def _read(folder: Path) -> list[dict]:
    loc = location(str(folder))
    files, _ = list_files(loc, exclude=[])
    units, unknown = plan_units(loc.fs, [(f.path, f.uri, f.size) for f in files])
    assert unknown == []
    return pa.Table.from_batches(list(ingest_units(loc.fs, units, source_default="t", max_text_bytes=100_000,
                                                   preview_chars=200))).to_pylist()


ORIGINAL = {json.loads(r)["id"]: json.loads(r)["text"] for r in RECORDS}


def _check(rows: list[dict], *, cut: bool) -> None:
    docs = [r for r in rows if r["kind"] == "doc"]
    bad = [r for r in rows if r["kind"] == "quarantine"]
    # a cut stream keeps the records before the cut, whole and in order (a damaged one can decode to altered
    # bytes before its checksum fails at the end: the quarantine row names the file)
    if cut:
        assert [d["record_id"] for d in docs] == [f"r{i}" for i in range(len(docs))]
        assert all(ORIGINAL[d["record_id"]] == d["text"] for d in docs)
    if len(docs) < len(RECORDS):
        assert bad, "records went missing without a quarantine row"
    for r in bad:
        assert r["reason"] and r["raw"] is not None


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_a_stream_cut_anywhere_is_quarantined(tmp_path, ext):
    data = CODECS[ext](RAW)
    cuts = sorted({int(len(data) * f) for f in (0.02, 0.1, 0.25, 0.5, 0.75, 0.9)} | {len(data) - 1, len(data) - 4})
    for cut in cuts:
        folder = tmp_path / f"cut{cut}"
        folder.mkdir()
        (folder / f"part{ext}").write_bytes(data[:cut])
        rows = _read(folder)
        _check(rows, cut=True)
        reasons = {r["reason"] for r in rows if r["kind"] == "quarantine"}
        assert reasons & {"truncated_file", "corrupt_compression"}, (cut, reasons)


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_a_stream_damaged_anywhere_is_quarantined(tmp_path, ext):
    data = CODECS[ext](RAW)
    for at in sorted({int(len(data) * f) for f in (0.05, 0.3, 0.5, 0.7, 0.95)}):
        folder = tmp_path / f"bad{at}"
        folder.mkdir()
        broken = bytearray(data)
        for j in range(at, min(at + 8, len(broken))):
            broken[j] ^= 0x5A
        (folder / f"part{ext}").write_bytes(bytes(broken))
        rows = _read(folder)  # never raises
        _check(rows, cut=False)
        assert any(r["kind"] == "quarantine" for r in rows), at


@pytest.mark.parametrize("text", ["[" + ",".join(RECORDS) + "]", "\n".join(RECORDS)])
def test_json_files_are_read_as_an_array_or_as_lines(tmp_path, text):
    (tmp_path / "all.json").write_text(text)
    rows = _read(tmp_path)
    assert [r["record_id"] for r in rows if r["kind"] == "doc"] == [f"r{i}" for i in range(len(RECORDS))]
