"""Select the small committed fixture corpus (``tests/fixtures/corpus``) out of a full corpus build.

``build_fixture(corpus_dir, out_dir, target_bytes)`` picks *complete aligned groups* (the same page in every
fixture language it exists in) so the fixture has parallel pages, balanced across sources and languages, plus a
little unaligned text (fortunes). The choice is deterministic: groups are visited in the order of a hash of
their id, so rebuilding from the same corpus gives byte-identical files. The UDHR is left out entirely: tests
use it as an independent labelled language-ID set.

The fixture is what the smoke preset ingests and the whole test-suite runs on: a few MB of text (about 1 MB
compressed), enough for a tokenizer, co-occurrence statistics and a tiny training run, small enough to go
through Spark in seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot_spark.corpus.build import MANIFEST, read_jsonl_zst, write_jsonl_zst
from pivot_spark.corpus.debian import LICENSES, Record

FIXTURE_LANGS = ("en", "fr", "de", "es", "zh", "ja", "ru")
ALIGNED_SOURCES = ("libreoffice-help", "manpages", "ddtp", "gnome-help", "debian-handbook", "installation-guide",
                   "debian-reference")
UNALIGNED_SOURCES = ("fortunes",)
UNALIGNED_SHARE = 0.04
MIN_LANGS = 5  # a group qualifies with English and at least 4 other fixture languages
MAX_DOC_BYTES = 24_000  # long chapters would eat a source's whole budget in one group
MIN_DOC_BYTES = 80
GZIP_SOURCES = ("ddtp", "fortunes", "gnome-help")  # written as .jsonl.gz so both readers are exercised


@dataclass(frozen=True)
class DocMeta:
    id: str
    source: str
    lang: str
    group: str | None
    n_bytes: int


def _stable_rank(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def _corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(corpus_dir.glob("*/*.jsonl.zst"))


def _scan(corpus_dir: Path, langs: tuple[str, ...]) -> Iterator[DocMeta]:
    for path in _corpus_files(corpus_dir):
        if path.name.split("-", 1)[0] not in langs:
            continue
        for rec in read_jsonl_zst(path):
            yield DocMeta(rec["id"], rec["source"], rec["lang_hint"], rec.get("align_group"),
                          len(rec["text"].encode("utf-8")))


def select_ids(metas: list[DocMeta], target_bytes: int, *, langs: tuple[str, ...] = FIXTURE_LANGS
               ) -> list[str]:
    """Ids of the chosen documents: aligned groups round-robin over sources, each source filling an equal share
    of ``(1 - UNALIGNED_SHARE) * target_bytes``; then unaligned chunks, per language in turn."""
    groups: dict[str, list[DocMeta]] = defaultdict(list)
    unaligned: dict[str, list[DocMeta]] = defaultdict(list)
    for m in metas:
        if m.lang not in langs:
            continue
        if m.source in ALIGNED_SOURCES and m.group:
            groups[m.group].append(m)
        elif m.source in UNALIGNED_SOURCES and MIN_DOC_BYTES <= m.n_bytes <= MAX_DOC_BYTES:
            unaligned[m.lang].append(m)
    queues: dict[str, list[list[DocMeta]]] = defaultdict(list)
    for gid in sorted(groups, key=_stable_rank):
        docs = sorted(groups[gid], key=lambda d: langs.index(d.lang))
        have = {d.lang for d in docs}
        if ("en" in have and len(have) >= MIN_LANGS and len(have) == len(docs)
                and all(MIN_DOC_BYTES <= d.n_bytes <= MAX_DOC_BYTES for d in docs)):
            queues[docs[0].source].append(docs)
    chosen: list[str] = []
    aligned_budget = target_bytes * (1 - UNALIGNED_SHARE)
    active = [s for s in ALIGNED_SOURCES if queues.get(s)]
    share = aligned_budget / max(1, len(active))
    used: Counter[str] = Counter()
    while active:
        for src in list(active):
            if not queues[src] or used[src] >= share:
                active.remove(src)
                continue
            docs = queues[src].pop(0)
            chosen.extend(d.id for d in docs)
            used[src] += sum(d.n_bytes for d in docs)
    budget = target_bytes * UNALIGNED_SHARE
    pools = {lang: sorted(v, key=lambda d: _stable_rank(d.id)) for lang, v in sorted(unaligned.items())}
    spent = 0
    while spent < budget and any(pools.values()):
        for lang in list(pools):
            if pools[lang] and spent < budget:
                d = pools[lang].pop(0)
                chosen.append(d.id)
                spent += d.n_bytes
    return chosen


def _write_gz(path: Path, records: list[Record]) -> None:
    """Deterministic gzip (no file name, mtime 0) so a rebuild is byte-identical."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for rec in records:
            gz.write(json.dumps(rec, ensure_ascii=False).encode("utf-8") + b"\n")
    path.write_bytes(buf.getvalue())


def build_fixture(corpus_dir: str | Path, out_dir: str | Path, target_bytes: int = 2_000_000) -> dict[str, Any]:
    """Write the fixture (one JSON Lines file per source, ``.jsonl.zst`` or ``.jsonl.gz``) and ``NOTICE.md``
    into ``out_dir``; ``target_bytes`` is the amount of UTF-8 *text* wanted (2 MB: ~0.6 MB compressed, ~1.5 M
    SentencePiece BPE tokens at vocabulary 2000, ~0.5 M at 8000).
    Returns the fixture's statistics."""
    corpus, out = Path(corpus_dir), Path(out_dir)
    manifest = json.loads((corpus / MANIFEST).read_text())
    metas = list(_scan(corpus, FIXTURE_LANGS))
    order = {i: n for n, i in enumerate(select_ids(metas, target_bytes))}
    by_source: dict[str, list[Record]] = defaultdict(list)
    for path in _corpus_files(corpus):
        if path.name.split("-", 1)[0] not in FIXTURE_LANGS:
            continue
        for rec in read_jsonl_zst(path):
            if rec["id"] in order:
                by_source[rec["source"]].append(rec)
    out.mkdir(parents=True, exist_ok=True)
    for old in list(out.glob("*.jsonl.zst")) + list(out.glob("*.jsonl.gz")):
        old.unlink()
    stats: dict[str, Any] = {"sources": {}, "languages": Counter(), "bytes": Counter()}
    for source, recs in sorted(by_source.items()):
        recs.sort(key=lambda r: order[r["id"]])
        if source in GZIP_SOURCES:
            _write_gz(out / f"{source}.jsonl.gz", recs)
        else:
            write_jsonl_zst(out / f"{source}.jsonl.zst", recs)
        groups = {r["align_group"] for r in recs if r["align_group"]}
        stats["sources"][source] = {"docs": len(recs), "bytes": sum(len(r["text"].encode()) for r in recs),
                                    "align_groups": len(groups), "packages": sorted({
                                        f"{r['package']} {r['package_version']}" for r in recs})}
        for r in recs:
            stats["languages"][r["lang_hint"]] += 1
            stats["bytes"][r["lang_hint"]] += len(r["text"].encode())
    stats["compressed_bytes"] = sum(p.stat().st_size for p in out.glob("*.jsonl.*"))
    stats["text_bytes"] = sum(stats["bytes"].values())
    (out / "NOTICE.md").write_text(notice_text(stats, manifest))
    return stats


def notice_text(stats: dict[str, Any], manifest: dict[str, Any]) -> str:
    lines = [
        "# Fixture corpus: sources and licenses",
        "",
        "A deterministic sample of the translated Debian documentation corpus (`pivot-spark corpus`), selected by",
        "`tests.support.fixture_corpus.build_fixture` from a full build made on "
        f"{manifest.get('built_at', '?')[:10]}: complete aligned groups (the same page in up to "
        f"{len(FIXTURE_LANGS)} languages: {', '.join(FIXTURE_LANGS)}), balanced over sources, plus a few unaligned "
        "fortune chunks. Every record keeps its `id`, `source`, `uri` (path inside the package), `lang_hint`, "
        "`align_group`, `package` and `package_version`.",
        "",
        "The text is real and keeps its code-switching: translated pages quote English (untranslated paragraphs, "
        "menu names, commands, options). The UDHR is NOT in the fixture (tests use it as an independent "
        "labelled language-ID set).",
        "",
        f"Totals: {sum(s['docs'] for s in stats['sources'].values())} documents, "
        f"{stats['text_bytes'] / 1e6:.2f} MB of text, {stats['compressed_bytes'] / 1e6:.2f} MB compressed.",
        "",
        "| source | file | docs | text MB | aligned groups | license |",
        "|---|---|---|---|---|---|",
    ]
    for src, s in stats["sources"].items():
        ext = "jsonl.gz" if src in GZIP_SOURCES else "jsonl.zst"
        lines.append(f"| {src} | `{src}.{ext}` | {s['docs']} | {s['bytes'] / 1e6:.2f} | {s['align_groups']} | "
                     f"{LICENSES.get(src, '')} |")
    lines += ["", "Documents per language: " + ", ".join(f"{k} {v}" for k, v in sorted(stats["languages"].items())),
              "", "## Packages (Debian bookworm unless noted) and versions", ""]
    for src, s in stats["sources"].items():
        lines.append(f"- {src}: " + "; ".join(s["packages"]))
    lines += ["", "Each Debian package's full copyright statement is in its `/usr/share/doc/<package>/copyright`",
              "(e.g. `apt-get download <package>` and `dpkg-deb -x`), and on https://sources.debian.org.",
              "DDTP descriptions come from the archive's `dists/<suite>/main/i18n/Translation-<lang>` files.", ""]
    return "\n".join(lines)
