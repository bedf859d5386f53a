"""Bilingual dictionaries from Debian and PyPI packages, parsed into one small data model.

Every source ends up as :class:`Entry` rows (headword, part of speech, senses with translations and, for
WikDict, the source-language definitions kept apart from the translations). Keeping definitions apart matters:
WikDict prints a sense's translations and then its English definition on the next line, and nested senses
appear as `` N.`` lines or appended to the translation line, so a line-by-line reader takes definitions for
translations (data-sources.md). Formats:

- dictd: ``<name>.index`` (``headword\\tB64offset\\tB64length``) + ``<name>.dict.dz`` (dictzip, gzip-readable);
- WikDict (FreeDict eng-zho/eng-jpn/eng-spa/eng-rus): ``headword /ipa/ <pos>``, translations, definition;
- FreeDict plain (eng-fra, fra-eng, spa-eng, rus-eng) and Ding (eng-deu, deu-eng): translation lines only,
  with ``<pos>`` / ``[domain]`` / ``{ref}`` annotations, ``see:`` / ``Synonym:`` / ``Note:`` lines;
- EDICT (JMdict): ``KANJI;KANJI [KANA;KANA] /(pos) (1) gloss/gloss/(2) gloss/(P)/EntL.../`` in EUC-JP;
- CC-CEDICT: ``TRAD SIMP [pinyin] /gloss/gloss/`` (UTF-8, ``#`` comments).
"""

from __future__ import annotations

import gzip
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(B64)}

NOUN, VERB, ADJ = "n", "v", "adj"


@dataclass(frozen=True)
class Sense:
    translations: tuple[str, ...]
    definitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    headword: str
    pos: str | None  # NOUN, VERB, ADJ, "other", or None when the source gives no part of speech
    senses: tuple[Sense, ...]
    tags: str | None = None  # the source's own part-of-speech label ("n", "preposition", "n, fem", ...)

    def translations(self) -> list[str]:
        return [t for s in self.senses for t in s.translations]


# -- dictd container ------------------------------------------------------------------------------------------
def b64_number(s: str) -> int:
    """dictd's base-64 numbers: big-endian digits over A-Za-z0-9+/ (not RFC 4648 padding-based base64)."""
    n = 0
    for ch in s:
        if ch not in _B64_VALUE:
            raise ValueError(f"not a dictd base-64 digit: {ch!r} in {s!r}")
        n = n * 64 + _B64_VALUE[ch]
    return n


def read_dictd(prefix: str | Path) -> Iterator[tuple[str, str]]:
    """(headword, article text) for every index line of ``prefix.index`` / ``prefix.dict.dz``, skipping the
    ``00database*`` metadata articles."""
    prefix = Path(prefix)
    index = prefix.with_name(prefix.name + ".index")
    data_path = prefix.with_name(prefix.name + ".dict.dz")
    if not data_path.exists():
        data_path = prefix.with_name(prefix.name + ".dict")
    if not index.exists() or not data_path.exists():
        raise FileNotFoundError(f"dictd files {index} / {data_path} missing: is the package unpacked?")
    raw = data_path.read_bytes()
    if data_path.suffix == ".dz":  # dictzip is gzip with an extra header field
        raw = gzip.decompress(raw)
    with open(index, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                raise ValueError(f"{index}:{n}: expected 'headword<TAB>offset<TAB>length', got {line!r}")
            head, off, length = parts[0], b64_number(parts[1]), b64_number(parts[2])
            if head.startswith("00database") or head.startswith("00-database"):
                continue
            yield head, raw[off:off + length].decode("utf-8")


# -- normalisation ----------------------------------------------------------------------------------------------
_STRESS = {"\u0301", "\u0300"}  # stress marks WikDict puts on Russian vowels


def strip_stress(s: str) -> str:
    """Remove stress accents from Cyrillic letters only: French é/è keep theirs, й/ё are letters."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFD", s):
        if ch in _STRESS and out and "\u0400" <= out[-1] <= "\u04ff":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}|<[^<>]*>")


def clean_term(s: str) -> str:
    """A translation or gloss without bracketed annotations, stress marks and surrounding blanks."""
    prev = None
    while prev != s:  # nested brackets: peel from the inside
        prev, s = s, _BRACKETED.sub(" ", s)
    s = strip_stress(s)
    return re.sub(r"\s+", " ", s).strip(" .;,")


def english_key(gloss: str) -> tuple[str, bool]:
    """(normalised English gloss, looks like a verb) : ``"to run (fast)"`` -> ``("run", True)``."""
    g = clean_term(gloss).lower()
    if g.startswith("to "):
        return g[3:].strip(), True
    return g, False


def split_list(line: str, seps: str = ",;") -> list[str]:
    """Comma/semicolon separated translations, separators inside brackets kept."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in line:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth = max(0, depth - 1)
        if ch in seps and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [t for t in (clean_term(x) for x in out) if t]


_NOUN_TAGS = {"n", "noun", "masc", "fem", "neut", "nm", "nf"}
_VERB_TAGS = {"v", "vt", "vi", "vr", "verb", "vti", "trans", "intr", "refl"}
_ADJ_TAGS = {"adj", "adjective", "a"}


def normalize_pos(tags: str | None) -> str | None:
    """``"n, fem"`` -> NOUN, ``"v, trans"`` -> VERB, ``"adj"`` -> ADJ, ``"adv"`` -> "other", None -> None.
    Proper nouns (``pn``, ``prop``) are "other": the task wants common words."""
    if tags is None or not tags.strip():
        return None
    parts = [p.strip().lower().rstrip(".") for p in re.split(r"[,\s]+", tags) if p.strip()]
    if any(p in ("pn", "prop", "propn", "name") for p in parts):
        return "other"
    for p in parts:
        if p in _VERB_TAGS and p not in ("trans", "intr", "refl"):
            return VERB
        if p in _NOUN_TAGS - {"masc", "fem", "neut"}:
            return NOUN
        if p in _ADJ_TAGS:
            return ADJ
    if any(p in ("masc", "fem", "neut") for p in parts):
        return NOUN
    if any(p in ("trans", "intr", "refl") for p in parts):
        return VERB
    return "other"


def header_word(line: str, fallback: str) -> str:
    """The headword as the article spells it (dictd indexes lower-case theirs: German nouns need the case)."""
    m = re.match(r"^(.*?)(?:\s+/|\s+<|$)", line.strip())
    return m.group(1).strip() if m and m.group(1).strip() else fallback


def parse_header(line: str) -> str | None:
    """The raw part-of-speech tags of an article's first line (``word /ipa/ /ipa/ <n, fem>``)."""
    m = re.search(r"<([^<>]*)>\s*$", line)
    return m.group(1) if m else None


# -- WikDict ------------------------------------------------------------------------------------------------------
_TOP_SENSE = re.compile(r"^(\d+)\.\s+(.*)$")  # "2. 风筝" at column 0: a sense with translations
_NESTED_ONLY = re.compile(r"^\s+\d+\.\s*$")  # " 3." : a nested sense without translations
_TRAILING_NESTED = re.compile(r"\s+\d+\.\s*$")  # "风筝 2." : the next (nested) sense starts after this line


def parse_wikdict(headword: str, text: str) -> Entry:
    """One WikDict article. A line is a translation line when it is the first line after the header or starts
    a numbered top-level sense at column 0; the line after a translation line or after a bare `` N.`` marker
    is a definition. Trailing `` N.`` markers on a translation line are removed (they open a nested sense
    whose definition follows)."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"empty WikDict article for {headword!r}")
    pos = normalize_pos(parse_header(lines[0]))
    headword = header_word(lines[0], headword)
    senses: list[Sense] = []
    trans: list[str] | None = None
    defs: list[str] = []
    expect_translation = True

    def close() -> None:
        if trans is not None or defs:
            senses.append(Sense(tuple(trans or ()), tuple(defs)))

    for ln in lines[1:]:
        if not ln.strip():
            continue
        top = _TOP_SENSE.match(ln)
        if top:
            close()
            trans, defs = split_list(_TRAILING_NESTED.sub("", top.group(2))), []
            expect_translation = False
        elif _NESTED_ONLY.match(ln):
            close()
            trans, defs = [], []
            expect_translation = False
        elif expect_translation:
            trans, defs = split_list(_TRAILING_NESTED.sub("", ln)), []
            expect_translation = False
        else:
            defs.append(ln.strip())
    close()
    return Entry(headword, pos, tuple(senses), parse_header(lines[0]))


# -- FreeDict plain and Ding ----------------------------------------------------------------------------------------
_SKIP_LINE = re.compile(r"^\s*(see:|synonyms?:|note:|\"|antonyms?:)", re.IGNORECASE)


def parse_plain(headword: str, text: str) -> Entry:
    """FreeDict articles without definitions: every line that is not a cross reference, note or example holds
    translations, optionally numbered ``N. ``; per-translation ``<pos>`` tags (Ding) fill in a missing header
    part of speech."""
    lines = text.split("\n")
    raw_pos = parse_header(lines[0]) if lines else None
    headword = header_word(lines[0], headword) if lines else headword
    senses: list[Sense] = []
    inner_pos: list[str | None] = []
    for ln in lines[1:]:
        if not ln.strip() or _SKIP_LINE.match(ln):
            continue
        body = _TOP_SENSE.sub(r"\2", ln.strip())
        inner_pos += [normalize_pos(t) for t in re.findall(r"<([^<>]*)>", body)]
        items = split_list(body)
        if items:
            senses.append(Sense(tuple(items)))
    pos = normalize_pos(raw_pos)
    if pos is None:
        known = {p for p in inner_pos if p}
        pos = known.pop() if len(known) == 1 else None
    return Entry(headword, pos, tuple(senses), raw_pos)


# -- EDICT ------------------------------------------------------------------------------------------------------------
_JM_POS = re.compile(
    r"^(adj-[a-z]+|adv(-to)?|aux(-v|-adj)?|conj|cop(-da)?|ctr|exp|int|n(-adv|-pr|-pref|-suf|-t)?|num|pn|pref|prt"
    r"|suf|unc|v1(-s)?|v2[a-z]-[sk]|v4[a-z]|v5[a-z](-s)?|v5aru|v5uru|vk|vn|vr|vs(-c|-i|-s)?|vt|vi|vz)$")


@dataclass(frozen=True)
class EdictSense:
    pos_tags: tuple[str, ...]
    glosses: tuple[str, ...]


@dataclass(frozen=True)
class EdictEntry:
    forms: tuple[str, ...]  # kanji forms then kana readings
    senses: tuple[EdictSense, ...] = field(default_factory=tuple)


def _forms(s: str) -> list[str]:
    return [re.sub(r"\([^)]*\)", "", f).strip() for f in s.split(";") if f.strip()]


def parse_edict_line(line: str) -> EdictEntry | None:
    """One EDICT/EDICT2 line; None for the header line. Part-of-speech groups carry over to the following
    numbered senses until a new group appears, as in JMdict."""
    line = line.strip()
    m = re.match(r"^(?P<kanji>[^\s\[/]+)(?:\s+\[(?P<kana>[^\]]+)\])?\s+/(?P<body>.*)/$", line)
    if not m or not m.group("body").strip("/ "):
        raise ValueError(f"not an EDICT line: {line[:80]!r}")
    forms = _forms(m.group("kanji")) + (_forms(m.group("kana")) if m.group("kana") else [])
    if m.group("body").startswith("EDICT"):  # the file's header line: "　？？？ /EDICT, EDICT_SUB(P), ..."
        return None
    senses: list[EdictSense] = []
    pos: tuple[str, ...] = ()
    glosses: list[str] = []
    started = False
    for item in m.group("body").split("/"):
        item = item.strip()
        if not item or item == "(P)" or re.fullmatch(r"EntL\d+X?", item):
            continue
        new_sense = False
        new_pos: tuple[str, ...] | None = None
        while True:
            g = re.match(r"^\(([^()]*)\)\s*", item)
            if not g:
                break
            content = g.group(1)
            tags = tuple(t.strip() for t in content.split(","))
            if content.isdigit():
                new_sense = True
            elif all(_JM_POS.match(t) for t in tags):
                new_pos = tags
            else:  # misc tags (uk, abbr, col, ...) or a gloss that starts with a parenthesis
                if not all(re.fullmatch(r"[a-zA-Z0-9\-]+", t) for t in tags):
                    break
            item = item[g.end():]
        if (new_sense or new_pos is not None) and started and glosses:
            senses.append(EdictSense(pos, tuple(glosses)))
            glosses = []
        if new_pos is not None:
            pos = new_pos
        if item:
            glosses.append(item)
            started = True
    if glosses:
        senses.append(EdictSense(pos, tuple(glosses)))
    return EdictEntry(tuple(forms), tuple(senses))


def edict_pos(tags: Iterable[str], is_verb_gloss: bool) -> str | None:
    """Part of speech of an English gloss under JMdict tags: verbs need a verb tag and a ``to ...`` gloss."""
    tags = set(tags)
    if is_verb_gloss:
        return VERB if any(t.startswith("v") for t in tags) else None
    if any(t.startswith("adj-") for t in tags):
        return ADJ
    if tags & {"n", "n-adv", "n-t"}:
        return NOUN
    return None


def read_edict(path: str | Path, rejected: list[str] | None = None, encoding: str | None = None
               ) -> Iterator[EdictEntry]:
    """EDICT is EUC-JP (``/usr/share/edict/edict``); ``edict.utf8`` files are read as UTF-8. Malformed lines
    (e.g. an entry without glosses) are skipped and appended to ``rejected`` as ``"line N: reason"``."""
    path = Path(path)
    enc = encoding or ("utf-8" if path.suffix == ".utf8" else "euc_jp")
    with open(path, encoding=enc, errors="strict") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = parse_edict_line(line)
            except ValueError as err:
                if rejected is None:
                    raise
                rejected.append(f"line {n}: {err}")
                continue
            if e is not None:
                yield e


# -- CC-CEDICT --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CedictEntry:
    traditional: str
    simplified: str
    pinyin: str
    glosses: tuple[str, ...]


def parse_cedict_line(line: str) -> CedictEntry | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    m = re.match(r"^(\S+)\s+(\S+)\s+\[([^\]]*)\]\s+/(.*)/$", line)
    if not m:
        raise ValueError(f"not a CC-CEDICT line: {line[:80]!r}")
    return CedictEntry(m.group(1), m.group(2), m.group(3), tuple(g for g in m.group(4).split("/") if g))


def read_cedict(path: str | Path, rejected: list[str] | None = None) -> Iterator[CedictEntry]:
    """CC-CEDICT lines; malformed ones are skipped into ``rejected`` (or raise when it is None)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                e = parse_cedict_line(line)
            except ValueError as err:
                if rejected is None:
                    raise
                rejected.append(f"line {n}: {err}")
                continue
            if e is not None:
                yield e


def cedict_header(path: str | Path) -> dict[str, str]:
    """The ``#! key=value`` lines (version, date, entries) of a CC-CEDICT file, for provenance."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[str, str] = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            if line.startswith("#! ") and "=" in line:
                k, v = line[3:].strip().split("=", 1)
                out[k] = v
    return out
