"""Item sets beside the paper's general set: the frozen in-domain set, and the copyable-pair flag.

**Copyable pairs.** A record (item, direction) is copyable when its source and target words share a real piece of
width >= 2 as the model sees them after a space (the bare word-start piece ``▁`` that SentencePiece emits before a
CJK word does not count; a CJK character has width 2) or are cognates (alphabetic words whose accent-free lower-case
forms have a :class:`difflib.SequenceMatcher` ratio >= 0.75, e.g. problem/problème; Japanese and Chinese words that
share a Han character). The model can score such a pair by copying, so copyable records are reported separately.

**The in-domain set** (:data:`RULE`, fixed before any model is scored): the items whose words are the most frequent
in documents of their own language in the lake's corpus, with distractors re-drawn matched on that frequency. It
is built once from the lake (``pivot-eval item-sets``) and frozen: the items file, its SHA-256 and the rule are
written to a folder that is committed beside the recipe.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.corpus import _CJK_RUN, _WORDS, MAX_CJK
from evaluation.dataset import Item
from evaluation.lexicon import CJK_LANGS

if TYPE_CHECKING:
    from pivot_spark.lake.reader import TableReader

WORD_START = "\u2581"
COGNATE_RATIO = 0.75
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

RULE = """\
In-domain item set, rule v1 (written before any model was scored; pivot-eval item-sets applies it):
1. Frequency of a word = number of documents of the word's own language (doc_lang.lang) in the lake's documents
   table that contain it: alphabetic languages lower-cased whole-word match on \\w+ words, Japanese and Chinese a
   substring of a CJK/kana run (at most 6 characters).
2. An item qualifies when each of its words in the evaluated languages occurs in at least `min_docs` documents of
   its language; its in-domain score is the smallest of those frequencies (its rarest word).
3. The set is the `size` qualifying items with the highest score (ties: the data set's order, i.e. general
   frequency rank).
4. Distractors are re-drawn per item and language, matched on the same frequency: the candidates are the words
   of that language and part of speech among all items' words and distractors of the data set that occur in at
   least one document of the language, minus the item's own words and every attested translation of the item
   (`alternatives`); the 9 whose log frequency is closest to the item's word (ties broken by a hash of the seed,
   item and word) are kept.
5. The items file (one item a line, the data set's format), the rule, its parameters, the lake and table versions
   read, every word's frequency and the items file's SHA-256 are written together and frozen.
"""


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _width(piece: str) -> int:
    text = piece.replace(WORD_START, "")
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def real_pieces(tok: Any, word: str) -> set[str]:
    """The pieces of ``" " + word`` after a word (as in the prompt), without the bare word-start piece."""
    from evaluation.model_io import encode_pair

    e = encode_pair(tok, "a", " " + word)
    return {p for p in tok.convert_ids_to_tokens(list(e.ids[e.start:])) if p != WORD_START}


def cognates(a: str, b: str, lang_a: str, lang_b: str) -> bool:
    if lang_a in CJK_LANGS and lang_b in CJK_LANGS:
        return bool(set(_HAN.findall(a)) & set(_HAN.findall(b)))
    if lang_a in CJK_LANGS or lang_b in CJK_LANGS:
        return False
    return difflib.SequenceMatcher(None, _fold(a), _fold(b)).ratio() >= COGNATE_RATIO


def copyable(tok: Any, source: str, target: str, src: str, tgt: str) -> bool:
    """Source and target share a real piece of width >= 2 or are cognates (module docstring)."""
    shared = real_pieces(tok, source) & real_pieces(tok, target)
    return any(_width(p) >= 2 for p in shared) or cognates(source, target, src, tgt)


# -- the in-domain set ------------------------------------------------------------------------------------------
def own_language_frequencies(docs: Iterable[tuple[str, str]], vocab: dict[str, set[str]]) -> dict[str, Counter[str]]:
    """lang -> word -> documents of that language containing it; ``docs`` are (lang, text), ``vocab`` lang ->
    words (alphabetic words lower-cased)."""
    found: dict[str, Counter[str]] = {lang: Counter() for lang in vocab}
    for lang, text in docs:
        words = vocab.get(lang)
        if not words:
            continue
        if lang in CJK_LANGS:
            subs: set[str] = set()
            for run in _CJK_RUN.findall(text):
                for i in range(len(run)):
                    for j in range(i + 1, min(len(run), i + MAX_CJK) + 1):
                        subs.add(run[i:j])
            found[lang].update(subs & words)
        else:
            found[lang].update(set(_WORDS.findall(text.lower())) & words)
    return found


def word_key(lang: str, word: str) -> str:
    return word if lang in CJK_LANGS else word.lower()


def build_indomain(items: Sequence[Item], freq: dict[str, Counter[str]], langs: Sequence[str], *, size: int,
                   min_docs: int, seed: int, n_distractors: int = 9) -> tuple[list[Item], dict[str, Any]]:
    """:data:`RULE` steps 2-4 on counted frequencies; (the set's items, per-item scores and frequencies)."""
    def f(lang: str, word: str) -> int:
        return freq.get(lang, Counter())[word_key(lang, word)]

    scored = []
    for order, it in enumerate(items):
        if not all(lang in it.words for lang in langs):
            continue
        low = min(f(lang, it.words[lang]) for lang in langs)
        if low >= min_docs:
            scored.append((-low, order, it))
    chosen = [it for _, _, it in sorted(scored, key=lambda t: (t[0], t[1]))[:size]]
    out, detail = [], {}
    for it in chosen:
        new_distractors: dict[str, list[str]] = {}
        for lang in langs:
            pool = {w for other in items if other.pos == it.pos
                    for w in [other.words.get(lang), *other.distractors.get(lang, [])] if w}
            banned = {word_key(lang, w) for w in [*it.words.values(), *it.alternatives.get(lang, [])]}
            cands = list({word_key(lang, w): w for w in sorted(pool, reverse=True)
                          if word_key(lang, w) not in banned and f(lang, w) > 0}.values())
            if len(cands) < n_distractors:
                raise ValueError(f"{it.id}: only {len(cands)} {lang} candidates occur in the corpus; need "
                                 f"{n_distractors}")
            target = math.log(f(lang, it.words[lang]))
            cands.sort(key=lambda w: (abs(math.log(f(lang, w)) - target),
                                      hashlib.sha256(f"{seed}|{it.id}|{lang}|{w}".encode()).hexdigest()))
            new_distractors[lang] = cands[:n_distractors]
        out.append(Item(it.id, it.rank, it.pos, {k: it.words[k] for k in langs},
                        {k: v for k, v in it.alternatives.items() if k in langs},
                        {k: v for k, v in it.zipf.items() if k in langs}, new_distractors))
        detail[it.id] = {"freq": {lang: f(lang, it.words[lang]) for lang in langs},
                         "distractor_freq": {lang: [f(lang, w) for w in ds] for lang, ds in new_distractors.items()}}
    return out, detail


def lake_docs_with_lang(reader: TableReader) -> Iterable[tuple[str, str]]:
    """(language, text) of every document that has a language (``doc_lang``), at the reader's pinned versions."""
    langs: dict[str, str] = {}
    for batch in reader.batches("doc_lang", ["doc_id", "lang"]):
        for d, lang in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            if lang:
                langs[d] = lang
    for batch in reader.batches("documents", ["doc_id", "text"]):
        for d, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True):
            if text and d in langs:
                yield langs[d], text


def write_frozen(out: Path, items: Sequence[Item], detail: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``indomain-items.jsonl``, ``RULE.txt`` and ``manifest.json`` (ids, parameters, frequencies, SHA-256)."""
    out.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(it.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for it in items)
    (out / "indomain-items.jsonl").write_text(body, encoding="utf-8")
    (out / "RULE.txt").write_text(RULE, encoding="utf-8")
    manifest = {"rule": "v1 (RULE.txt)", "rule_sha256": hashlib.sha256(RULE.encode()).hexdigest(), **params,
                "n_items": len(items), "ids": [it.id for it in items],
                "items_sha256": hashlib.sha256(body.encode()).hexdigest(), "frequencies": detail}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def check_frozen(folder: Path) -> Path:
    """The frozen set's items file, after checking it against its recorded SHA-256."""
    items = folder / "indomain-items.jsonl"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    got = hashlib.sha256(items.read_bytes()).hexdigest()
    if got != manifest["items_sha256"]:
        raise ValueError(f"{items} was changed after it was frozen (sha256 {got}, manifest {manifest['items_sha256']})")
    return items
