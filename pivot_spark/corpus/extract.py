"""Clean text out of the formats the Debian documentation ships: HTML (hand-written or generated from DocBook),
Mallard XML, groff, fortune files and DDTP ``Translation-*`` stanzas.

Every extractor returns plain text with markup, scripts and navigation removed, whitespace collapsed inside a
line, but line and paragraph breaks kept: language identification later works per line, so a paragraph or a
heading must stay on a line of its own and must not be glued to its neighbour. These are pure functions (the
groff one runs the ``groff`` binary) so they can be unit-tested on inline samples.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

# -- whitespace -------------------------------------------------------------------------------------------------
_INLINE_WS = re.compile(r"[^\S\n]+")
_BLANK_RUN = re.compile(r"\n{3,}")


def _strip_controls(text: str) -> str:
    """Drop C0/C1 control characters except newline and tab (groff and old HTML leave some behind)."""
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def collapse_text(text: str) -> str:
    """Collapse whitespace inside each line, strip lines, keep at most one blank line between paragraphs."""
    text = _strip_controls(text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " "))
    lines = [_INLINE_WS.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


# -- tree walking (HTML, Mallard) ------------------------------------------------------------------------
PARA, LINE, CELL = "\n\n", "\n", " "


def _names(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


@dataclass(frozen=True)
class Layout:
    """How a markup vocabulary maps to text: which elements break paragraphs or lines, which are dropped."""

    paragraph: frozenset[str]
    line: frozenset[str]
    drop: frozenset[str]
    pre: frozenset[str] = frozenset()
    cell: frozenset[str] = frozenset()


HTML_LAYOUT = Layout(
    paragraph=_names("p h1 h2 h3 h4 h5 h6 pre table ul ol dl blockquote section article figure address hr "
                     "main"),
    line=_names("div li tr br dt dd caption figcaption summary details center"),
    drop=_names("script style noscript nav header footer aside form button input select textarea iframe "
                "object embed svg template head"),
    pre=frozenset({"pre"}),
    cell=frozenset({"td", "th"}),
)

MALLARD_LAYOUT = Layout(
    paragraph=_names("p title subtitle section list steps terms tree table code screen example quote note "
                     "figure synopsis listing desc"),
    line=_names("item tr br cite"),
    drop=_names("info comment links media credit license revision include"),
    pre=frozenset({"code", "screen"}),
    cell=frozenset({"td", "th"}),
)

def _local(tag: object) -> str:
    """Element local name without namespace; '' for comments and processing instructions."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _walk(el: etree._Element, layout: Layout, out: list[str], pre: bool) -> None:
    name = _local(el.tag)
    if name and name not in layout.drop and el.get("hidden") is None:
        brk = PARA if name in layout.paragraph else LINE if name in layout.line else CELL if name in layout.cell \
            else ""
        in_pre = pre or name in layout.pre
        out.append(brk)
        if el.text:
            out.append(el.text if in_pre else el.text.replace("\n", " "))
        for child in el:
            _walk(child, layout, out, in_pre)
        out.append(brk)
    if el.tail:
        out.append(el.tail if pre else el.tail.replace("\n", " "))


def tree_to_text(root: etree._Element, layout: Layout) -> str:
    """Render an element tree as text following ``layout`` (elements in ``layout.drop`` keep their tail)."""
    out: list[str] = []
    _walk(root, layout, out, pre=False)
    return collapse_text("".join(out))


def _title_of(root: etree._Element, path: str) -> str:
    found = root.xpath(path)
    if not found:
        return ""
    el = found[0]
    return collapse_text(" ".join(el.itertext()) if isinstance(el, etree._Element) else str(el)).replace("\n", " ")


_UTF8_HTML = lxml_html.HTMLParser(encoding="utf-8")


def parse_html(data: bytes | str) -> lxml_html.HtmlElement:
    """Parse HTML; bytes are read as UTF-8 when they decode as such (the Debian documentation is UTF-8, and
    libxml2 would otherwise assume Latin-1 for pages without a charset declaration)."""
    if isinstance(data, bytes):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return lxml_html.document_fromstring(data)
        return lxml_html.document_fromstring(data, parser=_UTF8_HTML)
    return lxml_html.document_fromstring(data.encode("utf-8"), parser=_UTF8_HTML)


def html_to_text(data: bytes | str, *, content_xpaths: Iterable[str] = (), drop_xpaths: Iterable[str] = ()
                 ) -> tuple[str, str]:
    """Return ``(title, text)`` of an HTML page.

    ``content_xpaths`` are tried in order to find the page's own content (e.g. LibreOffice's ``DisplayArea``);
    the body is used when none matches. ``drop_xpaths`` remove site chrome (navigation headers/footers of
    DocBook-generated HTML, tables of contents) that tag names alone do not identify.
    """
    if not data.strip():
        return "", ""
    doc = parse_html(data)
    title = _title_of(doc, "//title")
    root = None
    for xp in content_xpaths:
        found = doc.xpath(xp)
        if found:
            root = found[0]
            break
    if root is None:
        body = doc.find("body")
        root = body if body is not None else doc
    for xp in drop_xpaths:
        for el in root.xpath(xp):
            if el is not root and el.getparent() is not None:
                el.drop_tree()
    return title, tree_to_text(root, HTML_LAYOUT)


_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=True, huge_tree=True)


def mallard_to_text(data: bytes) -> tuple[str, str]:
    """Return ``(title, text)`` of a Mallard ``.page`` file (GNOME help); ``<info>`` (credits, links) is dropped."""
    root = etree.fromstring(data, _XML_PARSER)
    if root is None:
        return "", ""
    title = _title_of(root, "./*[local-name()='title']")
    return title, tree_to_text(root, MALLARD_LAYOUT)


# -- groff ----------------------------------------------------------------------------------------------------
class GroffError(RuntimeError):
    """groff is missing or failed on a page; the message names the page."""


def groff_available() -> bool:
    return shutil.which("groff") is not None


_SO_LINE = re.compile(rb"^\.so\s+(\S+)\s*$")


def man_redirect(source: bytes) -> str | None:
    """If a manual page is only a ``.so other/page`` include, return the target (such pages are aliases)."""
    lines = [ln for ln in source.strip().splitlines() if ln.strip() and not ln.startswith((b'.\\"', b"'\\\""))]
    if len(lines) == 1:
        m = _SO_LINE.match(lines[0].strip())
        if m:
            return m.group(1).decode("utf-8", "replace")
    return None


GROFF_ARGS = ("-mandoc", "-Tutf8", "-t", "-Kutf-8", "-Wall", "-rLL=300n", "-rHY=0", "-dAD=l", "-rcR=1",
              "-P-cbou")


def render_groff(source: bytes, *, name: str = "<stdin>", timeout: float = 60.0) -> str:
    """Render a manual page with ``groff -mandoc -Tutf8`` into plain text.

    Lines are set 300 columns wide with hyphenation off so a paragraph mostly stays on one line (better for
    per-line language ID); grotty's SGR and overstrike sequences are disabled. The running header and footer
    (``LS(1) ... LS(1)``) are removed.
    """
    if not groff_available():
        raise GroffError("groff is not installed: apt-get install groff-base (needed to render manual pages)")
    env = {**os.environ, "GROFF_NO_SGR": "1", "LC_ALL": "C.UTF-8"}
    try:
        proc = subprocess.run(["groff", *GROFF_ARGS], input=source, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise GroffError(f"groff timed out on {name}") from e
    if proc.returncode != 0:
        raise GroffError(f"groff failed on {name}: {proc.stderr.decode('utf-8', 'replace')[-500:]}")
    text = proc.stdout.decode("utf-8", "replace")
    lines = text.strip("\n").split("\n")
    if len(lines) > 2:
        lines = lines[1:-1]  # running header and footer
    return collapse_text("\n".join(lines))


# -- fortune files ----------------------------------------------------------------------------------------------
def decode_text(data: bytes) -> str:
    """UTF-8, falling back to Latin-1 for old 8-bit files (some fortune files are)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_fortunes(text: str) -> list[str]:
    """Split a fortune file on its ``%`` separator lines into cleaned, non-empty fortunes."""
    parts = re.split(r"(?m)^%\s*$", text)
    return [f for f in (collapse_text(p) for p in parts) if f]


def chunk_fortunes(fortunes: list[str], max_chars: int) -> list[str]:
    """Group consecutive fortunes into documents of at most ``max_chars`` (a single longer fortune stays whole).

    One fortune is a line or two: too short to be a useful document on its own, while a whole file can be
    megabytes. Fortunes inside a chunk are separated by a blank line.
    """
    chunks: list[str] = []
    cur: list[str] = []
    size = 0
    for f in fortunes:
        if cur and size + len(f) + 2 > max_chars:
            chunks.append("\n\n".join(cur))
            cur, size = [], 0
        cur.append(f)
        size += len(f) + 2
    if cur:
        chunks.append("\n\n".join(cur))
    return chunks


# -- DDTP Translation-* files -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Description:
    package: str
    md5: str
    lang: str  # the code of the Description-<lang> field, e.g. "fr", "zh_CN"
    text: str


def format_description(lines: list[str]) -> str:
    """Turn a Debian extended description (short line + continuation lines) into text.

    Continuation lines starting with one space are wrapped paragraph text and are joined; lines starting with
    two or more spaces are verbatim; `` .`` is a paragraph break (Debian policy 5.6.13).
    """
    short, body = lines[0].strip(), lines[1:]
    paras: list[str] = [short, ""]
    cur: list[str] = []

    def flush() -> None:
        if cur:
            paras.append(" ".join(cur))
            cur.clear()

    for raw in body:
        line = raw[1:] if raw.startswith(" ") else raw
        if line.strip() == ".":
            flush()
            paras.append("")
        elif line.startswith((" ", "\t")):
            flush()
            paras.append(line.strip())
        else:
            cur.append(line.strip())
    flush()
    return collapse_text("\n".join(paras))


def parse_ddtp(text: str) -> Iterator[Description]:
    """Yield the descriptions of a ``Translation-<lang>`` file (stanzas of Package, Description-md5,
    Description-<lang>). Stanzas missing a field are skipped: the file is machine-generated and complete."""
    for stanza in re.split(r"\n\s*\n", text):
        package = md5 = lang = None
        desc: list[str] = []
        in_desc = False
        for line in stanza.split("\n"):
            if in_desc and line.startswith((" ", "\t")):
                desc.append(line)
                continue
            in_desc = False
            key, _, value = line.partition(":")
            if key == "Package":
                package = value.strip()
            elif key == "Description-md5":
                md5 = value.strip()
            elif key.startswith("Description-"):
                lang = key[len("Description-"):]
                desc = [value]
                in_desc = True
        if package and md5 and lang and desc:
            body = format_description(desc)
            if body:
                yield Description(package, md5, lang, body)
