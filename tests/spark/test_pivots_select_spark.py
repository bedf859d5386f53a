"""pivots and select in Spark against their pandas references (steps/pivots.build_pivots, steps/select): the
same pivots (ids, ranks, scores, drop reasons) and the same arms and shards, on the fixture and on synthetic data
built so that the hard cases happen (counts split over snapshots, ties, greedy skipping over several rounds), and
the same tables whatever the partitioning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pivot_spark import artifacts
from pivot_spark.config import PivotsConfig, load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.pivots import spark_pivots
from pivot_spark.pipeline.select import select_arms
from pivot_spark.steps.cooccur import count_pairs, sum_counts, token_stats
from pivot_spark.steps.pivots import PAIR_KEYS, build_pivots, language_rows, piece_table
from pivot_spark.steps.select import assign_shards, lang_mix, select_arm
from pivot_spark.steps.tokenize import content_and_stops, vocab_pieces
from tests.unit.test_pivots import synthetic_corpus

pytestmark = pytest.mark.spark


@contextmanager
def shuffle_partitions(spark, n: int) -> Iterator[None]:
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def assert_same_pivots(got, ref) -> None:
    """Same token ids and ranks, scores within 1e-9 relative, same drop-reason counts."""
    want = ref.pivots
    assert got.pivots["token_id"].tolist() == want["token_id"].tolist()
    assert got.pivots["rank"].tolist() == want["rank"].tolist()
    np.testing.assert_allclose(got.pivots["score"], want["score"], rtol=1e-9, atol=0)
    pd.testing.assert_frame_equal(got.pivots.drop(columns="score"), want.drop(columns="score"))
    assert got.dropped == ref.dropped()


def fixture_graph(lake: Lake, cfg: PivotsConfig):
    """The fixture's graph of one window and its token statistics, summed, as the reference reads them."""
    tok = lake.read_arrow("doc_tokens", columns=["tokenizer"])["tokenizer"][0].as_py()
    flt = (pc.field("tokenizer") == tok) & (pc.field("window") == cfg.window)
    cooc = sum_counts([lake.read_arrow("cooccurrence", columns=[*PAIR_KEYS, "count", "doc_count"], filter=flt)],
                      PAIR_KEYS).to_pandas()
    stats = sum_counts([lake.read_arrow("token_stats", columns=["token_id", "lang", "count", "doc_count"])],
                       ["token_id", "lang"]).to_pandas()
    langs = lake.read_arrow("doc_lang", columns=["lang"])["lang"].value_counts().to_pylist()
    return tok, cooc, stats, {str(d["values"]): int(d["counts"]) for d in langs}


@pytest.mark.parametrize("overrides", [[], ["pivots.association=lift", "pivots.cross_lingual_only=false"]])
def test_pivots_equal_the_reference_on_the_fixture(spark, smoke_lake, overrides):
    lake = Lake(str(smoke_lake))
    cfg = load_config("smoke", [f"lake.uri={lake.uri}", *overrides]).pivots
    tok, cooc, stats, docs_by_lang = fixture_graph(lake, cfg)
    sp_path = str(artifacts.tokenizer_path(lake.uri, tok))
    content, stops = content_and_stops(sp_path, None)
    pieces = vocab_pieces(sp_path).tolist()
    n_docs = lake.read_arrow("doc_tokens", columns=["doc_id"]).num_rows
    ref = build_pivots(cooc, stats, n_docs=n_docs, pieces=pieces, content=content, cfg=cfg, pivot_set="s",
                       tokenizer=tok, stop_ids=stops, docs_by_lang=docs_by_lang)
    assert len(ref.pivots) > 40  # the smoke vocabulary (2,000 pieces) has few word-initial Latin pieces
    if not overrides:  # the job's table is the reference's, to the last bit
        written = lake.read_arrow("pivots").to_pandas().sort_values("rank").reset_index(drop=True)
        label = written["pivot_set"][0]
        pd.testing.assert_frame_equal(written, ref.pivots.assign(pivot_set=label), check_exact=True)
        return
    got = spark_pivots(spark, spark.createDataFrame(cooc), spark.createDataFrame(stats), n_docs=n_docs,
                       docs_by_lang=docs_by_lang, vocab=piece_table(pieces, content, stops, cfg.min_piece_chars),
                       cfg=cfg, pivot_set="s", tokenizer=tok)
    assert_same_pivots(got, ref)
    listed, _ = language_rows(cooc, None, cfg.languages)  # edges between the listed languages only
    assert listed is not None and got.edges == len(listed) < len(cooc)


def test_pivots_on_a_synthetic_graph_whatever_the_partitioning(spark):
    """Counts split over two snapshots (the Spark side sums them), known hubs, drop reasons of every kind; two
    shuffle partition counts and two input partitionings give identical tables."""
    docs, pieces, content, names = synthetic_corpus(np.random.default_rng(8), n_docs=400)
    halves = [docs[:170], docs[170:]]
    cooc_parts = [count_pairs(h, window=10, content=content).to_pandas() for h in halves]
    stats_parts = [token_stats(h, content=content).to_pandas() for h in halves]
    cooc = sum_counts([pa.Table.from_pandas(p) for p in cooc_parts], PAIR_KEYS).to_pandas()
    stats = sum_counts([pa.Table.from_pandas(p) for p in stats_parts], ["token_id", "lang"]).to_pandas()
    docs_by_lang = {"en": 150, "fr": 140, "de": 110}
    cfg = PivotsConfig(top_k=25, min_assoc=0.5, min_token_count=5, max_lang_doc_freq=0.9, min_lang_docs=100)
    ref = build_pivots(cooc, stats, n_docs=len(docs), pieces=pieces, content=content, cfg=cfg, pivot_set="s",
                       tokenizer="t", stop_ids=[pieces.index("▁Nameh")], docs_by_lang=docs_by_lang)
    assert {"not_content", "too_frequent", "below_top_k"} <= set(ref.dropped())
    assert set(names[:7]) <= set(ref.pivots["token_id"].head(12))  # the known hubs lead
    vocab = piece_table(pieces, content, [pieces.index("▁Nameh")], cfg.min_piece_chars)
    tables = []
    for n_parts in (1, 7):
        with shuffle_partitions(spark, n_parts):
            got = spark_pivots(spark, spark.createDataFrame(pd.concat(cooc_parts)).repartition(n_parts),
                               spark.createDataFrame(pd.concat(stats_parts)).repartition(n_parts),
                               n_docs=len(docs), docs_by_lang=docs_by_lang, vocab=vocab, cfg=cfg, pivot_set="s",
                               tokenizer="t")
        assert_same_pivots(got, ref)
        tables.append(got.pivots)
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_pivots_name_inconsistent_inputs(spark):
    cooc = pd.DataFrame({"token_a": [1], "token_b": [2], "lang_a": ["en"], "lang_b": ["fr"], "count": [3],
                         "doc_count": [2]})
    stats = pd.DataFrame({"token_id": [1, 2], "lang": ["en", "de"], "count": [5, 5], "doc_count": [3, 3]})
    vocab = piece_table(["<unk>", "▁ab", "▁cd"], np.array([False, True, True]), None, 2)
    kw: dict[str, Any] = dict(n_docs=10, docs_by_lang={}, vocab=vocab, cfg=PivotsConfig(), pivot_set="s",
                              tokenizer="t")
    with pytest.raises(ValueError, match="missing from token_stats"):
        spark_pivots(spark, spark.createDataFrame(cooc), spark.createDataFrame(stats), **kw)
    with pytest.raises(ValueError, match="no co-occurrence counts"):
        spark_pivots(spark, spark.createDataFrame(cooc).filter("count > 3"), spark.createDataFrame(stats), **kw)
    stats.loc[1, ["token_id", "lang"]] = [7, "fr"]
    cooc.loc[0, "token_b"] = 7
    with pytest.raises(ValueError, match="outside the content mask"):
        spark_pivots(spark, spark.createDataFrame(cooc), spark.createDataFrame(stats), **kw)


def reference_arms(meta: pd.DataFrame, arms: list[str], *, budget: int, seed: int, share: float,
                   n_shards: int) -> pd.DataFrame:
    """``arm, doc_id, shard`` as the pandas reference selects them (the job's former driver-side loop)."""
    chosen: dict[str, list[str]] = {}
    for arm in arms:
        mix = None
        if arm == "langmatch":
            pivot = chosen.get("pivot") or select_arm(meta, "pivot", token_budget=budget, seed=seed,
                                                      pivot_random_share=share)
            ref = lang_mix(meta, pivot)
            mix = dict(zip(ref["lang"], ref["token_share"], strict=True))
        chosen[arm] = select_arm(meta, arm, token_budget=budget, seed=seed,  # type: ignore[arg-type]
                                 pivot_random_share=share, reference_lang_mix=mix)
    return pd.DataFrame([(arm, d, int(s)) for arm, ids in chosen.items()
                         for d, s in zip(ids, assign_shards(ids, n_shards, seed), strict=True)],
                        columns=["arm", "doc_id", "shard"])


def spark_arms(spark, meta: pd.DataFrame, arms: list[str], **kw) -> tuple[pd.DataFrame, dict]:
    chosen = select_arms(spark.createDataFrame(meta).repartition(3), arms, **kw)
    return chosen.picks.toPandas(), chosen.report


def same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return sorted(a.itertuples(index=False, name=None)) == sorted(b.itertuples(index=False, name=None))


def test_select_equals_the_reference_on_the_fixture(spark, smoke_lake):
    lake = Lake(str(smoke_lake))
    sc = load_config("smoke", [f"lake.uri={lake.uri}"]).select
    meta = (lake.read_arrow("doc_pivot", columns=["doc_id", "n_tokens", "pivot_proportion", "lang"])
            .filter(pc.field("n_tokens") >= sc.min_tokens).to_pandas())
    # the job's selection (select.driver_rows: the whole fixture is walked on the driver)
    written = lake.read_arrow("train_set", columns=["arm", "doc_id", "shard"]).to_pandas()
    ref = reference_arms(meta, list(sc.arms), budget=sc.token_budget, seed=sc.seed, share=sc.pivot_random_share,
                         n_shards=sc.n_shards)
    assert same_rows(written, ref)
    # every arm, a random share, and walks that narrow the documents down with Spark aggregations only
    arms = ["langmatch", "pivot", "random"]
    ref = reference_arms(meta, arms, budget=sc.token_budget, seed=5, share=0.3, n_shards=3)
    got, report = spark_arms(spark, meta, arms, token_budget=sc.token_budget, seed=5, pivot_random_share=0.3,
                             n_shards=3, driver_rows=0, buckets=16)
    assert same_rows(got, ref)
    for arm in arms:
        sub = meta[meta["doc_id"].isin(ref.loc[ref["arm"] == arm, "doc_id"])]
        assert report[arm]["documents"] == len(sub) and report[arm]["tokens"] == int(sub["n_tokens"].sum())
        assert report[arm]["mean_pivot_proportion"] == round(float(sub["pivot_proportion"].mean()), 4)


def skewed_meta(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Documents where the greedy fill skips a lot: large documents among small ones, few distinct pivot
    proportions (ties broken by the seeded key), a language missing here and there."""
    large = rng.random(n) < 0.25
    n_tokens = np.where(large, rng.integers(300, 2500, n), rng.integers(16, 120, n))
    return pd.DataFrame({
        "doc_id": [f"doc-{i:04d}" for i in rng.permutation(n)],
        "n_tokens": n_tokens.astype(np.int32),
        "pivot_proportion": rng.integers(0, 6, n) / 5.0,
        "lang": rng.choice(np.array(["en", "fr", "ja", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05]),
    })


def test_select_greedy_skipping_over_several_rounds(spark):
    """Budgets that leave large documents behind while smaller ones still fit, walked with tiny buckets and row
    limits (many rounds of aggregations, driver tails of a few rows), and with the whole walk on the driver."""
    meta = skewed_meta(np.random.default_rng(4), 500)
    arms = ["pivot", "random", "langmatch"]
    budget = int(meta["n_tokens"].sum() * 0.4)
    ref = reference_arms(meta, arms, budget=budget, seed=9, share=0.25, n_shards=4)
    taken = meta.set_index("doc_id").loc[ref.loc[ref["arm"] == "random", "doc_id"]]
    skipped = meta[~meta["doc_id"].isin(taken.index)]
    assert (skipped["n_tokens"] < budget - taken["n_tokens"].sum()).sum() == 0  # nothing that fits was left
    assert (skipped["n_tokens"] > 300).sum() > 20
    for driver_rows, buckets in [(3, 2), (10**6, 1024)]:
        got, _ = spark_arms(spark, meta, arms, token_budget=budget, seed=9, pivot_random_share=0.25, n_shards=4,
                            driver_rows=driver_rows, buckets=buckets)
        assert same_rows(got, ref), (driver_rows, buckets)


def test_select_rejects_what_the_reference_rejects(spark):
    meta = skewed_meta(np.random.default_rng(1), 20)
    kw: dict[str, Any] = dict(seed=1, pivot_random_share=0.0, n_shards=2, driver_rows=10)
    df = spark.createDataFrame(meta)
    with pytest.raises(ValueError, match="fewer than the budget"):
        select_arms(df, ["random"], token_budget=10**9, **kw)
    with pytest.raises(ValueError, match="duplicate doc_id"):
        select_arms(df.unionByName(df), ["random"], token_budget=100, **kw)
    with pytest.raises(ValueError, match="unknown arm"):
        select_arms(df, ["best"], token_budget=100, **kw)
    with pytest.raises(ValueError, match="no scored documents"):
        select_arms(df.filter("n_tokens < 0"), ["random"], token_budget=100, **kw)
