"""Offline bundles: a pinned, trimmed, read-only export of the lake for a machine that cannot read the lake.

A GPU node without network access to the lake (an air-gapped cluster, a rented machine) gets the project's code
and a bundle instead: the lake is gigabytes, and its Delta reader (delta-rs) need not be installed there. A
bundle holds

* the exact Parquet data files of one pinned ``train_set`` version for the (selection, arm) pairs to train: byte
  copies, read by the trainer as it reads them in the lake, listed with their partition values, row count, size
  and sha256;
* trimmed copies of small evaluator inputs (e.g. the ``cooccurrence`` rows touching the evaluation words), one
  Parquet file per table, each with its source version and the filter that trimmed it;
* the row counts of tables the evaluator only counts (``doc_tokens``);
* SentencePiece models under ``_models/tokenizer/{hash}.model``, where a lake keeps them;
* any further files the caller adds (the experiment's data set and facts);
* ``bundle.json``: all of the above, with the lake it came from.

:class:`Bundle` is a :class:`pivot_spark.lake.reader.TableReader`: ``open_reader`` returns one for a bundle
folder, so the trainer and the evaluator read a bundle wherever they read a lake. A bundle is not a Delta table
and nothing writes to it after :func:`export`, which builds it in a temporary folder beside the target, checks
its size against ``max_bytes`` and renames it into place: an interrupted or refused export leaves the previous
bundle (or none). This module imports neither deltalake nor pyspark; :func:`export` reads the lake through a
:class:`~pivot_spark.lake.reader.TableReader`, which pins one version per table for the whole export.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from pivot_spark.lake.reader import TableReader, open_reader

MANIFEST = "bundle.json"
FORMAT = "pivot-spark-bundle/1"
TOKENIZERS = "_models/tokenizer"


def is_bundle(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` is a local folder holding a bundle manifest (object-store URIs are lakes)."""
    s = str(uri)
    if "://" in s and not s.startswith("file://"):
        return False
    return (Path(s.removeprefix("file://")) / MANIFEST).is_file()


def sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the files under ``path`` (0 when it is not a folder)."""
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


@dataclass(frozen=True)
class Trimmed:
    """One table to copy trimmed: rows matching ``filter`` (pyarrow expression), ``columns`` (None: all);
    ``why`` is recorded in the manifest."""

    filter: pc.Expression | None
    columns: Sequence[str] | None
    why: str


class Bundle(TableReader):
    """A bundle opened for reading. ``versions`` (table -> version) are the versions the caller expects: asking
    for a table the bundle holds at another version is an error."""

    def __init__(self, root: Path, manifest: dict[str, Any], versions: Mapping[str, int] | None = None) -> None:
        super().__init__(str(root), versions)
        self.root = root
        self.manifest = manifest

    @classmethod
    def open(cls, uri: str | os.PathLike[str], versions: Mapping[str, int] | None = None) -> Bundle:
        root = Path(str(uri).removeprefix("file://")).resolve()
        path = root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{root} is not a bundle (no {MANIFEST}); make one with `pivot-experiment "
                                    "--stage bundle`")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path}: format {manifest.get('format')!r}, this code reads {FORMAT!r}")
        return cls(root, manifest, versions)

    @property
    def source(self) -> str:
        """The lake the bundle was exported from."""
        return str(self.manifest["lake"])

    def table_uri(self, table: str) -> str:
        return f"{self.root}/{table}"

    def _table(self, name: str) -> dict[str, Any]:
        tables = self.manifest["tables"]
        if name not in tables:
            raise FileNotFoundError(f"bundle {self.root} holds no table {name!r} (it has {sorted(tables)}): "
                                    "export it with the data it is needed for")
        return dict(tables[name])

    def _pin(self, table: str, wanted: int | None) -> int:
        version = int(self._table(table)["version"])
        if wanted is not None and wanted != version:
            raise ValueError(f"bundle {self.root} holds {table} version {version}, not {wanted}")
        return version

    def files(self, table: str, partition: Mapping[str, str] | None = None) -> list[str]:
        """Absolute paths of a table's data files whose partition values match every ``partition`` item."""
        self.version(table)
        want = dict(partition or {})
        return [str(self.root / f["path"]) for f in self._table(table)["files"]
                if all(str(f.get("partition", {}).get(k)) == str(v) for k, v in want.items())]

    def read(self, table: str, columns: Sequence[str] | None = None, filter: pc.Expression | None = None
             ) -> pa.Table:
        """A trimmed table's rows (its filter applied at export), with projection and a further filter."""
        self.version(table)
        t = self._table(table)
        if t["kind"] != "trimmed":
            raise ValueError(f"bundle table {table!r} is a {t['kind']} copy; read its files()")
        dataset = ds.dataset([str(self.root / f["path"]) for f in t["files"]], format="parquet")
        return dataset.to_table(columns=list(columns) if columns else None, filter=filter)

    def row_count(self, table: str) -> int:
        """Rows of the source table at the exported version (also for tables exported as a count only)."""
        self.version(table)
        return int(self._table(table)["source_rows"])

    def tokenizer_path(self, tok_hash: str) -> Path:
        p = self.root / TOKENIZERS / f"{tok_hash}.model"
        if not p.is_file():
            raise FileNotFoundError(f"tokenizer {tok_hash} is not in bundle {self.root}: export the bundle with it")
        return p

    def verify(self) -> list[str]:
        """Problems with the bundle's files (missing, other size or content than exported); empty when sound."""
        problems = []
        for name, t in self.manifest["tables"].items():
            for f in t.get("files", []):
                problems += _check(self.root / f["path"], f, f"{name}: {f['path']}")
        for rel, f in self.manifest.get("files", {}).items():
            problems += _check(self.root / rel, f, rel)
        return problems


def _check(path: Path, f: Mapping[str, Any], what: str) -> list[str]:
    if not path.is_file():
        return [f"{what} is missing"]
    if path.stat().st_size != f["bytes"]:
        return [f"{what}: {path.stat().st_size} bytes, exported {f['bytes']}"]
    if sha256(path) != f["sha256"]:
        return [f"{what}: content differs from the export (sha256)"]
    return []


def _entry(path: Path, rel: str, **extra: Any) -> dict[str, Any]:
    return {"path": rel, "bytes": path.stat().st_size, "sha256": sha256(path), **extra}


class BundleTooLarge(ValueError):
    """An export larger than the size limit it was given."""


def export(source: TableReader | str | os.PathLike[str], out: str | os.PathLike[str], *,
           train: Sequence[tuple[str, str]] = (), trimmed: Mapping[str, Trimmed] | None = None,
           counts: Sequence[str] = (), tokenizers: Sequence[str] = (),
           files: Mapping[str, str | os.PathLike[str]] | None = None, meta: Mapping[str, Any] | None = None,
           max_bytes: int | None = None) -> dict[str, Any]:
    """Write a bundle of ``source`` (a reader, or the URI of a lake) at ``out``, replacing one there, and return
    its manifest. Every table is read at the version the reader pins (its newest, unless the reader was opened
    with versions).

    ``train``: (selection, arm) pairs of ``train_set``; ``trimmed``: table name -> :class:`Trimmed`; ``counts``:
    tables exported as their row count only; ``tokenizers``: SentencePiece hashes; ``files``: bundle-relative
    path -> local file. ``max_bytes``: refuse (:class:`BundleTooLarge`, nothing replaced) a larger bundle.
    """
    reader = source if isinstance(source, TableReader) else open_reader(source)
    target = Path(out).resolve()
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tables: dict[str, Any] = {}
        if train:
            tables["train_set"] = _export_train(reader, tmp, train)
        for name, spec in (trimmed or {}).items():
            tables[name] = _export_trimmed(reader, tmp, name, spec)
        for name in counts:
            tables[name] = {"kind": "count", "version": reader.version(name), "files": [],
                            "source_rows": reader.row_count(name)}
        extra: dict[str, Any] = {}
        for h in tokenizers:
            rel = f"{TOKENIZERS}/{h}.model"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(reader.tokenizer_path(h), tmp / rel)
            extra[rel] = _entry(tmp / rel, rel)
        for rel, src in (files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
            extra[rel] = _entry(tmp / rel, rel)
        size = dir_bytes(tmp)
        if max_bytes is not None and size > max_bytes:
            per = {name: sum(f["bytes"] for f in t["files"]) for name, t in tables.items()}
            raise BundleTooLarge(
                f"the bundle would hold {size / 2**20:.1f} MiB, over its limit of {max_bytes / 2**20:.1f} MiB "
                f"(per table, MiB: {', '.join(f'{k} {v / 2**20:.1f}' for k, v in per.items())}); raise the limit "
                "or export less: fewer arms or ablations, a smaller token budget, fewer lens items")
        manifest = {"format": FORMAT, "lake": reader.uri, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                  time.gmtime()),
                    "tables": tables, "files": {k: {kk: vv for kk, vv in v.items() if kk != "path"}
                                                for k, v in extra.items()},
                    "bytes": size, "meta": dict(meta or {})}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_train(reader: TableReader, tmp: Path, train: Sequence[tuple[str, str]]) -> dict[str, Any]:
    version = reader.version("train_set")
    entries = []
    for selection, arm in dict.fromkeys(train):
        uris = reader.files("train_set", {"selection": selection, "arm": arm})
        if not uris:
            raise ValueError(f"train_set version {version} has no rows for selection={selection!r} arm={arm!r}")
        for uri in sorted(uris):
            rel = f"train_set/selection={selection}/arm={arm}/{uri.rsplit('/', 1)[-1]}"
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            _copy(uri, tmp / rel)
            entries.append(_entry(tmp / rel, rel, partition={"selection": selection, "arm": arm},
                                  rows=pq.ParquetFile(tmp / rel).metadata.num_rows))
    return {"kind": "files", "version": version, "files": entries,
            "source_rows": sum(e["rows"] for e in entries)}


def _copy(uri: str, dst: Path) -> None:
    """Copy one data file of the lake (local path, ``file://`` or an object store; credentials from the
    environment, as the trainer reads them) to ``dst``."""
    if "://" not in uri or uri.startswith("file://"):
        shutil.copyfile(uri.removeprefix("file://"), dst)
        return
    fs, path = pafs.FileSystem.from_uri(uri)
    with fs.open_input_stream(path) as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _export_trimmed(reader: TableReader, tmp: Path, name: str, spec: Trimmed) -> dict[str, Any]:
    version = reader.version(name)
    rows = reader.read(name, columns=list(spec.columns) if spec.columns else None, filter=spec.filter)
    rel = f"tables/{name}.parquet"
    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, tmp / rel, compression="zstd")
    return {"kind": "trimmed", "version": version, "why": spec.why,
            "filter": None if spec.filter is None else str(spec.filter),
            "files": [_entry(tmp / rel, rel, rows=rows.num_rows)], "source_rows": reader.row_count(name)}
