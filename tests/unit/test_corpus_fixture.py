"""The committed fixture corpus, and the deterministic selection that builds it."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import zstandard

from pivot_spark.config import FIXTURE_CORPUS
from pivot_spark.corpus.build import MANIFEST, write_jsonl_zst
from pivot_spark.corpus.debian import LICENSES
from tests.support.fixture_corpus import FIXTURE_LANGS, build_fixture

FIELDS = {"id", "text", "source", "uri", "lang_hint", "align_group", "package", "package_version", "title"}


def _read_any(path: Path) -> list[dict]:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(raw)
    else:
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _fixture_records(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("*.jsonl.*")) for r in _read_any(p)]


def test_committed_fixture_shape() -> None:
    files = sorted(FIXTURE_CORPUS.glob("*.jsonl.*"))
    assert files and {p.name.split(".", 1)[1] for p in files} == {"jsonl.zst", "jsonl.gz"}
    compressed = sum(p.stat().st_size for p in files)
    assert 300_000 <= compressed <= 2_000_000
    recs = _fixture_records(FIXTURE_CORPUS)
    assert all(set(r) == FIELDS and isinstance(r["text"], str) and r["text"] for r in recs)
    assert len({r["id"] for r in recs}) == len(recs)
    langs = Counter(r["lang_hint"] for r in recs)
    assert set(FIXTURE_LANGS) <= set(langs)
    assert all(r["source"] != "udhr" for r in recs)  # UDHR stays an independent test set
    groups: dict[str, set[str]] = defaultdict(set)
    for r in recs:
        if r["align_group"]:
            groups[r["align_group"]].add(r["lang_hint"])
    assert sum(len(v) >= 5 for v in groups.values()) >= 100
    assert len({r["source"] for r in recs}) >= 5
    notice = (FIXTURE_CORPUS / "NOTICE.md").read_text()
    for source in {r["source"] for r in recs}:
        assert f"`{source}.jsonl" in notice and LICENSES[source] in notice, source
    for package, version in {(r["package"], r["package_version"]) for r in recs}:
        assert f"{package} {version}" in notice, package


def test_committed_fixture_has_code_switching() -> None:
    """Japanese and Chinese pages quoting English: lines of Latin-script words inside CJK documents."""
    recs = _fixture_records(FIXTURE_CORPUS)
    mixed = 0
    for r in recs:
        if r["lang_hint"] not in ("ja", "zh"):
            continue
        lines = [ln for ln in r["text"].split("\n") if len(ln) > 20]
        cjk = any(any("\u3040" <= c <= "\u30ff" or "\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines)
        latin = any(sum(c.isascii() and c.isalpha() for c in ln) > 0.8 * len(ln.replace(" ", "")) for ln in lines)
        mixed += cjk and latin
    assert mixed >= 20


def _synthetic_corpus(root: Path) -> None:
    """Two aligned sources in all fixture languages (one group missing languages), fortunes and the UDHR."""
    recs: dict[tuple[str, str], list[dict]] = defaultdict(list)

    def add(source: str, lang: str, key: str, text: str, group: str | None) -> None:
        recs[(source, lang)].append({"id": f"{source}:{lang}:{key}", "text": text, "source": source, "uri": key,
                                     "lang_hint": lang, "align_group": group, "package": f"{source}-{lang}",
                                     "package_version": "1.0", "title": key})

    for source in ("libreoffice-help", "gnome-help"):
        for g in range(40):
            langs = FIXTURE_LANGS if g % 10 else ("en", "fr")  # every 10th group is incomplete
            for lang in langs:
                add(source, lang, f"p{g}", f"{source} page {g} in {lang}. " * 20, f"{source}:p{g}")
    for lang in ("en", "de"):
        for i in range(10):
            add("fortunes", lang, f"f#{i}", f"fortune {i} {lang} " * 30, None)
    for lang in FIXTURE_LANGS:
        add("udhr", lang, "declaration", f"udhr {lang} " * 50, "udhr:declaration")
    for (source, lang), rs in recs.items():
        (root / source).mkdir(parents=True, exist_ok=True)
        write_jsonl_zst(root / source / f"{lang}-00000.jsonl.zst", rs)
    (root / MANIFEST).write_text(json.dumps({"built_at": "2026-11-26T00:00:00Z"}))


def test_build_fixture_deterministic_complete_groups(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _synthetic_corpus(corpus)
    stats = build_fixture(corpus, tmp_path / "a", target_bytes=200_000)
    build_fixture(corpus, tmp_path / "b", target_bytes=200_000)
    a = sorted((tmp_path / "a").iterdir())
    assert [p.name for p in a] == ["NOTICE.md", "fortunes.jsonl.gz", "gnome-help.jsonl.gz",
                                   "libreoffice-help.jsonl.zst"]
    for p in a:
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes(), p.name
    recs = _fixture_records(tmp_path / "a")
    assert not any(r["source"] == "udhr" for r in recs)
    groups: dict[str, set[str]] = defaultdict(set)
    for r in recs:
        if r["align_group"]:
            groups[r["align_group"]].add(r["lang_hint"])
    assert groups and all(v == set(FIXTURE_LANGS) for v in groups.values())  # only complete groups
    per_source: Counter[str] = Counter()
    for r in recs:
        per_source[r["source"]] += len(r["text"].encode())
    assert 0.8 < per_source["libreoffice-help"] / per_source["gnome-help"] < 1.25  # balanced by bytes
    assert 150_000 <= stats["text_bytes"] <= 260_000
    assert any(r["source"] == "fortunes" for r in recs)
    assert "gnome-help" in (tmp_path / "a" / "NOTICE.md").read_text()
