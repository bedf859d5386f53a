"""The corpus builder end to end, offline: packages are pre-registered in the apt cache's manifest (as a
previous download would leave them), so AptCache serves them without the network, exactly as in a rebuild."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pivot_spark.config import CorpusConfig
from pivot_spark.corpus.build import CorpusError, build_corpus, read_jsonl_zst
from pivot_spark.corpus.extract import groff_available
from pivot_spark.corpus.udhr import udhr_labelled

FIELDS = {"id", "text", "source", "uri", "lang_hint", "align_group", "package", "package_version", "title"}

LO_PAGE = """<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head><body>
<header>LibreOffice Help</header><div id="DisplayArea"><h1>{title}</h1><p>{body}</p></div></body></html>"""

MAN = """.TH CRYPT 3 2023-02-05 "Linux man-pages 6.03"
.SH {name}
crypt \\- {what}
.SH DESCRIPTION
{body}
"""

UDHR = """<!doctype html>
<html data-code="{code}" data-iso6393="{iso}" dir="ltr" lang="{lang}"><head><title>{name}</title></head><body>
<h1>{title}</h1><header><h2>Preamble</h2><p>{preamble}</p></header>
<article data-number="1"><h2>Article 1</h2><p>{a1}</p></article>
<article data-number="2"><h2>Article 2</h2><p>{a2}</p><ol><li>{a2b}</li></ol></article>
</body></html>"""


def _register(cache: Path, name: str, version: str, files: dict[str, str | bytes]) -> Path:
    """Lay out an unpacked package and record it in the AptCache manifest (what a real fetch leaves behind)."""
    root = cache / "apt" / "unpacked" / f"{name}@bookworm"
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
    manifest_path = cache / "apt" / "packages.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[f"{name}/bookworm"] = {"version": version, "suite": "bookworm", "root": str(root), "deb": f"{name}.deb"}
    manifest_path.write_text(json.dumps(manifest))
    return root


def _ddtp_stanza(pkg: str, md5: str, lang: str, short: str, long: str) -> str:
    return f"Package: {pkg}\nDescription-md5: {md5}\nDescription-{lang}: {short}\n {long}\n\n"


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    c = tmp_path / "cache"
    for lang, pkg in (("en-US", "libreoffice-help-en-us"), ("fr", "libreoffice-help-fr")):
        bodies = {"en-US": ("Creating a Basic Dialog", "Choose Tools - Macros - Organize Dialogs."),
                  "fr": ("Création d'une boîte de dialogue", "Choisissez Outils - Macros - Gérer les boîtes.")}
        title, body = bodies[lang]
        files = {f"usr/share/libreoffice/help/{lang}/text/sbasic/guide/create_dialog.html":
                 LO_PAGE.format(lang=lang, title=title, body=body),
                 f"usr/share/libreoffice/help/{lang}/text/shared/main0108.html":
                 LO_PAGE.format(lang=lang, title=f"Help {lang}", body=f"Help menu page in {lang} with enough text."),
                 f"usr/share/libreoffice/help/{lang}/noscript.html": LO_PAGE.format(lang=lang, title="x", body="x")}
        if lang == "fr":
            files[f"usr/share/libreoffice/help/{lang}/text/shared/empty.html"] = LO_PAGE.format(
                lang=lang, title="", body="")
        _register(c, pkg, "4:7.4.7-1", files)
    en_man = _register(c, "manpages-dev", "6.03-2", {
        "usr/share/man/man3/crypt.3": MAN.format(name="NAME", what="password hashing",
                                                 body="The crypt function performs password hashing."),
        "usr/share/man/man3/crypt_r.3": ".so man3/crypt.3\n"})
    os.symlink("crypt.3", en_man / "usr/share/man/man3/encrypt.3")
    _register(c, "manpages", "6.03-2", {})
    _register(c, "manpages-fr", "4.18.1-1", {
        "usr/share/man/fr/man3/crypt.3": MAN.format(name="NOM", what="hachage de mot de passe",
                                                    body="La fonction crypt hache un mot de passe.")})
    _register(c, "manpages-fr-dev", "4.18.1-1", {})
    _register(c, "fortunes-min", "1:1.99.1-7.3", {
        "usr/share/games/fortunes/fortunes": "Fortune one is here.\n%\nFortune two is there.\n%\n",
        "usr/share/games/fortunes/fortunes.u8": "Fortune one is here.\n%\nFortune two is there.\n%\n",
        "usr/share/games/fortunes/fortunes.dat": b"\x00\x01binary"})
    _register(c, "fortunes", "1:1.99.1-7.3", {})
    lists = c / "apt" / "lists"
    lists.mkdir(parents=True)
    for suite in ("bookworm", "trixie"):
        (lists / f"deb.debian.org_debian_dists_{suite}_InRelease").write_text(
            f"Origin: Debian\nSuite: {suite}\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n")
        (lists / f"deb.debian.org_debian_dists_{suite}_main_i18n_Translation-en").write_text(
            _ddtp_stanza("0ad", "d943", "en", "real-time strategy game", "0 A.D. is a real-time strategy game.")
            + _ddtp_stanza("2048", "aa11", "en", "puzzle game", "Slide tiles on a grid."))
        (lists / f"deb.debian.org_debian_dists_{suite}_main_i18n_Translation-fr").write_text(
            _ddtp_stanza("0ad", "d943", "fr", "jeu de stratégie", "0 A.D. est un jeu de stratégie en temps réel."))
    decl = c / "npm" / "udhr-6.0.0" / "declaration"
    decl.mkdir(parents=True)
    (decl / "eng.html").write_text(UDHR.format(
        code="eng", iso="eng", lang="en", name="English", title="Universal Declaration of Human Rights",
        preamble="Whereas recognition of the inherent dignity", a1="All human beings are born free.",
        a2="Everyone is entitled to all the rights.", a2b="Furthermore, no distinction shall be made."))
    (decl / "fra.html").write_text(UDHR.format(
        code="fra", iso="fra", lang="fr", name="French", title="Déclaration universelle des droits de l'homme",
        preamble="Considérant que la reconnaissance", a1="Tous les êtres humains naissent libres.",
        a2="Chacun peut se prévaloir de tous les droits.", a2b="De plus, il ne sera fait aucune distinction."))
    (decl / "068.html").write_text(UDHR.format(
        code="068", iso="fra", lang="fr", name="French (068)", title="x", preamble="x", a1="Variante.", a2="x",
        a2b="x"))
    return c


def _records(out: Path, source: str) -> list[dict]:
    return [r for p in sorted((out / source).glob("*.jsonl.zst")) for r in read_jsonl_zst(p)]


SOURCES = ["libreoffice-help", "manpages", "ddtp", "fortunes", "udhr"]


@pytest.mark.skipif(not groff_available(), reason="groff is not installed (apt-get install groff-base)")
def test_build_corpus_offline(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    cfg = CorpusConfig(cache_dir=str(cache), out=str(out), sources=SOURCES, languages=["en", "fr-FR"])
    m = build_corpus(cfg, workers=2)

    lo = _records(out, "libreoffice-help")
    assert sorted(p.name for p in (out / "libreoffice-help").iterdir()) == ["en-00000.jsonl.zst",
                                                                          "fr-00000.jsonl.zst"]
    assert all(set(r) == FIELDS for r in lo)
    by_id = {r["id"]: r for r in lo}
    en = by_id["libreoffice-help:en:text/sbasic/guide/create_dialog.html"]
    fr = by_id["libreoffice-help:fr:text/sbasic/guide/create_dialog.html"]
    assert en["align_group"] == fr["align_group"] == "libreoffice-help:text/sbasic/guide/create_dialog.html"
    assert fr["text"] == "Création d'une boîte de dialogue\n\nChoisissez Outils - Macros - Gérer les boîtes."
    assert fr["uri"] == "usr/share/libreoffice/help/fr/text/sbasic/guide/create_dialog.html"
    assert (fr["package"], fr["package_version"], fr["lang_hint"]) == ("libreoffice-help-fr", "4:7.4.7-1", "fr")
    assert len(lo) == 4  # noscript.html excluded, the empty page skipped
    assert m["sources"]["libreoffice-help"]["skipped"] == {"empty": 1}

    man = {r["id"]: r for r in _records(out, "manpages")}
    assert set(man) == {"manpages:en:man3/crypt.3", "manpages:fr:man3/crypt.3"}  # alias and symlink skipped
    assert man["manpages:fr:man3/crypt.3"]["title"] == "crypt - hachage de mot de passe"
    assert m["sources"]["manpages"]["skipped"] == {"alias": 1}

    ddtp = {r["id"]: r for r in _records(out, "ddtp")}
    assert set(ddtp) == {"ddtp:en:d943", "ddtp:en:aa11", "ddtp:fr:d943"}
    assert ddtp["ddtp:fr:d943"]["align_group"] == ddtp["ddtp:en:d943"]["align_group"] == "ddtp:d943"
    assert m["sources"]["ddtp"]["skipped"] == {"duplicate": 3}  # the same descriptions in trixie

    fortunes = _records(out, "fortunes")
    assert len(fortunes) == 1 and fortunes[0]["align_group"] is None
    assert fortunes[0]["text"] == "Fortune one is here.\n\nFortune two is there."

    udhr = {r["lang_hint"]: r for r in _records(out, "udhr")}
    assert udhr["fr"]["text"].startswith("Déclaration universelle des droits de l'homme\n\nConsidérant")
    assert "Article" not in udhr["en"]["text"]

    # manifest: counts and bytes agree with the shards, versions recorded
    assert m["total_docs"] == sum(len(_records(out, s)) for s in SOURCES) == 12
    assert m["total_bytes"] == sum(len(r["text"].encode()) for s in SOURCES for r in _records(out, s))
    assert m["sources"]["libreoffice-help"]["packages"] == {"libreoffice-help-en-us": "4:7.4.7-1",
                                                            "libreoffice-help-fr": "4:7.4.7-1"}
    assert m["sources"]["ddtp"]["packages"]["ddtp:bookworm:Translation-fr"].startswith("bookworm@Sat, 11 Jul")
    assert m["languages"]["fr"]["docs"] == 5
    assert json.loads((out / "MANIFEST.json").read_text())["total_docs"] == 12
    assert not list(out.glob("*.partial"))


def test_second_build_reads_page_cache_and_limit(cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    cfg = CorpusConfig(cache_dir=str(cache), out=str(out), sources=["libreoffice-help"], languages=["en", "fr"])
    build_corpus(cfg, workers=1)
    page = next((cache / "apt" / "unpacked").glob("libreoffice-help-fr@*")) / \
        "usr/share/libreoffice/help/fr/text/sbasic/guide/create_dialog.html"
    page.write_text(LO_PAGE.format(lang="fr", title="CHANGED", body="changed text that must not appear"))
    build_corpus(cfg, workers=1)
    texts = [r["text"] for r in _records(out, "libreoffice-help")]
    assert len(texts) == 4 and not any("CHANGED" in t for t in texts)  # same package version: cached pages

    limited = CorpusConfig(cache_dir=str(cache), out=str(tmp_path / "small"), sources=["libreoffice-help"],
                           languages=["en", "fr"], max_pages_per_source=1)
    m = build_corpus(limited, workers=1)
    recs = _records(tmp_path / "small", "libreoffice-help")
    assert [r["lang_hint"] for r in recs] == ["en", "fr"]
    assert recs[0]["align_group"] == recs[1]["align_group"]  # the first page is the same page in each language
    assert m["total_docs"] == 2


def test_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown corpus source"):
        build_corpus(CorpusConfig(cache_dir=str(tmp_path), out=str(tmp_path / "o"), sources=["wikipedia"]))


def test_udhr_labelled_articles(cache: Path) -> None:
    texts = udhr_labelled(cache, ["en", "fr", "ja"])
    assert texts == [
        ("en", "All human beings are born free."),
        ("en", "Everyone is entitled to all the rights.\n\nFurthermore, no distinction shall be made."),
        ("fr", "Tous les êtres humains naissent libres."),  # "fra" preferred over the numbered variant 068
        ("fr", "Chacun peut se prévaloir de tous les droits.\n\nDe plus, il ne sera fait aucune distinction."),
    ]
