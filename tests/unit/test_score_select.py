"""Document pivot scores and selection arms: budgets within one document, determinism, arm semantics."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pivot_spark.schemas import DOC_PIVOT
from pivot_spark.steps.score import score_docs
from pivot_spark.steps.select import assign_shards, fill_budget, lang_mix, select_arm


def doc_tokens(rows: list[tuple[str, list[int] | None, list[str] | None]]) -> pa.Table:
    return pa.table(
        {
            "doc_id": [r[0] for r in rows],
            "token_ids": pa.array([r[1] for r in rows], pa.list_(pa.int32())),
            "token_langs": pa.array([r[2] for r in rows], pa.list_(pa.string())),
        }
    )


def test_score_docs_by_hand() -> None:
    content = np.array([False, True, True, True, True, True])  # 0 is punctuation
    batch = doc_tokens(
        [
            (
                "a",
                [1, 2, 0, 3, 3],
                ["fr", "fr", "en", "en", "en"],
            ),  # content 4, pivots {3, 0}: 2 (0 is not content)
            ("b", [0, 0], ["zh", "zh"]),  # no content tokens
            ("c", [], []),
            ("d", None, None),
            ("e", [5, 4, 3], ["fr", "en", "de"]),  # tie between three languages: alphabetically first wins
            ("f", [4, 5], ["en", "en"]),  # 5 is on the stop list
        ]
    )
    got = score_docs(batch, pivot_ids=np.array([3, 0, 5, 99]), content=content, pivot_set="v1", stop_ids=[5])
    assert got.schema == DOC_PIVOT
    rows = {r["doc_id"]: r for r in got.to_pylist()}
    assert [rows[d]["n_tokens"] for d in "abcdef"] == [5, 2, 0, 0, 3, 2]
    assert [rows[d]["n_content_tokens"] for d in "abcdef"] == [4, 0, 0, 0, 2, 1]
    assert [rows[d]["n_pivot_tokens"] for d in "abcdef"] == [2, 0, 0, 0, 1, 0]
    assert [rows[d]["pivot_proportion"] for d in "abcdef"] == [0.5, 0.0, 0.0, 0.0, 0.5, 0.0]
    assert [rows[d]["lang"] for d in "abcdef"] == ["en", "zh", None, None, "de", "en"]
    assert {r["pivot_set"] for r in rows.values()} == {"v1"}


def test_score_docs_matches_plain_python() -> None:
    rng = np.random.default_rng(2)
    vocab = 50
    content = rng.random(vocab) > 0.3
    pivots = rng.choice(vocab, 10, replace=False)
    rows = []
    for i in range(80):
        n = int(rng.integers(0, 40))
        rows.append(
            (
                f"d{i}",
                rng.integers(0, vocab, n).tolist(),
                [str(x) for x in rng.choice(["en", "fr", "ja"], n, p=[0.5, 0.3, 0.2])],
            )
        )
    got = score_docs(doc_tokens(rows), pivot_ids=pivots, content=content, pivot_set="s").to_pylist()
    pivot_set = set(pivots.tolist())
    for (doc_id, ids, langs), row in zip(rows, got, strict=True):
        n_content = sum(bool(content[t]) for t in ids)
        n_pivot = sum(bool(content[t]) and t in pivot_set for t in ids)
        counts = Counter(langs)
        best = max(counts.values()) if counts else 0
        assert row["doc_id"] == doc_id
        assert (row["n_content_tokens"], row["n_pivot_tokens"]) == (n_content, n_pivot)
        assert row["pivot_proportion"] == pytest.approx(n_pivot / n_content if n_content else 0.0)
        assert row["lang"] == (min(k for k, v in counts.items() if v == best) if counts else None)


def make_meta(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    n_tokens = rng.integers(20, 800, n)
    n_tokens[rng.choice(n, 5, replace=False)] = 5000  # a few long documents
    return pd.DataFrame(
        {
            "doc_id": [f"doc-{i:04d}" for i in range(n)],
            "n_tokens": n_tokens,
            "pivot_proportion": np.round(rng.random(n), 2),  # rounded: ties exist
            "lang": rng.choice(["en", "fr", "de", "zh", None], n, p=[0.4, 0.25, 0.15, 0.15, 0.05]),
        }
    )


def sequential_fill(n_tokens, budget: int) -> list[bool]:
    left, taken = budget, []
    for n in n_tokens:
        taken.append(bool(n <= left))
        left -= n if n <= left else 0
    return taken


def test_fill_budget_is_the_sequential_walk() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n_tokens = rng.integers(0, 100, int(rng.integers(0, 60)))
        budget = int(rng.integers(0, 2000))
        assert fill_budget(n_tokens, budget).tolist() == sequential_fill(n_tokens, budget)


@pytest.mark.parametrize("arm", ["pivot", "random", "langmatch"])
@pytest.mark.parametrize("budget", [3000, 60_000, 150_000])
def test_arms_fill_the_budget_within_one_document(arm: str, budget: int) -> None:
    meta = make_meta(np.random.default_rng(1))
    mix = {"en": 0.5, "fr": 0.3, "zh": 0.2}
    chosen = select_arm(
        meta, arm, token_budget=budget, seed=7, pivot_random_share=0.25, reference_lang_mix=mix
    )
    sizes = meta.set_index("doc_id").loc[chosen, "n_tokens"]
    assert len(set(chosen)) == len(chosen)
    assert budget - meta["n_tokens"].max() < sizes.sum() <= budget
    # tighter: short of the budget by less than the smallest document left out
    left_out = meta.loc[~meta["doc_id"].isin(chosen), "n_tokens"]
    assert budget - sizes.sum() < left_out.min()


def test_selection_is_deterministic_and_order_free() -> None:
    meta = make_meta(np.random.default_rng(2))
    shuffled = meta.sample(frac=1.0, random_state=3)
    for arm in ("pivot", "random"):
        a = select_arm(meta, arm, token_budget=40_000, seed=11)
        b = select_arm(shuffled, arm, token_budget=40_000, seed=11)
        assert a == b
    assert select_arm(meta, "random", token_budget=40_000, seed=11) != select_arm(
        meta, "random", token_budget=40_000, seed=12
    )


def test_pivot_arm_takes_highest_proportion_first() -> None:
    meta = make_meta(np.random.default_rng(3))
    budget = 40_000
    chosen = set(select_arm(meta, "pivot", token_budget=budget, seed=5))
    ranked = meta.sort_values("pivot_proportion", ascending=False)
    in_order = ranked["doc_id"].isin(chosen).to_numpy()
    # every document above the lowest chosen proportion was taken unless it no longer fitted
    lowest = meta.loc[meta["doc_id"].isin(chosen), "pivot_proportion"].min()
    skipped = ranked[(ranked["pivot_proportion"] > lowest) & ~in_order]
    used = meta.loc[meta["doc_id"].isin(chosen), "n_tokens"].sum()
    assert (skipped["n_tokens"] > budget - used).all()
    random_arm = set(select_arm(meta, "random", token_budget=budget, seed=5))
    mean = meta.set_index("doc_id")["pivot_proportion"]
    assert mean[list(chosen)].mean() > mean[list(random_arm)].mean() + 0.2


def test_pivot_random_share_takes_that_share_from_the_random_order() -> None:
    meta = make_meta(np.random.default_rng(4), n=2000)
    budget = 200_000
    pure = select_arm(meta, "pivot", token_budget=budget, seed=5)
    mixed = select_arm(meta, "pivot", token_budget=budget, seed=5, pivot_random_share=0.4)
    tokens = meta.set_index("doc_id")["n_tokens"]
    from_top = tokens[[d for d in mixed if d in set(pure)]].sum()
    assert (
        0.6 * budget - tokens.max() < from_top < 0.6 * budget + 0.4 * budget * 0.6
    )  # random part overlaps rarely
    assert budget - tokens.max() < tokens[mixed].sum() <= budget


def test_langmatch_follows_the_reference_mix() -> None:
    meta = make_meta(np.random.default_rng(5), n=3000)
    budget = 300_000
    pivot = select_arm(meta, "pivot", token_budget=budget, seed=9)
    reference = lang_mix(meta, pivot).set_index("lang")["token_share"].to_dict()
    matched = select_arm(meta, "langmatch", token_budget=budget, seed=9, reference_lang_mix=reference)
    got = lang_mix(meta, matched).set_index("lang")["token_share"].to_dict()
    max_doc_share = meta["n_tokens"].max() / budget
    for lang, share in reference.items():
        assert abs(got.get(lang, 0.0) - share) <= 2 * max_doc_share
    with pytest.raises(ValueError, match="reference_lang_mix"):
        select_arm(meta, "langmatch", token_budget=budget, seed=9)


def test_bad_selection_inputs() -> None:
    meta = make_meta(np.random.default_rng(6), n=20)
    with pytest.raises(ValueError, match="fewer than the budget"):
        select_arm(meta, "random", token_budget=10**9, seed=1)
    with pytest.raises(ValueError, match="unknown arm"):
        select_arm(meta, "best", token_budget=100, seed=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        select_arm(pd.concat([meta, meta]), "random", token_budget=100, seed=1)


def test_assign_shards_balanced_and_deterministic() -> None:
    ids = [f"doc-{i}" for i in range(103)]
    shards = assign_shards(ids, 8, seed=3)
    assert shards.dtype == np.int32
    counts = np.bincount(shards, minlength=8)
    assert counts.max() - counts.min() <= 1
    reordered = dict(zip(ids[::-1], assign_shards(ids[::-1], 8, seed=3), strict=True))
    assert [reordered[i] for i in ids] == shards.tolist()
    assert assign_shards(ids, 8, seed=4).tolist() != shards.tolist()
    assert set(assign_shards(ids[:3], 8, seed=3).tolist()) <= set(range(8))


def test_lang_mix_sums_to_one() -> None:
    meta = make_meta(np.random.default_rng(7), n=50)
    mix = lang_mix(meta)
    assert mix["token_share"].sum() == pytest.approx(1.0)
    assert mix["n_tokens"].sum() == meta["n_tokens"].sum() and "und" in set(mix["lang"])


def test_score_counts_natural_language_positions_only() -> None:
    """With languages, tokens in code spans (zxx) and unlisted languages neither count as content nor as pivots,
    and the document's language is the majority of the listed ones (all its tokens' when it has none)."""
    content = np.array([False, True, True, True, True])
    batch = doc_tokens([
        ("a", [1, 3, 3, 3, 2, 3], ["fr", "zxx", "zxx", "zxx", "fr", "en"]),  # listed content 3, pivots {3}: 1
        ("b", [3, 3, 1], ["zxx", "zxx", "zxx"]),  # only code: nothing counts, language zxx
        ("c", [3, 4, 4], ["ceb", "de", "ceb"]),  # ceb is not listed
    ])
    got = {r["doc_id"]: r for r in score_docs(batch, pivot_ids=np.array([3]), content=content, pivot_set="s",
                                              languages=["en", "fr", "de", "zxx"]).to_pylist()}
    assert [(got[d]["n_content_tokens"], got[d]["n_pivot_tokens"]) for d in "abc"] == [(3, 1), (0, 0), (1, 0)]
    assert got["a"]["pivot_proportion"] == pytest.approx(1 / 3)
    assert [got[d]["lang"] for d in "abc"] == ["fr", "zxx", "de"]
    everything = {r["doc_id"]: r for r in score_docs(batch, pivot_ids=np.array([3]), content=content,
                                                     pivot_set="s").to_pylist()}
    assert (everything["a"]["n_content_tokens"], everything["a"]["lang"]) == (6, "zxx")
