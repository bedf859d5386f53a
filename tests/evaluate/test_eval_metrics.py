"""The rank metrics, the log-likelihood ratio and S on hand-made log-likelihoods; the seed interval's coverage on
synthetic data with known variance; the paired-by-seed comparison; the copyable flag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import metrics as M
from evaluation.clwtd import ItemScore, summarize
from evaluation.compare import Arm, compare


def _ll(per_token: list[float], n_tokens: int, draws: int = 5) -> np.ndarray:
    """candidates x draws summed log-likelihoods whose draw mean per token is ``per_token``; draws spread +-0.5."""
    spread = np.linspace(-0.5, 0.5, draws)
    return np.array([[(v + e) * n_tokens for e in spread] for v in per_token])


def test_true_source_ranked_first():
    m = M.record_metrics(_ll([-1.0, -2.0, -3.0, -1.5, -4.0, -2.5, -2.2, -5.0, -3.3, -2.9], 3), 3)
    assert m["acc1"] == 1.0 and m["rr"] == 1.0 and m["rank"] == 1
    others = [-2.0, -3.0, -1.5, -4.0, -2.5, -2.2, -5.0, -3.3, -2.9]
    assert m["llr"] == pytest.approx(-1.0 - np.mean(others))
    assert m["S"] == pytest.approx(math.exp(-1.0) - np.mean(np.exp(others)))


def test_true_source_third():
    m = M.record_metrics(_ll([-2.0, -1.0, -1.5, -3.0, -3.0, -3.0, -3.0, -3.0, -3.0, -3.0], 2), 2)
    assert m["acc1"] == 0.0 and m["rr"] == pytest.approx(1 / 3) and m["rank"] == 3
    assert m["llr"] == pytest.approx(-2.0 - (-1.0 - 1.5 - 7 * 3.0) / 9)


def test_ties_count_as_a_random_tie_break():
    # the true source ties with two distractors at the top: expected acc@1 1/3, expected 1/rank (1 + 1/2 + 1/3) / 3
    m = M.record_metrics(_ll([-1.0, -1.0, -1.0] + [-2.0] * 7, 1), 1)
    assert m["acc1"] == pytest.approx(1 / 3)
    assert m["rr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert m["rank"] == 2


def test_scores_average_draws_then_normalise_by_tokens():
    # draws differ per candidate; what counts is the mean over draws divided by the token count
    ll = np.array([[-4.0, -2.0], [-1.0, -4.0]] + [[-10.0, -10.0]] * 8)  # true mean -3, distractor 1 mean -2.5
    m = M.record_metrics(ll, 2)
    assert m["acc1"] == 0.0 and m["rank"] == 2
    assert M.candidate_scores(ll, 2)[:2].tolist() == [-1.5, -1.25]
    with pytest.raises(ValueError):
        M.record_metrics(ll[:1], 2)


def test_exchangeable_candidates_score_chance():
    rng = np.random.default_rng(0)
    ms = [M.record_metrics(rng.normal(-5, 1, (10, 5)), 2) for _ in range(20000)]
    assert np.mean([m["acc1"] for m in ms]) == pytest.approx(M.CHANCE["acc1"], abs=0.01)
    assert np.mean([m["rr"] for m in ms]) == pytest.approx(M.CHANCE["rr"], abs=0.01)
    assert np.mean([m["llr"] for m in ms]) == pytest.approx(0.0, abs=0.01)
    assert M.CHANCE["rr"] == pytest.approx(0.2929, abs=1e-4)


def test_seed_t_interval_by_hand():
    r = M.seed_t_interval([0.1, 0.2, 0.3])
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(n)
    assert r["diff"] == pytest.approx(0.2) and r["n_seeds"] == 3
    assert r["ci95"] == pytest.approx([0.2 - half, 0.2 + half], rel=1e-5)
    one = M.seed_t_interval([0.4])
    assert one["diff"] == 0.4 and all(math.isnan(x) for x in one["ci95"])


def test_seed_interval_covers_at_its_level_where_a_seed_bootstrap_does_not():
    """Synthetic arms: per-seed paired differences = true difference + seed noise (sd 0.05) + item noise (sd
    0.02), three seeds. The t-interval covers the truth ~95% of the time; resampling three seeds (10 distinct
    resamples) is too narrow."""
    rng = np.random.default_rng(1)
    true, n, sims = 0.03, 3, 4000
    t_cover = boot_cover = 0
    for _ in range(sims):
        d = true + rng.normal(0, 0.05, n) + rng.normal(0, 0.02, n)
        lo, hi = M.seed_t_interval(d)["ci95"]
        t_cover += lo <= true <= hi
        boots = d[rng.integers(0, n, (400, n))].mean(axis=1)
        boot_cover += np.quantile(boots, 0.025) <= true <= np.quantile(boots, 0.975)
    assert 0.93 <= t_cover / sims <= 0.97
    assert boot_cover / sims < 0.85


def _result(values: dict[str, dict[str, float]], copyable: dict[str, list[str]] | None = None) -> dict:
    """A clwtd.json-like result with the same per-item value for every metric."""
    return {"items": values, "item_metrics": {m: values for m in ("acc1", "rr", "llr")},
            "copyable": copyable or {}}


def test_compare_pairs_seeds_and_filters_records():
    dirs, items = ["en->fr", "fr->en"], ["a", "b", "c", "d"]
    rng = np.random.default_rng(2)
    seed_effect = [0.0, 0.1, -0.05]
    pivot, ref = [], []
    for k in range(3):
        base = {d: {i: float(rng.uniform(0, 1)) for i in items} for d in dirs}
        ref.append(_result({d: {i: v + seed_effect[k] for i, v in per.items()} for d, per in base.items()},
                           {"en->fr": ["d"]}))
        pivot.append(_result({d: {i: v + seed_effect[k] + 0.1 + 0.02 * k for i, v in per.items()}
                              for d, per in base.items()}, {"en->fr": ["d"]}))
    arms = [Arm("pivot", ["p1", "p2", "p3"], pivot), Arm("ref", ["r1", "r2", "r3"], ref)]
    out = compare(arms, n_boot=200)
    t = out["differences"]["pivot-ref"]["mean"]["paired_by_seed"]
    assert out["metric"] == "acc1" and out["n_items"] == 4
    assert t["diff"] == pytest.approx(0.12) and t["n_seeds"] == 3
    assert t["sd"] == pytest.approx(0.02)  # the shared seed effect cancels in the pairing
    assert t["ci95"][0] < 0.12 < t["ci95"][1]
    lo, hi = out["differences"]["pivot-ref"]["mean"]["ci95_items_given_seeds"]
    assert lo == pytest.approx(0.12) and hi == pytest.approx(0.12)  # every item differs by the same amount
    assert compare(arms, n_boot=10, items={"a", "b"})["n_items"] == 2
    assert compare(arms, n_boot=10, exclude_copyable=True)["n_records"] == 7
    assert compare(arms, n_boot=10)["n_records"] == 8


def test_summarize_reports_every_metric_and_scope():
    rows = []
    for d in ("en->fr", "fr->en"):
        for k, item in enumerate(["a", "b", "c"]):
            per_token = [-1.0] + [-2.0] * 9 if k < 2 else [-3.0] + [-2.0] * 9  # a, b solved; c last
            ll = _ll(per_token, 2)
            m = M.record_metrics(ll, 2)
            rows.append(ItemScore(item, d, m["S"], 0.0, (), 0.0, 2, 0, tuple(map(tuple, ll)), copyable=item == "a"))
    s = summarize(rows, ["en", "fr"], item_sets={"indomain": {"b", "c"}})
    assert s["scopes"]["all"]["metrics"]["acc1"]["mean"] == pytest.approx(2 / 3)
    assert s["scopes"]["non_copyable"]["metrics"]["acc1"]["mean"] == pytest.approx(1 / 2)
    assert s["scopes"]["indomain"]["metrics"]["acc1"]["mean"] == pytest.approx(1 / 2)
    assert s["scopes"]["indomain:non_copyable"]["n_items"] == 2
    assert s["item_metrics"]["rr"]["en->fr"]["c"] == pytest.approx(1 / 10)
    assert s["copyable"] == {"en->fr": ["a"], "fr->en": ["a"]}
    assert s["matrix_acc1"][0][1] == pytest.approx(2 / 3)
    back = ItemScore.from_json(rows[0].to_json())
    assert back == rows[0] and rows[0].to_json()["acc1"] == 1.0


def test_cognates_and_copyable_flag(model_and_tok):
    from evaluation.itemsets import cognates, copyable

    _, tok, _ = model_and_tok
    assert cognates("problem", "problème", "en", "fr") and not cognates("water", "eau", "en", "fr")
    assert cognates("水道", "水", "ja", "zh") and not cognates("犬", "狗", "ja", "zh")
    assert copyable(tok, "information", "information", "en", "fr")
    assert not copyable(tok, "water", "eau", "en", "fr")


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    from evaluation.model_io import load_model

    return load_model(tiny_model_dir, device="cpu")


def test_own_pair_doc_counts_match_whole_token_sequences():
    from evaluation.behaviours import own_pair_doc_counts

    docs = [np.array([1, 2, 3, 9]), np.array([2, 3, 5]), np.array([1, 5, 2]), np.array([3, 2, 1, 5])]
    counts = own_pair_doc_counts(docs, {"p": ([2, 3], [1]), "q": ([5], [1]), "r": ([9], [5])})
    # [2, 3] in docs 0 and 1; [1] in 0, 2, 3; [5] in 1, 2, 3; [9] only in 0
    assert counts == {"p": 1, "q": 2, "r": 0}
    # a sequence does not match across two documents' boundary
    assert own_pair_doc_counts([np.array([7, 2]), np.array([3, 7])], {"x": ([2, 3], [7])}) == {"x": 0}


def test_indomain_set_rule_and_frozen_hash(tmp_path):
    from evaluation.dataset import Item
    from evaluation.itemsets import build_indomain, check_frozen, own_language_frequencies, write_frozen

    langs = ["en", "fr"]
    items = [Item(f"w{i}.n", i, "n", {"en": f"e{i}", "fr": f"f{i}"}, {"fr": [f"f{i}", f"alt{i}"]}, {},
                  {"en": [f"de{i}"], "fr": [f"df{i}"]}) for i in range(6)]
    docs = [("en", "e0 e1 e2 de0 de1 de2 de3 de4 de5 e3 e4"), ("en", "e0 e1 de0 de2 e2"), ("fr", "f0 f1 f2 df0 alt0"),
            ("fr", "f0 f1 df1 df2 df3 df4 df5 f3"), ("de", "e5 f5")]
    vocab = {lang: {w for it in items for w in [it.words[lang], *it.distractors[lang]]} | {"alt0"} for lang in langs}
    freq = own_language_frequencies(docs, vocab)
    assert freq["en"]["e0"] == 2 and freq["fr"]["alt0"] == 1 and "e5" not in freq["en"]  # own language only
    chosen, detail = build_indomain(items, freq, langs, size=2, min_docs=1, seed=0, n_distractors=2)
    assert [it.id for it in chosen] == ["w0.n", "w1.n"]  # rarest word most frequent; ties by data set order
    for it in chosen:
        for lang in langs:
            ds = it.distractors[lang]
            assert len(ds) == 2 and not set(ds) & {it.words[lang], *it.alternatives.get(lang, [])}
            assert all(freq[lang][w] > 0 for w in ds)
    assert detail["w0.n"]["freq"] == {"en": 2, "fr": 2}
    with pytest.raises(ValueError, match="candidates"):
        build_indomain(items, freq, langs, size=2, min_docs=1, seed=0, n_distractors=20)
    m = write_frozen(tmp_path / "set", chosen, detail, {"lake": "l"})
    assert m["ids"] == ["w0.n", "w1.n"] and check_frozen(tmp_path / "set").name == "indomain-items.jsonl"
    (tmp_path / "set" / "indomain-items.jsonl").write_text("changed\n")
    with pytest.raises(ValueError, match="changed after it was frozen"):
        check_frozen(tmp_path / "set")
