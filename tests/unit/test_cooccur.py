"""Co-occurrence counting against plain-Python references: exact rows, completeness, additivity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pivot_spark.steps.cooccur import (
    PAIR_COUNTS,
    TOKEN_COUNTS,
    TokenBatch,
    count_pairs,
    invalid_reasons,
    pair_cooccurrence,
    sum_counts,
    token_stats,
)
from tests.oracles import brute_force_pairs, brute_force_word_pairs

PAIR_KEYS = ["token_a", "token_b", "lang_a", "lang_b"]


def as_dict(table: pa.Table) -> dict[tuple[int, int, str, str], tuple[int, int]]:
    return {
        (r["token_a"], r["token_b"], r["lang_a"], r["lang_b"]): (r["count"], r["doc_count"])
        for r in table.to_pylist()
    }


def random_docs(rng: np.random.Generator, n_docs: int, vocab: int, max_len: int, langs: list[str]):
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(0, max_len + 1))
        docs.append((rng.integers(0, vocab, n).tolist(), [langs[i] for i in rng.integers(0, len(langs), n)]))
    return docs


def realistic_docs(rng: np.random.Generator, n_docs: int, vocab: int) -> list[tuple[list[int], list[str]]]:
    """Zipf-distributed ids (a few tokens are very frequent), lengths from 0 to ~1500, lines of one language
    each (documents mixing 1-3 languages), runs of a repeated token, and the same token reappearing nearby."""
    docs = []
    for _ in range(n_docs):
        doc_langs = list(rng.choice(["en", "fr", "zh", "ja"], size=int(rng.integers(1, 4)), replace=False))
        ids: list[int] = []
        langs: list[str] = []
        for _ in range(int(rng.integers(0, 30))):
            line = (rng.zipf(1.3, int(rng.integers(1, 50))) % vocab).tolist()
            if rng.random() < 0.2:
                line += [line[0]] * int(rng.integers(1, 6))
            ids += line
            langs += [str(rng.choice(doc_langs))] * len(line)
        docs.append((ids, langs))
    return docs


def doc_table(docs) -> pa.Table:
    return pa.table(
        {
            "doc_id": [f"d{i}" for i in range(len(docs))],
            "token_ids": pa.array([ids for ids, _ in docs], pa.list_(pa.int32())),
            "token_langs": pa.array([langs for _, langs in docs], pa.list_(pa.string())),
        }
    )


@pytest.mark.parametrize("window", [2, 3, 5, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_docs_match_brute_force(window: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = 40
    content = rng.random(vocab) > 0.25
    docs = random_docs(rng, 25, vocab, 60, ["en", "fr", "de"])
    stops = [int(t) for t in rng.choice(vocab, 3, replace=False)]
    expected = brute_force_pairs(docs, window=window, content=content, stop_ids=stops)
    assert expected, "the case must produce pairs"
    for pair_budget in (10**6, 7):  # one chunk, and many tiny chunks
        got = count_pairs(docs, window=window, content=content, stop_ids=stops, pair_budget=pair_budget)
        assert got.schema == PAIR_COUNTS
        assert as_dict(got) == expected


@pytest.mark.parametrize("window", [4, 10, 100])
def test_realistic_arrow_docs_match_brute_force(window: int) -> None:
    rng = np.random.default_rng(7)
    vocab = 300
    content = np.ones(vocab, dtype=bool)
    content[[0, 1, 2, 3, 5, 8]] = False  # the most frequent ids are punctuation-like
    docs = realistic_docs(rng, 40, vocab)
    long_doc = (rng.integers(0, vocab, 1200).tolist(), ["fr"] * 600 + ["en"] * 600)  # truncated at 900
    docs += [([], []), long_doc, ([4], ["en"])]
    got = count_pairs(doc_table(docs), window=window, content=content, max_doc_tokens=900)
    expected = brute_force_pairs(docs, window=window, content=content, max_doc_tokens=900)
    assert as_dict(got) == expected
    assert any(a != b for _, _, a, b in expected), "cross-lingual pairs must occur"


def test_definition_on_a_tiny_document() -> None:
    content = np.array([True, True, True, False, True])  # token 3 is punctuation
    ids = [1, 3, 2, 2, 1, 4]
    langs = ["en", "en", "en", "fr", "fr", "fr"]
    got = as_dict(count_pairs([(ids, langs)], window=3, content=content))
    # positions (0,2) 1-2 en/en; (2,4) 2-1 en/fr -> (1,2,fr,en); (3,4) 2-1 fr/fr; (3,5) 2-4 fr/fr; (4,5) 1-4 fr/fr;
    # (2,3) is a token with itself, (0,1) and (1,*) touch punctuation, (0,3) is 3 apart
    assert got == {
        (1, 2, "en", "en"): (1, 1),
        (1, 2, "fr", "en"): (1, 1),
        (1, 2, "fr", "fr"): (1, 1),
        (2, 4, "fr", "fr"): (1, 1),
        (1, 4, "fr", "fr"): (1, 1),
    }


def test_counts_are_additive_and_complete_after_min_count() -> None:
    rng = np.random.default_rng(3)
    vocab = 120
    content = rng.random(vocab) > 0.1
    docs = realistic_docs(rng, 60, vocab)
    window, min_count = 6, 3
    whole = count_pairs(docs, window=window, content=content)
    for n_parts in (2, 5):
        cuts = np.sort(rng.choice(np.arange(1, len(docs)), n_parts - 1, replace=False))
        batches = np.split(np.arange(len(docs)), cuts)
        parts = [count_pairs([docs[i] for i in b], window=window, content=content) for b in batches]
        assert as_dict(sum_counts(parts, PAIR_KEYS)) == as_dict(whole)
    kept = {k: v for k, v in as_dict(whole).items() if v[0] >= min_count}
    expected = {
        k: v for k, v in brute_force_pairs(docs, window=window, content=content).items() if v[0] >= min_count
    }
    assert kept == expected and len(kept) > 10


def test_token_stats_match_brute_force_and_add_up() -> None:
    rng = np.random.default_rng(4)
    vocab = 80
    content = rng.random(vocab) > 0.2
    docs = realistic_docs(rng, 30, vocab)
    stops = [7, 11]
    expected: dict[tuple[int, str], list[int]] = {}
    for ids, langs in docs:
        seen = set()
        for t, lang in zip(ids, langs, strict=True):
            if content[t] and t not in stops:
                entry = expected.setdefault((t, lang), [0, 0])
                entry[0] += 1
                if (t, lang) not in seen:
                    seen.add((t, lang))
                    entry[1] += 1
    got = token_stats(doc_table(docs), content=content, stop_ids=stops)
    assert got.schema == TOKEN_COUNTS
    assert {(r["token_id"], r["lang"]): [r["count"], r["doc_count"]] for r in got.to_pylist()} == expected
    halves = [
        token_stats(docs[:13], content=content, stop_ids=stops),
        token_stats(docs[13:], content=content, stop_ids=stops),
    ]
    assert sum_counts(halves, ["token_id", "lang"]).equals(sum_counts([got], ["token_id", "lang"]))


def test_lang_ids_with_names_and_null_languages() -> None:
    content = np.ones(10, dtype=bool)
    by_index = count_pairs(
        [(np.array([1, 2, 3], np.int32), np.array([0, 1, 1], np.int16))],
        window=3,
        content=content,
        lang_names=["en", "fr"],
    )
    table = pa.table(
        {
            "token_ids": pa.array([[1, 2, 3]], pa.list_(pa.int32())),
            "token_langs": pa.array([["en", None, None]], pa.list_(pa.string())),
        }
    )
    with_null = count_pairs(table, window=3, content=content)
    assert as_dict(by_index) == {
        (1, 2, "en", "fr"): (1, 1),
        (1, 3, "en", "fr"): (1, 1),
        (2, 3, "fr", "fr"): (1, 1),
    }
    assert as_dict(with_null) == {
        (1, 2, "en", "und"): (1, 1),
        (1, 3, "en", "und"): (1, 1),
        (2, 3, "und", "und"): (1, 1),
    }


def test_empty_input_and_bad_rows() -> None:
    content = np.ones(5, dtype=bool)
    assert count_pairs([], window=5, content=content).num_rows == 0
    assert count_pairs([([], [])], window=5, content=content).num_rows == 0
    with pytest.raises(ValueError, match="outside the vocabulary"):
        count_pairs([([1, 9], ["en", "en"])], window=5, content=content)
    bad = pa.table(
        {
            "doc_id": ["ok", "long", "range", "empty"],
            "token_ids": pa.array([[1, 2], [1, 2], [1, 7], None], pa.list_(pa.int32())),
            "token_langs": pa.array([["en", "en"], ["en"], ["en", "en"], None], pa.list_(pa.string())),
        }
    )
    assert invalid_reasons(bad, 5) == [
        None,
        "token_langs has 1 entries for 2 token ids",
        "token id outside the vocabulary [0, 5)",
        None,
    ]
    with pytest.raises(ValueError, match="long"):
        TokenBatch.from_arrow(bad)
    with pytest.raises(ValueError, match="window"):
        count_pairs([], window=1, content=content)


@pytest.mark.parametrize("match_langs", [False, True])
def test_pair_cooccurrence_matches_brute_force(match_langs: bool) -> None:
    rng = np.random.default_rng(11)
    vocab = 12  # small, so multi-token words recur
    docs = random_docs(rng, 40, vocab, 120, ["en", "fr"])
    words = [(1,), (2,), (1, 2), (2, 3, 4), (5, 5), (1, 2, 1), (9,)]
    pairs = []
    for n in range(60):
        a, b = rng.integers(0, len(words), 2)
        la, lb = rng.choice(["en", "fr", "zh"], 2)
        pairs.append((f"p{n}", str(la), words[a], str(lb), words[b]))
    pairs.append(("same", "en", (1, 2), "en", (1, 2)))
    pairs.append(("absent", "en", (99,), "fr", (1,)))
    got = pair_cooccurrence(doc_table(docs), pairs, window=[3, 8, 30], match_langs=match_langs)
    assert got.num_rows == len(pairs) * 3
    for w in (3, 8, 30):
        expected = brute_force_word_pairs(docs, pairs, w, match_langs)
        rows = {r["pair_id"]: (r["count"], r["doc_count"]) for r in got.to_pylist() if r["window"] == w}
        assert rows == expected
    assert sum(c for c, _ in brute_force_word_pairs(docs, pairs, 8, match_langs).values()) > 20


def test_pair_cooccurrence_is_additive() -> None:
    rng = np.random.default_rng(12)
    docs = random_docs(rng, 30, 10, 80, ["en", "fr"])
    pairs = [("a", "en", (1,), "fr", (2, 3)), ("b", "en", (4, 4), "fr", (4,))]
    whole = pair_cooccurrence(docs, pairs, window=10)
    parts = [pair_cooccurrence(docs[:11], pairs, window=10), pair_cooccurrence(docs[11:], pairs, window=10)]
    assert sum_counts(parts, ["pair_id", "window"]).equals(sum_counts([whole], ["pair_id", "window"]))
