"""English <-> L lexicons: every dictionary of a language pair folded into look-ups the data set needs.

For each language L the :class:`Lexicon` holds, with L words normalised (Chinese to simplified, Russian
stress marks removed, annotations stripped):

- ``fwd``: English word -> [(pos, L word)] from the English->L dictionary (WikDict, FreeDict, Ding);
- ``rev``: English word -> [(pos, L word)] from the reversed L->English dictionary (a gloss that *is* the
  English word, ``to X`` for verbs);
- ``gloss_words``: L word -> every English word in any gloss of any of its senses (the strict side of the
  distractor check: a distractor whose glosses mention the item's word is rejected);
- ``fwd_inv``: L word -> English headwords listing it as a translation in any sense.

``attested(word, pos, lang)`` is the set both directions agree on: the data-sources.md rule that a
translation needs two independent dictionaries (single-source WikDict pairs are noisy).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from evaluation.dictionaries import (
    ADJ,
    NOUN,
    VERB,
    CedictEntry,
    EdictEntry,
    Entry,
    clean_term,
    edict_pos,
    english_key,
    split_list,
    strip_stress,
)

CJK_LANGS = {"ja", "zh"}
CLOSED_CLASS = {"pronoun", "preposition", "determiner", "conjunction", "particle", "numeral", "article"}
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def to_simplified() -> Callable[[str], str]:
    import opencc

    conv = opencc.OpenCC("t2s")
    return conv.convert


def normalizer(lang: str) -> Callable[[str], str]:
    """How L words are compared across dictionaries."""
    if lang == "zh":
        t2s = to_simplified()
        return lambda w: t2s(clean_term(w))
    if lang == "ru":
        return lambda w: strip_stress(clean_term(w)).replace("ё", "е")
    return clean_term


def is_single_word(word: str, lang: str) -> bool:
    """One word, letters only: no spaces, digits, hyphens or punctuation; CJK words of at most 6 characters."""
    if not word or any(ch.isspace() for ch in word):
        return False
    if lang in CJK_LANGS:
        return len(word) <= 6 and all(ch.isalpha() for ch in word) and not any("a" <= c.lower() <= "z" for c in word)
    return word.isalpha()


@dataclass
class LangLexicon:
    lang: str
    fwd: dict[str, list[tuple[str | None, str]]] = field(default_factory=lambda: defaultdict(list))
    rev: dict[str, list[tuple[str | None, str]]] = field(default_factory=lambda: defaultdict(list))
    gloss_words: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    fwd_inv: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    fwd_sources: list[str] = field(default_factory=list)
    rev_sources: list[str] = field(default_factory=list)

    # -- filling ------------------------------------------------------------------------------------------------
    def add_forward(self, entries: Iterable[Entry], norm: Callable[[str], str], source: str) -> None:
        """English->L articles: every translation of every sense (definitions are never translations)."""
        self.fwd_sources.append(source)
        for e in entries:
            head = e.headword.strip().lower()
            for t in e.translations():
                w = norm(t)
                if w:
                    self.fwd[head].append((e.pos, w))
                    self.fwd_inv[w].add(head)

    def add_reverse(self, entries: Iterable[Entry], norm: Callable[[str], str], source: str) -> None:
        """L->English articles: an English gloss equal to a word attests (entry pos, L headword)."""
        self.rev_sources.append(source)
        for e in entries:
            w = norm(e.headword)
            if not w:
                continue
            for g in e.translations():
                key, verbish = english_key(g)
                pos = e.pos if e.pos is not None else (VERB if verbish else None)
                self._add_gloss(w, key, pos)

    def add_edict(self, entries: Iterable[EdictEntry], source: str) -> None:
        """EDICT senses: the part of speech comes from the sense's JMdict tags and the gloss's ``to``."""
        self.rev_sources.append(source)
        for e in entries:
            for s in e.senses:
                for g in s.glosses:
                    key, verbish = english_key(g)
                    pos = edict_pos(s.pos_tags, verbish)
                    for form in e.forms:
                        self._add_gloss(form, key, pos or "other")

    def add_cedict(self, entries: Iterable[CedictEntry], norm: Callable[[str], str], source: str) -> None:
        """CC-CEDICT has no parts of speech: ``to X`` glosses are verbs, others unknown (match any). One slash
        item may hold several glosses separated by ``;`` (``/big; large/``)."""
        self.rev_sources.append(source)
        for e in entries:
            w = norm(e.simplified)
            for item in e.glosses:
                for g in split_list(item, seps=";"):
                    key, verbish = english_key(g)
                    self._add_gloss(w, key, VERB if verbish else None)

    def _add_gloss(self, word: str, key: str, pos: str | None) -> None:
        if key:
            self.rev[key].append((pos, word))
        self.gloss_words[word].update(_WORD.findall(key))

    # -- queries -------------------------------------------------------------------------------------------------
    def forward(self, en: str, pos: str) -> set[str]:
        return {w for p, w in self.fwd.get(en, ()) if p is None or p == pos}

    def reverse(self, en: str, pos: str) -> set[str]:
        return {w for p, w in self.rev.get(en, ()) if p is None or p == pos}

    def attested(self, en: str, pos: str) -> set[str]:
        """Words both directions list for ``en``, compatible with ``pos`` on both sides and confirmed as
        ``pos`` by at least one side (two dictionaries without parts of speech would let ``like`` the
        preposition attest a translation of ``like`` the verb)."""
        confirmed = ({w for p, w in self.fwd.get(en, ()) if p == pos} |
                     {w for p, w in self.rev.get(en, ()) if p == pos})
        return self.forward(en, pos) & self.reverse(en, pos) & confirmed

    def all_translations(self, en: str) -> set[str]:
        """Every L word any dictionary lists for ``en`` in any sense and part of speech."""
        return {w for _, w in self.fwd.get(en, ())} | {w for _, w in self.rev.get(en, ())}

    def english_of(self, word: str) -> set[str]:
        """Every English word any dictionary relates to the L word ``word``, in any sense."""
        return set(self.fwd_inv.get(word, ())) | set(self.gloss_words.get(word, ()))

    def mentions(self, word: str, en: str) -> bool:
        return en in self.fwd_inv.get(word, ()) or en in self.gloss_words.get(word, ())


@dataclass
class Lexicon:
    """All languages' lexicons plus the English parts of speech (from the WikDict English headwords)."""

    langs: dict[str, LangLexicon] = field(default_factory=dict)
    en_pos: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    en_closed_class: set[str] = field(default_factory=set)

    def lang(self, lang: str) -> LangLexicon:
        if lang not in self.langs:
            self.langs[lang] = LangLexicon(lang)
        return self.langs[lang]

    def add_english_pos(self, entries: Iterable[Entry]) -> None:
        """Noun/verb/adjective readings of English headwords, and the words that also have a function-word
        reading (pronoun, preposition, determiner, ...): those are ambiguous as items."""
        for e in entries:
            head = e.headword.strip().lower()
            if e.pos in (NOUN, VERB, ADJ):
                self.en_pos[head].add(e.pos)
            elif (e.tags or "").strip().lower() in CLOSED_CLASS:
                self.en_closed_class.add(head)
