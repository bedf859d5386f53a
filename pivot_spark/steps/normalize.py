"""Ingest steps: map raw records to the ``documents`` columns, validate and normalize them.

Each raw record (:mod:`pivot_spark.io.readers`) becomes a document row, a quarantine row with a reason, or, for
records that are by design not documents (WARC requests, redirects), a skipped row counted by reason; never an
exception: a job that reads a million records must not die on record 999,999. Reasons are data (``Reason``),
counted per run.

Field mapping (``ingest.fields``, datatrove-adapter style): each of ``text``, ``id``, ``source``, ``uri``,
``lang_hint`` and ``align_group`` names the record field it comes from: a dotted path into nested objects
(``metadata.url``), a list of such paths (the first one present wins) or null (never mapped). ``metadata`` is
``"*"`` (every field not mapped, as a JSON object), a field path (that field, as JSON) or null (none).
Text files and WARC records come out of their readers with the project's own field names and are not mapped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyarrow import fs as pafs

from pivot_spark.io.readers import (
    SKIP_REASONS,
    RawRecord,
    Reason,
    Unit,
    detect_format,
    open_stream,
    read_unit,
)

__all__ = ["Reason", "RawRecord", "FieldMap", "DEFAULT_FIELDS", "INGEST_ROW", "validate_record", "ingest_units",
           "ingest_files", "list_input_files", "normalize_text", "content_hash", "doc_id_of"]

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".ndjson", ".ndjson.gz", ".ndjson.zst",
                  ".ndjson.bz2")

# C0/C1 control characters except tab and newline; also lone surrogates cannot occur after strict decoding.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")

MAPPED = ("text", "id", "source", "uri", "lang_hint", "align_group")
# The project's own record format (the corpus builder writes it): every field under its column name.
DEFAULT_FIELDS: dict[str, Any] = {"text": "text", "id": "id", "source": "source", "uri": "uri",
                                  "lang_hint": "lang_hint", "align_group": "align_group", "metadata": "*"}

Path_ = tuple[str, ...]


def _paths(spec: str | Sequence[str] | None) -> tuple[Path_, ...]:
    if spec is None:
        return ()
    items = [spec] if isinstance(spec, str) else list(spec)
    return tuple(tuple(s.split(".")) for s in items if s)


def _get(obj: Mapping[str, Any], path: Path_) -> Any:
    cur: Any = obj
    for k in path:
        if not isinstance(cur, Mapping) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _pop(d: dict[str, Any], path: Path_) -> None:
    k = path[0]
    if k not in d:
        return
    if len(path) == 1:
        del d[k]
        return
    child = d[k]
    if isinstance(child, Mapping):
        child = dict(child)
        _pop(child, path[1:])
        if child:
            d[k] = child
        else:
            del d[k]


@dataclass(frozen=True)
class FieldMap:
    """Where each ``documents`` column comes from in a record (see the module docstring)."""

    text: tuple[Path_, ...]
    id: tuple[Path_, ...]
    source: tuple[Path_, ...]
    uri: tuple[Path_, ...]
    lang_hint: tuple[Path_, ...]
    align_group: tuple[Path_, ...]
    metadata: Path_ | None  # a field path, or None
    metadata_rest: bool  # metadata is "*": every field not mapped

    @classmethod
    def from_config(cls, fields: Mapping[str, Any]) -> FieldMap:
        spec = {**DEFAULT_FIELDS, **dict(fields)}
        meta = spec.get("metadata")
        return cls(text=_paths(spec.get("text")), id=_paths(spec.get("id")), source=_paths(spec.get("source")),
                   uri=_paths(spec.get("uri")), lang_hint=_paths(spec.get("lang_hint")),
                   align_group=_paths(spec.get("align_group")),
                   metadata=tuple(meta.split(".")) if meta and meta != "*" else None,
                   metadata_rest=meta == "*")

    def first(self, obj: Mapping[str, Any], paths: tuple[Path_, ...]) -> Any:
        for p in paths:
            v = _get(obj, p)
            if v is not None:
                return v
        return None

    def columns(self) -> list[str] | None:
        """Top-level fields a columnar reader must read; None: all of them (metadata is "the rest")."""
        if self.metadata_rest:
            return None
        tops = {p[0] for k in MAPPED for p in getattr(self, k)}
        if self.metadata:
            tops.add(self.metadata[0])
        return sorted(tops)

    def metadata_of(self, obj: Mapping[str, Any]) -> str | None:
        if self.metadata_rest:
            rest = dict(obj)
            for k in MAPPED:
                for p in getattr(self, k):
                    _pop(rest, p)
            return json.dumps(rest, ensure_ascii=False, default=str, sort_keys=True) if rest else None
        if self.metadata is None:
            return None
        v = _get(obj, self.metadata)
        if v is None:
            return None
        if isinstance(v, str):
            try:
                parsed = json.loads(v)
            except ValueError:
                parsed = None
            v = parsed if isinstance(parsed, dict) else {self.metadata[-1]: v}
        elif not isinstance(v, Mapping):
            v = {self.metadata[-1]: v}
        return json.dumps(v, ensure_ascii=False, default=str, sort_keys=True) if v else None


DEFAULT_MAP = FieldMap.from_config(DEFAULT_FIELDS)


def normalize_text(text: str) -> str:
    """Unicode NFC, CRLF -> LF, control characters removed (tab and newline kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", unicodedata.normalize("NFC", text))


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def doc_id_of(source: str, text_hash: str) -> str:
    """Stable document id: a hash of source and content, so re-ingesting the same text gives the same id."""
    return hashlib.sha256(f"{source}\x00{text_hash}".encode()).hexdigest()[:24]


@dataclass
class Outcome:
    doc: dict[str, Any] | None = None
    reason: Reason | None = None
    raw: str | None = None

    @property
    def skipped(self) -> bool:
        return self.reason in SKIP_REASONS


def _preview(raw: Any, limit: int) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw[: limit * 4].decode("utf-8", errors="replace")[:limit]
    return json.dumps(raw, ensure_ascii=False, default=str)[:limit]


def validate_record(rec: RawRecord, *, source_default: str, max_text_bytes: int, preview_chars: int,
                    fields: FieldMap = DEFAULT_MAP) -> Outcome:
    """Turn one raw record into a normalized document dict or a reason (quarantine or skip)."""
    if rec.reason is not None:
        raw = _preview(rec.data, preview_chars) if rec.data is not None else (rec.error or "")[:preview_chars]
        return Outcome(reason=rec.reason, raw=raw)
    if rec.data is None:
        return Outcome(reason=Reason.UNREADABLE_FILE, raw=(rec.error or "")[:preview_chars])
    if isinstance(rec.data, bytes):
        try:
            line = rec.data.decode("utf-8")
        except UnicodeDecodeError:
            return Outcome(reason=Reason.INVALID_UTF8, raw=_preview(rec.data, preview_chars))
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            return Outcome(reason=Reason.MALFORMED_JSON, raw=line[:preview_chars])
    else:
        obj = rec.data
    if not isinstance(obj, dict):
        return Outcome(reason=Reason.NOT_AN_OBJECT, raw=_preview(rec.data, preview_chars))
    fm = DEFAULT_MAP if rec.canonical else fields
    text = fm.first(obj, fm.text)
    if text is None:
        return Outcome(reason=Reason.MISSING_TEXT, raw=_preview(rec.data, preview_chars))
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
    src = fm.first(obj, fm.source)
    source: str = src if isinstance(src, str) else source_default
    h = content_hash(text)
    rid = fm.first(obj, fm.id)
    uri = fm.first(obj, fm.uri)
    lang = fm.first(obj, fm.lang_hint)
    group = fm.first(obj, fm.align_group)
    return Outcome(doc={
        "doc_id": doc_id_of(source, h),
        "record_id": None if rid is None else str(rid),
        "source": source,
        "uri": uri if isinstance(uri, str) else f"{rec.uri}#{rec.record}",
        "text": text,
        "n_bytes": len(text.encode("utf-8")),
        "content_hash": h,
        "lang_hint": lang if isinstance(lang, str) else None,
        "align_group": str(group) if group is not None else None,
        "metadata": fm.metadata_of(obj),
    })


# One row per raw record: a document (kind "doc"), a quarantine entry ("quarantine") or a skipped record
# ("skip": counted by reason, not written).
INGEST_ROW = pa.schema([
    pa.field("kind", pa.string()),
    pa.field("file", pa.string()),
    pa.field("file_no", pa.int64()),
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


def ingest_units(fs: pafs.FileSystem, units: Sequence[Unit], *, source_default: str, max_text_bytes: int,
                 preview_chars: int, fields: FieldMap = DEFAULT_MAP, batch_rows: int = 2000
                 ) -> Iterator[pa.RecordBatch]:
    """Read, map, validate and normalize every record of ``units``; yields INGEST_ROW batches."""
    rows: list[dict[str, Any]] = []
    columns = fields.columns()
    for unit in units:
        for rec in read_unit(fs, unit, columns=columns):
            o = validate_record(rec, source_default=source_default, max_text_bytes=max_text_bytes,
                                preview_chars=preview_chars, fields=fields)
            base = {"file": unit.uri, "file_no": unit.file_no, "record": rec.record}
            if o.doc is not None:
                rows.append({"kind": "doc", **base, **o.doc})
            else:
                assert o.reason is not None
                rows.append({"kind": "skip" if o.skipped else "quarantine", **base, "source": source_default,
                             "uri": f"{rec.uri}#{rec.record}", "reason": o.reason.value, "raw": o.raw})
            if len(rows) >= batch_rows:
                yield pa.RecordBatch.from_pylist(rows, schema=INGEST_ROW)
                rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=INGEST_ROW)


def list_input_files(root: str, storage_options: Mapping[str, str] | None = None, *,
                     exclude: Sequence[str] = (), forced_format: str | None = None) -> list[tuple[str, int, int]]:
    """(uri, size, mtime_ns) of every file in an input format under ``root`` (or ``root`` itself), by path."""
    from pivot_spark.io.fs import list_files, location

    files, _ = list_files(location(root, storage_options), exclude=exclude)
    return [(f.uri, f.size, f.mtime_ns) for f in files
            if detect_format(f.path.rsplit("/", 1)[-1], forced_format) is not None]


def ingest_files(paths: Sequence[str], *, source_default: str, max_text_bytes: int, preview_chars: int,
                 fields: FieldMap = DEFAULT_MAP, storage_options: Mapping[str, str] | None = None
                 ) -> Iterator[pa.RecordBatch]:
    """:func:`ingest_units` over whole files given by URI (each file one unit, in the order given)."""
    from pivot_spark.io.fs import location

    by_fs: list[tuple[pafs.FileSystem, Unit]] = []
    for i, p in enumerate(paths):
        loc = location(p, storage_options)
        kind = detect_format(loc.root.rsplit("/", 1)[-1]) or ("jsonl", None)
        by_fs.append((loc.fs, Unit(i, loc.root, loc.uri(loc.root), 0, kind[0], kind[1])))
    for fs, unit in by_fs:
        yield from ingest_units(fs, [unit], source_default=source_default, max_text_bytes=max_text_bytes,
                                preview_chars=preview_chars, fields=fields)


def _open_binary(path: str) -> io.BufferedIOBase:
    """A local file, decompressed by its suffix (kept for the benchmarks' corpus subsetting)."""
    kind = detect_format(path.rsplit("/", 1)[-1])
    return open_stream(pafs.LocalFileSystem(), os.path.abspath(path), kind[1] if kind else None)
