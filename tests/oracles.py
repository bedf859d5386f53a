"""Plain-Python references that the vectorized and distributed counting code is tested against.

Written straight from the definitions (see :mod:`pivot_spark.steps.cooccur`), loop by loop, with no shared code:
slow, and meant to be obviously right.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def brute_force_pairs(
    docs: Iterable[tuple[Sequence[int], Sequence[str]]],
    *,
    window: int,
    content: np.ndarray,
    stop_ids: Iterable[int] | None = None,
    max_doc_tokens: int | None = None,
) -> dict[tuple[int, int, str, str], tuple[int, int]]:
    """Reference of :func:`pivot_spark.steps.cooccur.count_pairs`: ``{(token_a, token_b, lang_a, lang_b):
    (count, doc_count)}``."""
    stops = set(stop_ids or ())
    counts: dict[tuple[int, int, str, str], list[int]] = {}
    for ids, langs in docs:
        ids, langs = list(ids)[:max_doc_tokens], list(langs)[:max_doc_tokens]
        seen: set[tuple[int, int, str, str]] = set()
        for i in range(len(ids)):
            for j in range(i + 1, min(i + window, len(ids))):
                a, b = int(ids[i]), int(ids[j])
                if a == b or not content[a] or not content[b] or a in stops or b in stops:
                    continue
                key = (a, b, langs[i], langs[j]) if a < b else (b, a, langs[j], langs[i])
                entry = counts.setdefault(key, [0, 0])
                entry[0] += 1
                if key not in seen:
                    seen.add(key)
                    entry[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def brute_force_word_pairs(
    docs: Sequence[tuple[Sequence[int], Sequence[str]]],
    pairs: Iterable[tuple[str, str, Sequence[int], str, Sequence[int]]],
    window: int,
    match_langs: bool,
) -> dict[str, tuple[int, int]]:
    """Reference of :func:`pivot_spark.steps.cooccur.pair_cooccurrence` for one window: ``{pair_id: (count,
    doc_count)}``, every occurrence of one word against every occurrence of the other."""

    def occurrences(ids, langs, word, lang):
        n = len(word)
        return [
            i
            for i in range(len(ids) - n + 1)
            if list(ids[i : i + n]) == list(word) and (not match_langs or langs[i] == lang)
        ]

    result = {}
    for pair_id, lang_a, word_a, lang_b, word_b in pairs:
        count = docs_with = 0
        same = list(word_a) == list(word_b) and (not match_langs or lang_a == lang_b)
        for ids, langs in docs:
            here = 0
            for i in occurrences(ids, langs, word_a, lang_a):
                for j in occurrences(ids, langs, word_b, lang_b):
                    if same and j <= i:
                        continue
                    ea, eb = i + len(word_a), j + len(word_b)
                    disjoint = ea <= j or eb <= i
                    if disjoint and max(ea, eb) - min(i, j) <= window:
                        here += 1
            count += here
            docs_with += here > 0
        result[pair_id] = (count, docs_with)
    return result


def brute_force_audit(
    arms: dict[str, list[tuple[Sequence[int], Sequence[str]]]],
    words: Iterable[tuple[str, Sequence[Sequence[int]]]],
    pairs: Iterable[tuple[str, Sequence[tuple[Sequence[int], Sequence[int]]]]],
    window: int,
) -> dict[str, dict[str, dict[str, int]]]:
    """Reference of ``pivot-spark audit``'s counts: per arm, ``docs`` (documents), ``lang`` (tokens per span
    language), ``word`` (occurrences of each word, summed over its spellings: token sequences matched at every
    position) and ``pair`` (co-occurrences of each pair within ``window`` tokens, summed over the spelling
    combinations: every occurrence of one against every occurrence of the other, disjoint and inside the
    window). Zero counts are left out."""
    words, pairs = list(words), list(pairs)

    def starts(ids: Sequence[int], word: Sequence[int]) -> list[int]:
        n = len(word)
        return [i for i in range(len(ids) - n + 1) if list(ids[i:i + n]) == list(word)]

    out: dict[str, dict[str, dict[str, int]]] = {}
    for arm, docs in arms.items():
        lang: dict[str, int] = {}
        word_counts: dict[str, int] = {}
        pair_counts: dict[str, int] = {}
        for ids, langs in docs:
            for code in langs:
                lang[code] = lang.get(code, 0) + 1
            for word_id, spellings in words:
                for spelling in spellings:
                    word_counts[word_id] = word_counts.get(word_id, 0) + len(starts(ids, spelling))
            for pair_id, combos in pairs:
                for a, b in combos:
                    same = list(a) == list(b)
                    for i in starts(ids, a):
                        for j in starts(ids, b):
                            if same and j <= i:
                                continue
                            ea, eb = i + len(a), j + len(b)
                            if (ea <= j or eb <= i) and max(ea, eb) - min(i, j) <= window:
                                pair_counts[pair_id] = pair_counts.get(pair_id, 0) + 1
        out[arm] = {"docs": {"": len(docs)}, "lang": lang,
                    "word": {k: v for k, v in word_counts.items() if v},
                    "pair": {k: v for k, v in pair_counts.items() if v}}
    return out
