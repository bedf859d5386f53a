"""Do the data set's words occur in the pre-training corpus at all?

Method (reported with the numbers): every ``documents.text`` of the lake is scanned once. Space-separated
languages: the text is lower-cased and split into ``\\w+`` words, a word occurs when it is one of them (whole-
word match). Japanese and Chinese: every substring of 1-6 characters of each run of CJK/kana characters is
looked up, so a word occurs when it appears as a substring (no word segmentation, so this over-counts short
words inside longer ones). Language labels are ignored: a French word counts wherever it appears.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from evaluation.dataset import Item
from evaluation.lexicon import CJK_LANGS

if TYPE_CHECKING:
    from pivot_spark.lake.reader import TableReader

_WORDS = re.compile(r"\w+")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u30fc]+")
MAX_CJK = 6
METHOD = ("documents.text scanned; alphabetic languages: lower-cased whole-word match on \\w+ words; ja/zh: "
          "substring match (every 1-6 character substring of CJK/kana runs); document language ignored")


def count_occurrences(texts: Iterable[str], alpha_vocab: set[str], cjk_vocab: set[str]) -> tuple[Counter[str], int]:
    """(documents containing each vocabulary word, documents scanned)."""
    found: Counter[str] = Counter()
    n = 0
    for text in texts:
        n += 1
        words = set(_WORDS.findall(text.lower())) & alpha_vocab
        subs: set[str] = set()
        if cjk_vocab:
            for run in _CJK_RUN.findall(text):
                for i in range(len(run)):
                    for j in range(i + 1, min(len(run), i + MAX_CJK) + 1):
                        subs.add(run[i:j])
        found.update(words | (subs & cjk_vocab))
    return found, n


def coverage(items: Sequence[Item], texts: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """Per-language share of items whose word occurs; the ids of items all of whose words occur."""
    alpha = {w.lower() for it in items for lang, w in it.words.items() if lang not in CJK_LANGS}
    cjk = {w for it in items for lang, w in it.words.items() if lang in CJK_LANGS}
    found, n_docs = count_occurrences(texts, alpha, cjk)

    def present(lang: str, w: str) -> bool:
        return found[w if lang in CJK_LANGS else w.lower()] > 0

    per_lang: dict[str, dict[str, int]] = {}
    for it in items:
        for lang, w in it.words.items():
            d = per_lang.setdefault(lang, {"items": 0, "present": 0})
            d["items"] += 1
            d["present"] += int(present(lang, w))
    all_present = [it.id for it in items if all(present(lang, w) for lang, w in it.words.items())]
    return {"method": METHOD, "documents_scanned": n_docs, "per_language": per_lang,
            "items_all_words_present": len(all_present), "items": len(items)}, all_present


def lake_texts(reader: TableReader) -> Iterable[str]:
    """The ``documents`` texts of a lake, streamed at the reader's pinned version."""
    for batch in reader.batches("documents", ["text"]):
        yield from (t for t in batch.column(0).to_pylist() if t)
