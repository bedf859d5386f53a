"""Extractors of the Debian documentation formats, on small inline samples (offline, fast)."""

from __future__ import annotations

import pytest

from pivot_spark.corpus.debian import DOCBOOK_HTML_CHROME, LIBREOFFICE_CONTENT
from pivot_spark.corpus.extract import (
    chunk_fortunes,
    collapse_text,
    decode_text,
    format_description,
    groff_available,
    html_to_text,
    mallard_to_text,
    man_redirect,
    parse_ddtp,
    parse_fortunes,
    render_groff,
)

LIBREOFFICE_PAGE = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>L'AutoCorrection a été activée</title>
<script>var x = "script text";</script><style>p { color: red }</style></head>
<body>
<header id="TopLeftHeader"><a href="x"><p>Aide LibreOffice 7.4</p></a></header>
<aside class="leftside"><div id="Index">Index  🔎︎ </div></aside>
<div id="DisplayArea">
<h1 id="hd_1">L'AutoCorrection   a été
  activée</h1>
<p class="paragraph">Le texte a été corrigé par l'<a href="a.html">AutoCorrection</a> pour que les
guillemets soient remplacés.</p>
<p>Choisissez <span class="menuitem">Outils - </span><span hidden="true" class="WRITER">Writer only - </span>
<span class="menuitem">Options d'autocorrection</span>.</p>
<table><tr><td>Cell one</td><td>Cell two</td></tr><tr><td>Row two</td></tr></table>
<pre>line one
    line two</pre>
<!-- a comment --> Tail after comment.
</div>
<footer>Footer text</footer>
</body></html>
"""


def test_collapse_text_keeps_line_and_paragraph_breaks() -> None:
    raw = "  a \t b  \r\n\n\n\n c\u00a0 d \x07\n"
    assert collapse_text(raw) == "a b\n\nc d"


def test_html_libreoffice_content_only_without_chrome() -> None:
    title, text = html_to_text(LIBREOFFICE_PAGE.encode("utf-8"), content_xpaths=LIBREOFFICE_CONTENT)
    assert title == "L'AutoCorrection a été activée"
    lines = text.split("\n")
    assert lines[0] == "L'AutoCorrection a été activée"  # heading collapsed onto one line
    assert ("Le texte a été corrigé par l'AutoCorrection pour que les guillemets soient remplacés." in lines)
    assert "Choisissez Outils - Options d'autocorrection." in lines  # hidden alternative dropped, inline kept
    assert "Cell one Cell two" in lines and "Row two" in lines
    assert "line one" in lines and "line two" in lines
    assert "Tail after comment." in text
    for chrome in ("script text", "color: red", "Aide LibreOffice", "Index", "Footer text", "a comment"):
        assert chrome not in text
    # paragraphs are separated by a blank line, so headings never glue onto their neighbours
    assert "\n\nLe texte" in text


def test_html_utf8_without_charset_is_not_mojibake() -> None:
    _, text = html_to_text("<html><body><p>すべての人間は、生まれながらにして自由</p></body></html>".encode())
    assert text == "すべての人間は、生まれながらにして自由"


def test_html_docbook_navigation_dropped() -> None:
    page = b"""<html><head><title>Chapter 2. System Requirements</title></head><body>
    <div id="banner"><a>Download the ebook</a></div>
    <div class="navheader"><table><tr><td>Prev</td><td>Next</td></tr></table></div>
    <div class="chapter"><div class="titlepage"><h1 class="title">Chapter 2. System Requirements</h1></div>
    <div class="toc"><p><b>Table of Contents</b></p><dl><dt>2.1. Supported Hardware</dt></dl></div>
    <p>This section contains information about what hardware you need.</p></div>
    <ul class="docnav"><li class="previous"><a>Previous</a></li></ul>
    <div class="navfooter"><hr><table><tr><td>Up</td><td>Home</td></tr></table></div></body></html>"""
    title, text = html_to_text(page, drop_xpaths=DOCBOOK_HTML_CHROME)
    assert title == "Chapter 2. System Requirements"
    assert text == ("Chapter 2. System Requirements\n\nThis section contains information about what hardware "
                    "you need.")


def test_mallard_page() -> None:
    page = """<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" xmlns:its="http://www.w3.org/2005/11/its" type="topic" id="a11y-icon">
  <info>
    <link type="guide" xref="a11y#desktop"/>
    <credit type="author"><name>Phil Bull</name></credit>
    <desc>Das Barrierefreiheitsmenü ist das Symbol in der oberen Leiste.</desc>
  </info>
  <title>Das Barrierefreiheitsmenü finden</title>
  <p>Das <gui>Barrierefreiheitsmenü</gui> ist der Ort, an dem Sie
  einige Einstellungen aktivieren können. Siehe <link xref="a11y-contrast">Kontrast</link>.</p>
  <steps><item><p>Open the <gui>Activities</gui> overview.</p></item><item><p>Click <key>Ctrl</key>.</p></item></steps>
  <code>gsettings set org.gnome.desktop a11y true
  gsettings get x</code>
</page>""".encode()
    title, text = mallard_to_text(page)
    assert title == "Das Barrierefreiheitsmenü finden"
    lines = text.split("\n")
    assert lines[0] == title
    assert ("Das Barrierefreiheitsmenü ist der Ort, an dem Sie einige Einstellungen aktivieren können. "
            "Siehe Kontrast.") in lines  # inline <link> keeps its text
    assert "Open the Activities overview." in lines and "Click Ctrl." in lines
    assert "gsettings set org.gnome.desktop a11y true" in lines and "gsettings get x" in lines
    assert "Phil Bull" not in text and "oberen Leiste" not in text  # <info> is metadata


MAN_PAGE = rb""".\" Copyright comment
.TH LS 1 "Septembre 2022" "GNU coreutils 9.1" "Commandes de l'utilisateur"
.SH NOM
ls \- Afficher le contenu de r\('epertoires
.SH SYNOPSIS
\fBls\fP [\fIOPTION\fP]... [\fIFICHIER\fP]...
.SH DESCRIPTION
Afficher les informations des FICHIERs (du r\('epertoire courant par d\('efaut).
Trier les entr\('ees alphab\('etiquement si aucune des options
\fB\-cftuvSUX\fR ni \fB\-\-sort\fR n'est indiqu\('ee.
.TP
\fB\-a\fR, \fB\-\-all\fR
ne pas ignorer les entr\('ees d\('ebutant par .
"""


@pytest.mark.skipif(not groff_available(), reason="groff is not installed (apt-get install groff-base)")
def test_render_groff_plain_text_without_header_or_escapes() -> None:
    text = render_groff(MAN_PAGE, name="ls.1")
    lines = text.split("\n")
    assert lines[0] == "NOM" and lines[1] == "ls - Afficher le contenu de répertoires"
    assert "ls [OPTION]... [FICHIER]..." in lines
    # a wrapped source paragraph becomes one line (wide line length, no hyphenation)
    assert ("Afficher les informations des FICHIERs (du répertoire courant par défaut). Trier les entrées "
            "alphabétiquement si aucune des options -cftuvSUX ni --sort n'est indiquée.") in lines
    assert "-a, --all" in lines
    assert "LS(1)" not in text and "GNU coreutils 9.1" not in text  # running header and footer removed
    assert "\x1b" not in text and "\b" not in text


def test_man_redirect() -> None:
    assert man_redirect(b'.\\" alias\n.so man3/printf.3\n') == "man3/printf.3"
    assert man_redirect(MAN_PAGE) is None


def test_fortunes_parse_and_chunk() -> None:
    raw = "Fortune one\n  -- Author\n%\n\n%\nFortune   two\n%\nThree\n"
    fortunes = parse_fortunes(raw)
    assert fortunes == ["Fortune one\n-- Author", "Fortune two", "Three"]
    assert chunk_fortunes(fortunes, 40) == ["Fortune one\n-- Author\n\nFortune two", "Three"]
    assert chunk_fortunes(["x" * 50], 10) == ["x" * 50]  # a long fortune stays whole


def test_decode_text_latin1_fallback() -> None:
    assert decode_text("Müller".encode("latin-1")) == "Müller"
    assert decode_text("Müller".encode()) == "Müller"


DDTP = """Package: 0ad
Description-md5: d943033bedada21853d2ae54a2578a7b
Description-fr: jeu de stratégie en temps réel
 0 A.D. (pronounced "zero ey-dee") est un jeu de stratégie
 en temps réel.
 .
 Fonctionnalités :
   - multijoueur
   - carte aléatoire

Package: 0ad-data
Description-md5: 26581e685027d5ae84824362a4ba59ee
Description-fr: données pour 0 A.D.
 Ce paquet contient les données.

Package: broken
Description-fr: no md5 field
"""


def test_parse_ddtp_stanzas() -> None:
    descs = list(parse_ddtp(DDTP))
    assert [d.package for d in descs] == ["0ad", "0ad-data"]
    d = descs[0]
    assert d.md5 == "d943033bedada21853d2ae54a2578a7b" and d.lang == "fr"
    assert d.text == ('jeu de stratégie en temps réel\n\n0 A.D. (pronounced "zero ey-dee") est un jeu de '
                      "stratégie en temps réel.\n\nFonctionnalités :\n- multijoueur\n- carte aléatoire")


def test_format_description_short_only() -> None:
    assert format_description([" just a summary"]) == "just a summary"
