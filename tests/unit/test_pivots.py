"""Pivot set: association by hand, hub statistics by hand, and a synthetic corpus whose hubs are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pivot_spark.config import PivotsConfig
from pivot_spark.schemas import PIVOTS
from pivot_spark.steps.cooccur import count_pairs, token_stats
from pivot_spark.steps.pivots import (
    PIVOT_COLUMNS,
    associations,
    build_pivots,
    can_be_word,
    hub_scores,
    pair_pivot_candidates,
    piece_width,
    token_filter,
)

LANGS = ["en", "fr", "de"]


def cooc_frame(rows: list[tuple[int, int, str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["token_a", "token_b", "lang_a", "lang_b", "count", "doc_count"])


def stats_frame(rows: list[tuple[int, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["token_id", "lang", "count", "doc_count"])


def test_ppmi_and_lift_by_hand() -> None:
    cooc = cooc_frame([(1, 2, "en", "fr", 6, 3), (1, 3, "en", "fr", 2, 2), (2, 3, "fr", "fr", 4, 2)])
    stats = stats_frame([(1, "en", 10, 5), (2, "fr", 10, 4), (3, "fr", 9, 4), (9, "de", 200, 9)])
    ppmi = associations(cooc, stats, n_docs=10, association="ppmi", cross_lingual_only=True, window=3)
    # marginals from token_stats: c(1,en) = 10, c(2,fr) = 10, c(3,fr) = 9, T = 229; E = c_a c_b 2 (W-1) / T
    e12, e13, e23 = (10 * 10 * 4 / 229), (10 * 9 * 4 / 229), (10 * 9 * 4 / 229)
    assert ppmi["assoc"].tolist() == pytest.approx([math.log(6 / e12), math.log(2 / e13)])
    both = associations(cooc, stats, n_docs=10, association="ppmi", cross_lingual_only=False, window=3)
    assert both["assoc"].tolist() == pytest.approx([math.log(6 / e12), math.log(2 / e13), math.log(4 / e23)])
    rare_pair = associations(cooc.assign(count=[1, 1, 1]), stats, n_docs=10, association="ppmi",
                             cross_lingual_only=True, window=3)
    assert rare_pair["assoc"].tolist() == [0.0, 0.0]  # below chance -> 0
    with pytest.raises(ValueError, match="window"):
        associations(cooc, stats, n_docs=10, association="ppmi", cross_lingual_only=True)
    with pytest.raises(ValueError, match="missing from token_stats"):
        associations(cooc, stats.iloc[:2], n_docs=10, association="ppmi", cross_lingual_only=True, window=3)
    lift = associations(cooc, stats, n_docs=10, association="lift", cross_lingual_only=False)
    assert lift["assoc"].tolist() == pytest.approx(
        [math.log(3 * 10 / 20), math.log(2 * 10 / 20), math.log(2 * 10 / 16)]
    )
    with pytest.raises(ValueError, match="unknown association"):
        associations(cooc, stats, n_docs=10, association="pmi", cross_lingual_only=False)


def test_hub_statistics_by_hand() -> None:
    strong = cooc_frame([(1, 2, "en", "fr", 5, 1), (1, 3, "fr", "en", 5, 1), (1, 4, "de", "de", 5, 1)])
    strong["assoc"] = [1.0, 1.0, 2.0]
    hubs = hub_scores(strong).set_index("token_id")
    # token 1: strength 4, partners {2, 3, 4}; language weight en 1, fr 1, de 2 -> shares 1/4, 1/4, 1/2
    entropy = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))
    assert hubs.loc[1, "strength"] == pytest.approx(4.0)
    assert hubs.loc[1, "degree"] == 3 and hubs.loc[1, "n_langs"] == 3
    assert hubs.loc[1, "eff_langs"] == pytest.approx(math.exp(entropy))
    assert hubs.loc[1, "score"] == pytest.approx(4.0 * math.log1p(math.exp(entropy)))
    assert hubs.loc[4, "n_langs"] == 1 and hubs.loc[4, "eff_langs"] == pytest.approx(1.0)


def test_token_filters_name_their_reason() -> None:
    pieces = ["<unk>", ",", "▁de", "▁Linux", "▁x", "▁42", "文", "▁rare", "▁noyau"]
    content = np.array([False, False, True, True, True, True, True, True, True])
    stats = stats_frame(
        [
            (1, "en", 90, 9),
            (2, "fr", 80, 9),
            (3, "en", 20, 4),
            (3, "fr", 10, 3),
            (4, "en", 30, 5),
            (5, "en", 30, 5),
            (6, "zh", 30, 3),
            (7, "en", 2, 2),
            (8, "fr", 12, 4),
        ]
    )
    cfg = PivotsConfig(min_token_count=5, max_doc_freq=0.8, min_piece_chars=2)
    got = token_filter(stats, n_docs=10, pieces=pieces, content=content, cfg=cfg, stop_ids=[8])
    reasons = dict(zip(got["token_id"], got["reason"], strict=True))
    assert reasons == {
        1: "not_content",
        2: "too_frequent",
        3: None,
        4: "piece_too_short",
        5: "no_letters",
        6: None,
        7: "rare",
        8: "not_content",
    }
    assert got.set_index("token_id").loc[3, "doc_freq"] == pytest.approx(0.7)  # sum over languages
    # function words: a token in more than max_lang_doc_freq of one language's documents
    by_lang = token_filter(stats, n_docs=10, pieces=pieces, content=content, stop_ids=[8],
                           cfg=PivotsConfig(min_token_count=5, max_doc_freq=0.8, max_lang_doc_freq=0.5,
                                            min_lang_docs=4),
                           docs_by_lang={"en": 6, "fr": 4, "zh": 2})
    lang_reasons = dict(zip(by_lang["token_id"], by_lang["reason"], strict=True))
    # token 3: 4 of 6 en docs, 3 of 4 fr docs (the largest, 0.75) -> function word; zh (token 6) is too small
    assert lang_reasons[3] == "function_word" and lang_reasons[6] is None
    assert by_lang.set_index("token_id").loc[3, "lang_doc_freq"] == pytest.approx(3 / 4)
    assert piece_width("▁文字") == 4 and piece_width("▁ab") == 2


@pytest.mark.parametrize(("piece", "word"), [
    ("▁noyau", True), ("▁Linux", True), ("▁文字", True), ("説明", True), ("ファイル", True), ("▁été", True),
    ("ing", False), ("int", False), ("▁x86", False), ("▁don't", False), ("Sub", False),
])
def test_pieces_that_can_be_words(piece: str, word: bool) -> None:
    assert can_be_word(piece) is word
    pieces = ["<unk>", piece]
    got = token_filter(stats_frame([(1, "en", 50, 5)]), n_docs=10, pieces=pieces, content=np.array([False, True]),
                       cfg=PivotsConfig(min_token_count=1, max_doc_freq=1.0, min_piece_chars=1))
    assert got["reason"].tolist() == [None if word else "not_word"]


def test_code_and_stray_languages_never_count() -> None:
    """Code tokens that cluster on code lines look like cross-lingual hubs when fastText gives those lines the
    corpus's languages (a French page's C listing half read as en, half as fr); pivot discovery on language only
    ignores them when the lines are zxx or carry a stray code such as ceb."""
    docs, pieces, content, names = synthetic_corpus(np.random.default_rng(7), n_docs=400)
    code = list(range(len(pieces), len(pieces) + 4))
    pieces = [*pieces, "▁int", "▁buf", "▁char", "▁size"]
    content = np.append(content, [True] * 4)

    def with_code(label: str | None) -> list[tuple[list[int], list[str]]]:
        rng = np.random.default_rng(8)
        out = []
        for ids, langs in docs:
            ids, langs = list(ids), list(langs)
            if rng.random() < 0.5:
                for _ in range(2):  # two code lines inside the document
                    at = int(rng.integers(len(ids)))
                    line = [int(t) for t in rng.choice(code, size=6)] + [1]
                    ids[at:at] = line
                    langs[at:at] = [label or str(rng.choice(LANGS))] * len(line)
            out.append((ids, langs))
        return out

    cfg = PivotsConfig(min_assoc=0.5, top_k=20, min_pair_count=3, min_token_count=5, max_doc_freq=0.9,
                       languages=LANGS)

    def pivots_of(corpus: list[tuple[list[int], list[str]]]) -> list[int]:
        cooc = count_pairs(corpus, window=10, content=content).to_pandas()
        stats = token_stats(corpus, content=content).to_pandas()
        return build_pivots(cooc, stats, n_docs=len(corpus), pieces=pieces, content=content, cfg=cfg,
                            pivot_set="s", tokenizer="t").pivots["token_id"].tolist()

    # code lines labelled with the corpus's languages: code tokens rank among the hubs
    assert set(code) & set(pivots_of(with_code(None)))
    # labelled zxx (or a stray fastText code), their positions do not count
    for label in ("zxx", "ceb"):
        got = pivots_of(with_code(label))
        assert not set(code) & set(got) and set(names) <= set(got)


def letters(i: int) -> str:
    """A number spelt in letters (0 -> a, 12 -> bc): synthetic pieces that can be words have no digits."""
    return "".join("abcdefghij"[int(d)] for d in str(i))


def synthetic_corpus(rng: np.random.Generator, n_docs: int = 600):
    """Topics with their own words in each language, one shared name per topic (the known hubs, used in every
    language), function words frequent in every document of a language, punctuation, and bilingual documents
    whose lines alternate languages, so that cross-lingual windows exist."""
    pieces = ["<unk>", ".", ","]
    n_topics, n_words = 8, 12
    funcs: dict[str, list[int]] = {lang: [] for lang in LANGS}
    for lang in LANGS:
        for k in range(4):
            funcs[lang].append(len(pieces))
            pieces.append(f"▁{lang}fn{letters(k)}")
    shared_fn = len(pieces)
    pieces.append("▁the")  # a function word of every language: frequent everywhere
    names = []
    words: dict[tuple[int, str], list[int]] = {}
    for t in range(n_topics):
        names.append(len(pieces))
        pieces.append(f"▁Name{letters(t)}")
        for lang in LANGS:
            words[(t, lang)] = list(range(len(pieces), len(pieces) + n_words))
            pieces += [f"▁{lang}topic{letters(t)}w{letters(k)}" for k in range(n_words)]
    content = np.ones(len(pieces), dtype=bool)
    content[:3] = False
    docs = []
    for _ in range(n_docs):
        topic = int(rng.integers(n_topics))
        doc_langs = (
            list(rng.choice(LANGS, size=2, replace=False)) if rng.random() < 0.5 else [rng.choice(LANGS)]
        )
        ids: list[int] = []
        langs: list[str] = []
        for line in range(int(rng.integers(4, 10))):
            lang = str(doc_langs[line % len(doc_langs)])
            for _ in range(int(rng.integers(5, 12))):
                u = rng.random()
                if u < 0.35:
                    tok = int(rng.choice(funcs[lang]))
                elif u < 0.45:
                    tok = shared_fn
                elif u < 0.55:
                    tok = names[topic]
                else:
                    tok = int(rng.choice(words[(topic, lang)]))
                ids.append(tok)
                langs.append(lang)
            ids.append(1)
            langs.append(lang)
        docs.append((ids, langs))
    return docs, pieces, content, names


@pytest.mark.parametrize("association", ["ppmi", "lift"])
@pytest.mark.parametrize("cross_lingual_only", [True, False])
def test_known_hubs_rank_first(association: str, cross_lingual_only: bool) -> None:
    docs, pieces, content, names = synthetic_corpus(np.random.default_rng(5))
    cooc = count_pairs(docs, window=10, content=content).to_pandas()
    stats = token_stats(docs, content=content).to_pandas()
    cfg = PivotsConfig(
        association=association,
        cross_lingual_only=cross_lingual_only,
        min_assoc=0.5,
        top_k=20,
        min_pair_count=3,
        min_token_count=5,
        max_doc_freq=0.5,
    )
    result = build_pivots(
        cooc,
        stats,
        n_docs=len(docs),
        pieces=pieces,
        content=content,
        cfg=cfg,
        pivot_set="test",
        tokenizer="tok",
    )
    pivots = result.pivots
    assert list(pivots.columns) == PIVOT_COLUMNS == PIVOTS.names
    assert pa.Table.from_pandas(pivots, schema=PIVOTS, preserve_index=False).num_rows == len(pivots)
    assert set(pivots["token_id"].head(len(names))) == set(names)
    assert (pivots.loc[: len(names) - 1, "n_langs"] == 3).all()
    assert pivots["rank"].tolist() == list(range(1, len(pivots) + 1))
    assert pivots["score"].is_monotonic_decreasing and len(pivots) == 20
    reasons = result.tokens.set_index("token_id")["reason"]
    assert reasons[pieces.index("▁the")] == "too_frequent" and 1 not in reasons.index  # "." is never counted
    assert "▁Namea" in set(pivots["piece"])


def test_hub_ranking_does_not_depend_on_row_order() -> None:
    docs, pieces, content, _ = synthetic_corpus(np.random.default_rng(6), n_docs=300)
    cooc = count_pairs(docs, window=10, content=content).to_pandas()
    stats = token_stats(docs, content=content).to_pandas()
    cfg = PivotsConfig(top_k=30, min_assoc=0.5)
    kwargs = dict(n_docs=len(docs), pieces=pieces, content=content, cfg=cfg, pivot_set="s", tokenizer="t")
    first = build_pivots(cooc, stats, **kwargs).pivots
    shuffled = build_pivots(
        cooc.sample(frac=1.0, random_state=1), stats.sample(frac=1.0, random_state=2), **kwargs
    ).pivots
    pd.testing.assert_frame_equal(first, shuffled, check_exact=False, rtol=1e-12)


def test_pair_pivot_candidates_subtract_background() -> None:
    # word a = tokens (1, 2), word b = token 3; n_docs = 100
    stats = stats_frame(
        [
            (1, "en", 30, 20),
            (2, "en", 30, 25),
            (3, "fr", 20, 10),
            (7, "en", 30, 15),
            (8, "en", 200, 90),
            (9, "en", 40, 30),
            (4, "fr", 5, 5),
        ]
    )
    cooc = cooc_frame(
        [
            (1, 7, "en", "en", 20, 12),
            (2, 7, "en", "en", 20, 14),
            (3, 7, "fr", "en", 9, 8),  # near both words
            (1, 8, "en", "en", 30, 18),
            (2, 8, "en", "en", 30, 20),
            (3, 8, "fr", "en", 9, 9),  # background only
            (1, 9, "en", "en", 25, 15),
            (2, 9, "en", "en", 25, 16),  # near word a only
            (1, 4, "en", "fr", 3, 3),
            (2, 4, "en", "fr", 3, 3),
            (3, 4, "fr", "fr", 4, 4),  # rare, near both
            (1, 3, "en", "fr", 6, 5),  # the two words themselves
        ]
    )
    got = pair_pivot_candidates(cooc, stats, (1, 2), (3,), n_docs=100, top_n=10)
    assert got["token_id"].tolist() == [7, 4]
    top = got.iloc[0]
    # word a: d(7, a) = min(12, 14) = 12, df(a) = min(20, 25) = 20; background df(7) = 15 / 100
    assert top["excess_a"] == pytest.approx(12 - 20 * 0.15)
    assert top["excess_b"] == pytest.approx(8 - 10 * 0.15)
    assert top["score"] == pytest.approx(min(12 - 3.0, 8 - 1.5))
    assert got.iloc[1]["score"] == pytest.approx(min(3 - 20 * 0.05, 4 - 10 * 0.05))
    keep = np.ones(10, dtype=bool)
    keep[4] = False
    assert pair_pivot_candidates(cooc, stats, (1, 2), (3,), n_docs=100, keep=keep)["token_id"].tolist() == [7]
    assert pair_pivot_candidates(cooc, stats, (5,), (3,), n_docs=100).empty
