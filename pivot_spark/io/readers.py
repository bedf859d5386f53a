"""Record readers, one per input format, over files opened through ``pyarrow.fs``.

Formats are told apart by file name (:func:`detect_format`); a compression suffix (``.gz``, ``.zst``, ``.bz2``)
may follow the JSON and text ones. Decompression is incremental (:mod:`gzip`, :mod:`bz2`, and ``zstandard``
frame by frame, see :class:`ZstdFrames`), so a truncated or corrupt stream fails at the first byte that cannot be
decoded and every record before it is kept. (Arrow's decompressing streams fail the whole read call, losing the
records decoded in it; ``zstandard``'s stream reader ends a truncated frame silently.)

=========  ======================================  ============================================================
format     files                                   a record is
=========  ======================================  ============================================================
jsonl      ``.jsonl``, ``.ndjson`` (+ compression)  a line (blank lines are counted, not read)
json       ``.json`` (+ compression)               an element of a top-level JSON array, or a line when the file
                                                   does not start with ``[`` (Dolma's ``*.json.gz`` are JSON Lines)
parquet    ``.parquet``                            a row (a unit may be a range of row groups of one file)
text       ``.txt`` (+ compression)                the whole file
warc       ``.warc``, ``.warc.gz``                 a WARC record; HTML responses become text with trafilatura
=========  ======================================  ============================================================

Every reader yields :class:`RawRecord` and never raises for bad input: a file that cannot be opened or breaks
part-way (truncated or corrupt compression, a broken Parquet file, an unparseable WARC record) ends with one record
that carries the reason and the error, standing for the rest of the file. Records read before the break are kept.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pyarrow import fs as pafs


class Reason(StrEnum):
    """Why a record is not a document. Quarantined unless listed in :data:`SKIP_REASONS`."""

    MALFORMED_JSON = "malformed_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_TEXT = "missing_text"
    NON_STRING_TEXT = "non_string_text"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LARGE = "text_too_large"
    UNREADABLE_FILE = "unreadable_file"  # cannot be opened or read (permissions, vanished, I/O error)
    TRUNCATED_FILE = "truncated_file"  # a compressed stream that ends early
    CORRUPT_COMPRESSION = "corrupt_compression"  # a broken gzip member, invalid bz2/zstd data
    UNREADABLE_PARQUET = "unreadable_parquet"  # not Parquet, a broken footer or row group
    UNREADABLE_WARC = "unreadable_warc"  # a WARC record that does not parse (the rest of the file)
    WARC_NOT_HTML = "warc_not_html"  # a response whose payload is not HTML (PDF, image, ...)
    WARC_EXTRACTION_EMPTY = "warc_extraction_empty"  # HTML from which trafilatura extracts no text
    WARC_EXTRACTION_FAILED = "warc_extraction_failed"  # the payload could not be read or extraction raised
    WARC_NOT_RESPONSE = "warc_not_response"  # warcinfo, request, metadata, revisit, ... records: skipped
    WARC_HTTP_STATUS = "warc_http_status"  # responses other than 2xx (redirects, errors): skipped


# Records that are by design not documents: counted per reason in the run, no quarantine row.
SKIP_REASONS = frozenset({Reason.WARC_NOT_RESPONSE, Reason.WARC_HTTP_STATUS})

COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".txt": "text",
           ".warc": "warc"}
FORMAT_NAMES = ("jsonl", "json", "parquet", "text", "warc")
HTML_TYPES = ("text/html", "application/xhtml+xml")
READ_BUFFER = 64 * 1024
BOM = b"\xef\xbb\xbf"


def detect_format(name: str, forced: str | None = None) -> tuple[str, str | None] | None:
    """(format, compression) of a file name, or None when it is not an input format. ``forced`` (a format name)
    applies to every file; the compression still comes from the name."""
    low = name.lower()
    comp = None
    for ext, c in COMPRESSIONS.items():
        if low.endswith(ext):
            comp, low = c, low[: -len(ext)]
            break
    fmt = forced if forced and forced != "auto" else next((f for e, f in FORMATS.items() if low.endswith(e)), None)
    if fmt is None or (fmt == "parquet" and comp) or (fmt == "warc" and comp not in (None, "gzip")):
        return None
    return fmt, comp


@dataclass(frozen=True)
class Unit:
    """What one task reads: a file, or a range of row groups of a large Parquet file."""

    file_no: int  # position of the file in the sorted listing: the order of "first occurrence" for dedup
    path: str  # in the filesystem
    uri: str
    size: int  # bytes this unit reads (the row groups' compressed size for a split Parquet file)
    fmt: str
    compression: str | None = None
    row_groups: tuple[int, int] | None = None  # [start, end) for a split Parquet file


@dataclass(frozen=True)
class RawRecord:
    uri: str  # the file
    record: int  # 1-based: line number (JSON Lines), element (JSON array), row (Parquet), record (WARC)
    data: Any  # bytes: a JSON line; a parsed value (dict for Parquet rows, JSON array elements); None: an error
    error: str | None = None
    reason: Reason | None = None  # decided by the reader (file errors, WARC skips and quarantines)
    canonical: bool = False  # data already uses the project's field names (text files, WARC): no field mapping


def _error_reason(e: BaseException) -> Reason:
    msg = str(e).lower()
    if isinstance(e, EOFError) or "truncated" in msg or "ended before" in msg:
        return Reason.TRUNCATED_FILE
    if isinstance(e, zlib.error | gzip.BadGzipFile) or any(
            k in msg for k in ("inflate", "decompress", "gzip", "zstd", "bz2", "compressed", "data stream")):
        return Reason.CORRUPT_COMPRESSION
    return Reason.UNREADABLE_FILE


def _describe(e: BaseException) -> str:
    t = type(e)
    name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
    return f"{name}: {e}"


def _err(uri: str, record: int, e: BaseException, reason: Reason | None = None) -> RawRecord:
    return RawRecord(uri, record, None, _describe(e), reason or _error_reason(e))


class ZstdFrames(io.RawIOBase):
    """The decompressed bytes of consecutive zstd frames; raises :class:`EOFError` when the input ends inside a
    frame (``zstandard``'s stream reader returns a short stream there without a word)."""

    def __init__(self, raw: Any, chunk: int = 64 * 1024) -> None:
        import zstandard

        self._raw, self._chunk = raw, chunk
        self._dctx = zstandard.ZstdDecompressor()
        self._dobj: Any = None
        self._out = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._out):
            if self._done:
                return 0
            data = self._raw.read(self._chunk)
            if not data:
                self._done = True
                if self._dobj is not None and not self._dobj.eof:
                    raise EOFError("zstd input ends inside a frame: truncated")
                return 0
            parts = []
            while data:
                if self._dobj is None or self._dobj.eof:
                    self._dobj = self._dctx.decompressobj()
                parts.append(self._dobj.decompress(data))
                data = self._dobj.unused_data if self._dobj.eof else b""
            self._out, self._pos = b"".join(parts), 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n


def open_stream(fs: pafs.FileSystem, path: str, compression: str | None) -> io.BufferedIOBase:
    """A buffered binary stream of ``path``, decompressed incrementally when ``compression`` is set."""
    raw = fs.open_input_stream(path, compression=None, buffer_size=None)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # members one after another, EOFError when truncated
    if compression == "bz2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[arg-type]
    if compression == "zstd":
        return io.BufferedReader(ZstdFrames(raw), READ_BUFFER)
    if compression is not None:
        raise ValueError(f"unknown compression {compression!r}")
    return io.BufferedReader(raw, READ_BUFFER)  # type: ignore[arg-type]


def _lines(f: Any, uri: str) -> Iterator[RawRecord]:
    n = 0
    try:
        for line in f:
            n += 1
            if n == 1 and line.startswith(BOM):
                line = line[len(BOM):]
            if line.strip():
                yield RawRecord(uri, n, line.rstrip(b"\r\n"))
    except Exception as e:  # truncated or corrupt compression, I/O errors
        yield _err(uri, n + 1, e)


def _read_all(f: Any) -> tuple[bytes, BaseException | None]:
    """Everything ``f`` yields before it ends or breaks, and the error that broke it (None at a clean end).
    ``read1`` returns what one underlying read decodes, so a break loses nothing decoded before it."""
    chunks: list[bytes] = []
    read = getattr(f, "read1", f.read)
    try:
        while True:
            b = read(READ_BUFFER)
            if not b:
                return b"".join(chunks), None
            chunks.append(b)
    except Exception as e:
        return b"".join(chunks), e


def _json(f: Any, uri: str) -> Iterator[RawRecord]:
    """A ``.json`` file: the elements of a top-level array, or JSON Lines. An array is read whole (such files
    are small in practice; sharded corpora use JSON Lines) and parsed element by element, so the elements before
    a syntax error or a broken stream are kept."""
    try:
        head = f.peek(READ_BUFFER).removeprefix(BOM).lstrip()
    except Exception as e:
        yield _err(uri, 1, e)
        return
    if not head.startswith(b"["):
        yield from _lines(f, uri)
        return
    data, broken = _read_all(f)
    try:  # a broken stream may end inside a character: decode what is complete
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=broken is None)
    except UnicodeDecodeError as e:
        yield RawRecord(uri, 1, None, _describe(e), Reason.INVALID_UTF8)
        return
    dec = json.JSONDecoder()
    i, n, end = text.index("[") + 1, 0, len(text)

    def ws(j: int) -> int:
        while j < end and text[j] in " \t\r\n":
            j += 1
        return j

    i = ws(i)
    while not (i < end and text[i] == "]" and n == 0):
        try:
            obj, i = dec.raw_decode(text, i)
        except (json.JSONDecodeError, RecursionError) as e:
            yield _err(uri, n + 1, broken) if broken is not None else RawRecord(
                uri, n + 1, None, f"{_describe(e)}; at: {text[i:i + 200]}", Reason.MALFORMED_JSON)
            return
        n += 1
        yield RawRecord(uri, n, obj)
        i = ws(i)
        if i < end and text[i] == ",":
            i = ws(i + 1)
            continue
        if i < end and text[i] == "]" and not text[i + 1:].strip():
            break
        yield _err(uri, n + 1, broken) if broken is not None else RawRecord(
            uri, n + 1, None, f"expected ',' or ']' at character {i}: {text[i:i + 200]!r}", Reason.MALFORMED_JSON)
        return
    if broken is not None:
        yield _err(uri, n + 1, broken)


def _text(f: Any, uri: str) -> Iterator[RawRecord]:
    raw, broken = _read_all(f)
    if broken is not None:
        yield _err(uri, 1, broken)
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        yield RawRecord(uri, 1, raw[:2000], "not UTF-8", Reason.INVALID_UTF8)
        return
    yield RawRecord(uri, 1, {"text": text, "id": os.path.basename(uri)}, canonical=True)


def parquet_offsets(md: Any) -> list[int]:
    """First row (0-based, within the file) of every row group of a Parquet file's metadata, plus the total."""
    out = [0]
    for i in range(md.num_row_groups):
        out.append(out[-1] + md.row_group(i).num_rows)
    return out


def _parquet(fs: pafs.FileSystem, unit: Unit, columns: Sequence[str] | None, batch_rows: int
             ) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    n = 0
    try:
        pf = pq.ParquetFile(fs.open_input_file(unit.path))
        md = pf.metadata
        start, end = unit.row_groups or (0, md.num_row_groups)
        n = parquet_offsets(md)[start]
        names = set(pf.schema_arrow.names)
        cols = None if columns is None else [c for c in columns if c in names]
        for rb in pf.iter_batches(batch_size=batch_rows, row_groups=list(range(start, end)), columns=cols,
                                  use_threads=False):
            for row in rb.to_pylist():
                n += 1
                yield RawRecord(unit.uri, n, row)
    except Exception as e:  # not Parquet, a broken footer, page or row group
        yield _err(unit.uri, n + 1, e, Reason.UNREADABLE_PARQUET)


def extract_html(payload: bytes, url: str | None) -> str | None:
    """Main text of an HTML page with trafilatura (comments left out, tables kept); None when there is none."""
    import trafilatura

    return trafilatura.extract(payload, url=url, include_comments=False, include_tables=True, deduplicate=False)


def _warc_record(rec: Any, uri: str, n: int) -> RawRecord:
    h = rec.rec_headers
    target = h.get_header("WARC-Target-URI")
    what = f"{rec.rec_type} {target or ''}".strip()
    if rec.rec_type != "response":
        return RawRecord(uri, n, None, what, Reason.WARC_NOT_RESPONSE)
    http = rec.http_headers
    status = http.get_statuscode() if http is not None else None
    if status and not status.startswith("2"):
        return RawRecord(uri, n, None, f"HTTP {status} {target}", Reason.WARC_HTTP_STATUS)
    ctype = (http.get_header("Content-Type") if http is not None else None) \
        or h.get_header("WARC-Identified-Payload-Type") or ""
    mime = ctype.split(";")[0].strip().lower()
    if mime not in HTML_TYPES:
        return RawRecord(uri, n, None, f"{mime or 'no content type'} {target}", Reason.WARC_NOT_HTML)
    try:
        payload = rec.content_stream().read()
    except Exception as e:
        return RawRecord(uri, n, None, f"{target}: {_describe(e)}", Reason.WARC_EXTRACTION_FAILED)
    if getattr(rec.raw_stream, "limit", 0) > 0:  # the file ended inside this record's block
        return RawRecord(uri, n, None, f"{target}: record ends {rec.raw_stream.limit} bytes short",
                         Reason.TRUNCATED_FILE)
    try:
        text = extract_html(payload, target)
    except Exception as e:
        return RawRecord(uri, n, None, f"{target}: {_describe(e)}", Reason.WARC_EXTRACTION_FAILED)
    if not text or not text.strip():
        return RawRecord(uri, n, None, f"{target}", Reason.WARC_EXTRACTION_EMPTY)
    langs = h.get_header("WARC-Identified-Content-Language")
    doc = {"text": text, "id": h.get_header("WARC-Record-ID"), "uri": target,
           "lang_hint": langs.split(",")[0].strip() if langs else None,
           "warc_date": h.get_header("WARC-Date"), "content_type": mime,
           "http_status": int(status) if status and status.isdigit() else None}
    return RawRecord(uri, n, doc, canonical=True)


class TruncatedInput(OSError):
    """A stream that ends early, raised where an :class:`EOFError` would be taken for a normal end."""


class _WarcInput(io.RawIOBase):
    """What warcio reads: one underlying read per call (``read1``), so records decoded before a break are
    handed over before the break is met, and a truncated stream's :class:`EOFError` as :class:`TruncatedInput`
    (warcio ends its iteration quietly on an EOFError)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._read = getattr(f, "read1", f.read)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._read(len(b))
        except EOFError as e:
            raise TruncatedInput(f"truncated: {e}") from e
        b[:len(data)] = data
        return len(data)


def _warc(f: Any, uri: str) -> Iterator[RawRecord]:
    from warcio.archiveiterator import ArchiveIterator

    n = 0
    try:
        for rec in ArchiveIterator(_WarcInput(f)):
            n += 1
            yield _warc_record(rec, uri, n)
    except Exception as e:  # ArchiveLoadFailed, a broken gzip member, a truncated file
        reason = _error_reason(e)
        yield _err(uri, n + 1, e, reason if reason is not Reason.UNREADABLE_FILE else Reason.UNREADABLE_WARC)


def read_unit(fs: pafs.FileSystem, unit: Unit, *, columns: Sequence[str] | None = None,
              batch_rows: int = 1024) -> Iterator[RawRecord]:
    """Every record of ``unit``; ``columns`` limits what is read of a Parquet file (None: all)."""
    if unit.fmt == "parquet":
        yield from _parquet(fs, unit, columns, batch_rows)
        return
    try:
        # A .warc.gz is decompressed here too: gzip's EOFError reveals a truncated file, which warcio's own
        # decompression passes over (the last record just comes out short).
        f = open_stream(fs, unit.path, unit.compression)
    except Exception as e:
        yield _err(unit.uri, 1, e, Reason.UNREADABLE_FILE)
        return
    with f:
        if unit.fmt == "jsonl":
            yield from _lines(f, unit.uri)
        elif unit.fmt == "json":
            yield from _json(f, unit.uri)
        elif unit.fmt == "text":
            yield from _text(f, unit.uri)
        elif unit.fmt == "warc":
            yield from _warc(f, unit.uri)
        else:
            raise ValueError(f"unknown format {unit.fmt!r}")


def _parquet_splits(fs: pafs.FileSystem, path: str, split_bytes: int) -> list[tuple[tuple[int, int], int]] | None:
    """Consecutive row-group ranges of about ``split_bytes`` compressed bytes each, with their sizes; None when
    the footer cannot be read (the whole file is then one unit, and its task quarantines it)."""
    import pyarrow.parquet as pq

    try:
        with fs.open_input_file(path) as f:
            md = pq.ParquetFile(f).metadata
    except Exception:
        return None
    out: list[tuple[tuple[int, int], int]] = []
    start, acc = 0, 0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        acc += sum(rg.column(c).total_compressed_size for c in range(rg.num_columns))
        if acc >= split_bytes or i == md.num_row_groups - 1:
            out.append(((start, i + 1), acc))
            start, acc = i + 1, 0
    return out or None


def plan_units(fs: pafs.FileSystem, files: Sequence[tuple[str, str, int]], *, forced_format: str | None = None,
               parquet_split_bytes: int = 256 * 1024 * 1024, threads: int = 16
               ) -> tuple[list[Unit], list[int]]:
    """Read units of ``files`` ((path, uri, size), in listing order) and the indexes of files in no known
    format. Parquet files larger than ``parquet_split_bytes`` are split by row groups; their footers are read
    on the driver, in parallel (one small ranged read each). Every other file is one unit."""
    from concurrent.futures import ThreadPoolExecutor

    units: list[Unit] = []
    unknown: list[int] = []
    big: list[int] = []
    kinds: list[tuple[str, str | None] | None] = []
    for i, (path, _uri, size) in enumerate(files):
        kind = detect_format(path.rsplit("/", 1)[-1], forced_format)
        kinds.append(kind)
        if kind is None:
            unknown.append(i)
        elif kind[0] == "parquet" and size > parquet_split_bytes:
            big.append(i)
    with ThreadPoolExecutor(max(1, min(threads, len(big)))) as pool:
        splits = dict(zip(big, pool.map(lambda i: _parquet_splits(fs, files[i][0], parquet_split_bytes), big),
                          strict=True))
    for i, (path, uri, size) in enumerate(files):
        kind = kinds[i]
        if kind is None:
            continue
        parts = splits.get(i)
        if parts and len(parts) > 1:
            units.extend(Unit(i, path, uri, nbytes, kind[0], kind[1], rg) for rg, nbytes in parts)
        else:
            units.append(Unit(i, path, uri, size, kind[0], kind[1]))
    return units, unknown


def deal_units(units: Sequence[Unit], n_tasks: int) -> list[list[Unit]]:
    """``units`` dealt to ``n_tasks`` lists of similar byte size (largest first to the lightest list), each in
    listing order; deterministic."""
    import heapq

    n = max(1, min(n_tasks, len(units)))
    heap = [(0, t) for t in range(n)]
    out: list[list[Unit]] = [[] for _ in range(n)]
    for u in sorted(units, key=lambda u: (-u.size, u.file_no, u.row_groups or (0, 0))):
        load, t = heapq.heappop(heap)
        out[t].append(u)
        heapq.heappush(heap, (load + max(u.size, 1), t))
    return [sorted(ts, key=lambda u: (u.file_no, u.row_groups or (0, 0))) for ts in out]
