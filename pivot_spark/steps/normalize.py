"""Ingest steps: read raw records from local files, validate and normalize them.

Each raw record becomes either a document row or a quarantine row with a reason, never an exception: a job that
reads a million records must not die on record 999,999. Reasons are data (``Reason``), counted per run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TEXT = "missing_text"
    NON_STRING_TEXT = "non_string_text"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LARGE = "text_too_large"
    UNREADABLE_FILE = "unreadable_file"


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson", ".ndjson.gz", ".ndjson.zst")
SUPPORTED_SUFFIXES = (*JSONL_SUFFIXES, ".parquet", ".txt")

# C0/C1 control characters except tab and newline; also lone surrogates cannot occur after strict decoding.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
KNOWN_FIELDS = ("id", "text", "source", "uri", "lang_hint", "align_group")


def supported(path: str) -> bool:
    return path.lower().endswith(SUPPORTED_SUFFIXES)


def list_input_files(root: str | os.PathLike[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime_ns) of every supported file under ``root`` (or ``root`` itself), sorted by path."""
    p = Path(root)
    if not p.exists():
        raise FileNotFoundError(f"ingest input {root} does not exist: pass --input PATH (a file or a folder)")
    files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
    out = [(str(q.resolve()), q.stat().st_size, q.stat().st_mtime_ns) for q in files if supported(str(q))]
    if not out:
        raise FileNotFoundError(f"no {', '.join(SUPPORTED_SUFFIXES)} files under {root}")
    return out


def normalize_text(text: str) -> str:
    """Unicode NFC, CRLF -> LF, control characters removed (tab and newline kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def doc_id_of(source: str, text_hash: str) -> str:
    """Stable document id: a hash of source and content, so re-ingesting the same text gives the same id."""
    return hashlib.sha256(f"{source}\x00{text_hash}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RawRecord:
    uri: str
    record: int  # 1-based record number within the file (line number for JSON Lines)
    data: bytes | dict[str, Any] | None  # bytes: a JSON line; dict: a parsed row (Parquet, txt); None: file error
    error: str | None = None


def _open_binary(path: str) -> io.BufferedIOBase:
    low = path.lower()
    if low.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if low.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")))  # type: ignore[arg-type]
    return open(path, "rb")


def read_raw_records(path: str, source_default: str) -> Iterator[RawRecord]:
    """Yield the raw records of one file; a file that breaks mid-way yields one UNREADABLE_FILE record at the end."""
    low = path.lower()
    n = 0
    try:
        if low.endswith(".parquet"):
            pf = pq.ParquetFile(path)
            for rb in pf.iter_batches(batch_size=1024):
                for row in rb.to_pylist():
                    n += 1
                    yield RawRecord(path, n, row)
        elif low.endswith(".txt"):
            raw = Path(path).read_bytes()
            n = 1
            try:
                yield RawRecord(path, 1, {"text": raw.decode("utf-8"), "id": Path(path).name})
            except UnicodeDecodeError:
                yield RawRecord(path, 1, raw)  # validated (and quarantined) like a JSON line would be
        else:
            with _open_binary(path) as f:
                for line in f:
                    n += 1
                    if line.strip():
                        yield RawRecord(path, n, line.rstrip(b"\r\n"))
    except Exception as e:  # corrupt archive, truncated file, unreadable Parquet
        yield RawRecord(path, n + 1, None, f"{type(e).__name__}: {e}")


@dataclass
class Outcome:
    doc: dict[str, Any] | None = None
    reason: Reason | None = None
    raw: str | None = None
    detail: str | None = None


def _preview(raw: bytes | dict[str, Any] | None, limit: int) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw[: limit * 4].decode("utf-8", errors="replace")[:limit]
    return json.dumps(raw, ensure_ascii=False, default=str)[:limit]


def validate_record(rec: RawRecord, *, source_default: str, max_text_bytes: int, preview_chars: int) -> Outcome:
    """Turn one raw record into a normalized document dict or a quarantine reason."""
    if rec.data is None:
        return Outcome(reason=Reason.UNREADABLE_FILE, raw=rec.error)
    if isinstance(rec.data, bytes):
        try:
            line = rec.data.decode("utf-8")
        except UnicodeDecodeError:
            if rec.uri.lower().endswith(".txt"):
                return Outcome(reason=Reason.INVALID_UTF8, raw=_preview(rec.data, preview_chars))
            return Outcome(reason=Reason.INVALID_UTF8, raw=_preview(rec.data, preview_chars))
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return Outcome(reason=Reason.MALFORMED_JSON, raw=line[:preview_chars])
    else:
        obj = rec.data
    if not isinstance(obj, dict):
        return Outcome(reason=Reason.NOT_AN_OBJECT, raw=_preview(rec.data, preview_chars))
    if "text" not in obj or obj["text"] is None:
        return Outcome(reason=Reason.MISSING_TEXT, raw=_preview(rec.data, preview_chars))
    text = obj["text"]
    if not isinstance(text, str):
        return Outcome(reason=Reason.NON_STRING_TEXT, raw=_preview(rec.data, preview_chars))
    if len(text.encode("utf-8", errors="surrogatepass")) > max_text_bytes:
        return Outcome(reason=Reason.TEXT_TOO_LARGE, raw=_preview(rec.data, preview_chars))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes such as "\ud800"
        return Outcome(reason=Reason.INVALID_UTF8, raw=_preview(rec.data, preview_chars))
    text = normalize_text(text)
    if not text.strip():
        return Outcome(reason=Reason.EMPTY_TEXT, raw=_preview(rec.data, preview_chars))
    source: str = obj["source"] if isinstance(obj.get("source"), str) else source_default
    h = content_hash(text)
    rid = obj.get("id")
    meta = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS}
    return Outcome(doc={
        "doc_id": doc_id_of(source, h),
        "record_id": None if rid is None else str(rid),
        "source": source,
        "uri": obj.get("uri") if isinstance(obj.get("uri"), str) else f"{rec.uri}#{rec.record}",
        "text": text,
        "n_bytes": len(text.encode("utf-8")),
        "content_hash": h,
        "lang_hint": obj.get("lang_hint") if isinstance(obj.get("lang_hint"), str) else None,
        "align_group": str(obj["align_group"]) if obj.get("align_group") is not None else None,
        "metadata": json.dumps(meta, ensure_ascii=False, default=str, sort_keys=True) if meta else None,
    })


# One row per raw record: either a document (kind="doc") or a quarantine entry (kind="quarantine").
INGEST_ROW = pa.schema([
    pa.field("kind", pa.string()),
    pa.field("file", pa.string()),
    pa.field("record", pa.int64()),
    pa.field("doc_id", pa.string()),
    pa.field("record_id", pa.string()),
    pa.field("source", pa.string()),
    pa.field("uri", pa.string()),
    pa.field("text", pa.large_string()),
    pa.field("n_bytes", pa.int64()),
    pa.field("content_hash", pa.string()),
    pa.field("lang_hint", pa.string()),
    pa.field("align_group", pa.string()),
    pa.field("metadata", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("raw", pa.string()),
])


def ingest_files(paths: list[str], *, source_default: str, max_text_bytes: int, preview_chars: int,
                 batch_rows: int = 2000) -> Iterator[pa.RecordBatch]:
    """Read, validate and normalize every record of ``paths``; yields INGEST_ROW batches."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        for rec in read_raw_records(path, source_default):
            o = validate_record(rec, source_default=source_default, max_text_bytes=max_text_bytes,
                                preview_chars=preview_chars)
            if o.doc is not None:
                rows.append({"kind": "doc", "file": path, "record": rec.record, **o.doc})
            else:
                assert o.reason is not None
                rows.append({"kind": "quarantine", "file": path, "record": rec.record, "source": source_default,
                             "uri": f"{rec.uri}#{rec.record}", "reason": o.reason.value, "raw": o.raw})
            if len(rows) >= batch_rows:
                yield pa.RecordBatch.from_pylist(rows, schema=INGEST_ROW)
                rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=INGEST_ROW)
