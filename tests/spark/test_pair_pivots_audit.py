"""pair-pivots (the paper's per-pair pivots) in Spark against the pandas reference
(steps.pivots.pair_pivot_candidates) on a synthetic corpus whose pivots are known and on the fixture; the audit's
counts against a brute-force count (tests/oracles.py) on the fixture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest

from pivot_spark import artifacts
from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.audit import audit, count_specs, eval_words
from pivot_spark.pipeline.pair_cooccur import running_text_ids
from pivot_spark.pipeline.pair_pivots import pair_pivots, spark_pair_pivots
from pivot_spark.schemas import PAIR_PIVOTS
from pivot_spark.steps.cooccur import count_pairs, sum_counts, token_stats
from pivot_spark.steps.pivots import PAIR_KEYS, pair_pivot_candidates, word_piece_mask
from pivot_spark.steps.tokenize import get_sp, vocab_pieces
from tests.oracles import brute_force_audit

pytestmark = pytest.mark.spark

COLUMNS = ["token_id", "doc_count_a", "doc_count_b", "excess_a", "excess_b", "score", "rank"]
# Words of the fixture corpus (en, fr, de, ja, zh) for the evaluation items of the tests.
ITEMS = [
    {"id": "file.n", "words": {"en": "file", "fr": "fichier", "de": "Datei", "ja": "ファイル", "zh": "文件"}},
    {"id": "system.n", "words": {"en": "system", "fr": "système", "de": "System", "ja": "システム", "zh": "系统"}},
    {"id": "user.n", "words": {"en": "user", "fr": "utilisateur", "de": "Benutzer", "zh": "用户"}},
    {"id": "command.n", "words": {"en": "command", "fr": "commande", "de": "Befehl"}},
]


def known_pivot_corpus(rng: np.random.Generator, n_docs: int = 500):
    """Word a (en, two tokens) and its translation b (fr); pivot tokens that come near both in the documents that
    hold them; a background token in every document (near everything, no excess); tokens near a only, near b
    only; filler words; and a code token near both on zxx lines, which must not count."""
    pieces = ["<unk>", ".", "▁wa", "rd", "▁motb"]  # word a = [2, 3], word b = [4]
    pivots = list(range(5, 10))
    pieces += [f"▁pivot{c}" for c in "abcde"]
    background, only_a, only_b, code = 10, 11, 12, 13
    pieces += ["▁common", "▁onlya", "▁onlyb", "▁struct"]
    filler = list(range(14, 54))
    pieces += [f"▁filler{c}{d}" for c in "abcd" for d in "abcdefghij"]
    content = np.ones(len(pieces), dtype=bool)
    content[:2] = False
    docs = []

    def line(doc: tuple[list[int], list[str]], tokens: list[int], lang: str) -> None:
        doc[0].extend([*tokens, 1])
        doc[1].extend([lang] * (len(tokens) + 1))

    for _ in range(n_docs):
        ids: list[int] = []
        langs: list[str] = []
        d = (ids, langs)
        u = rng.random()
        for _ in range(int(rng.integers(3, 7))):
            line(d, [background] + [int(t) for t in rng.choice(filler, size=6)], str(rng.choice(["en", "fr"])))
        if u < 0.35:  # a bilingual passage on the topic: both words and the pivots
            k = int(rng.integers(1, 4))
            line(d, [2, 3, *[int(t) for t in rng.choice(pivots, size=k)], 4], "en")
            line(d, [4, *[int(t) for t in rng.choice(pivots, size=k)], 2, 3], "fr")
            line(d, [code, 2, 3, code, 4], "zxx")
        elif u < 0.5:
            line(d, [2, 3, only_a, 2, 3], "en")
        elif u < 0.65:
            line(d, [4, only_b, 4], "fr")
        docs.append((ids, langs))
    return docs, pieces, content, pivots, {"background": background, "only_a": only_a, "only_b": only_b,
                                           "code": code}


def test_pair_pivots_on_a_synthetic_corpus_with_known_pivots(spark):
    docs, pieces, content, pivots, others = known_pivot_corpus(np.random.default_rng(3))
    cooc = count_pairs(docs, window=10, content=content)
    stats = token_stats(docs, content=content)
    keep = word_piece_mask(pieces, 2)
    ref = pair_pivot_candidates(cooc.to_pandas(), stats.to_pandas(), [2, 3], [4], n_docs=len(docs), top_n=20,
                                keep=keep, languages=["en", "fr"])
    assert set(ref["token_id"]) == set(pivots)  # the known pivots, nothing else
    # without the language rule the code token on the zxx lines would be one of them
    no_rule = pair_pivot_candidates(cooc.to_pandas(), stats.to_pandas(), [2, 3], [4], n_docs=len(docs),
                                    top_n=20, keep=keep, languages=["en", "fr", "zxx", "xx"])
    assert others["code"] not in set(no_rule["token_id"])  # zxx never counts, whatever the list says
    with_code = pair_pivot_candidates(cooc.to_pandas(), stats.to_pandas(), [2, 3], [4], n_docs=len(docs),
                                      top_n=20, keep=keep)
    assert others["code"] in set(with_code["token_id"])  # all rows: the code token looks like a pivot

    words = [("p1", [2, 3], [4]), ("p2", [4], [2, 3]), ("none", [2, 3], [99])]
    got = spark_pair_pivots(spark, spark.createDataFrame(cooc), spark.createDataFrame(stats), words,
                            n_docs=len(docs), keep=keep, top_n=3, languages=["en", "fr"]).toPandas()
    assert set(got["pair_id"]) == {"p1", "p2"}
    for pid, a, b in words[:2]:
        want = pair_pivot_candidates(cooc.to_pandas(), stats.to_pandas(), a, b, n_docs=len(docs), top_n=3,
                                     keep=keep, languages=["en", "fr"])
        mine = got[got["pair_id"] == pid].sort_values("rank")[COLUMNS].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine.astype(want.dtypes.to_dict()), want, check_exact=True)
        assert set(mine["token_id"]) <= set(pivots) and len(mine) == 3


def test_pair_pivots_job_equals_the_reference_on_the_fixture(spark, smoke_lake, lake_copy, tmp_path):
    pairs_file = tmp_path / "pairs.jsonl"
    _, pairs = eval_words(ITEMS)
    pairs_file.write_text("".join(json.dumps(dict(zip(["pair_id", "lang_a", "word_a", "lang_b", "word_b"], p,
                                                      strict=True)), ensure_ascii=False) + "\n" for p in pairs))
    cfg = load_config("smoke", [f"lake.uri={lake_copy}", "pair_pivots.top_n=30"])
    res = pair_pivots(cfg, str(pairs_file), quiet=True)
    lake = Lake(str(lake_copy))
    table = lake.read_arrow("pair_pivots")
    assert table.schema.names == PAIR_PIVOTS.names and res["counts"]["window"] == 10
    assert res["counts"]["pairs_with_pivots"] >= 5 and table.num_rows == res["counts"]["rows"]
    tok = table["tokenizer"][0].as_py()
    sp_path = str(artifacts.tokenizer_path(lake.uri, tok))
    sp = get_sp(sp_path)
    flt = (pc.field("tokenizer") == tok) & (pc.field("window") == 10)
    cooc = sum_counts([lake.read_arrow("cooccurrence", columns=[*PAIR_KEYS, "count", "doc_count"], filter=flt)],
                      PAIR_KEYS).to_pandas()
    stats = lake.read_arrow("token_stats", columns=["token_id", "lang", "count", "doc_count"]).to_pandas()
    n_docs = lake.read_arrow("doc_tokens", columns=["doc_id"]).num_rows
    keep = word_piece_mask(vocab_pieces(sp_path).tolist(), cfg.pivots.min_piece_chars)
    rows = table.to_pandas()
    for pid, la, wa, lb, wb in pairs:
        want = pair_pivot_candidates(cooc, stats, running_text_ids(sp, wa, la), running_text_ids(sp, wb, lb),
                                     n_docs=n_docs, top_n=30, keep=keep, languages=cfg.pivots.languages)
        mine = rows[rows["pair_id"] == pid].sort_values("rank")[COLUMNS].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine.astype(want.dtypes.to_dict()), want, check_exact=True)
        assert all(rows.loc[rows["pair_id"] == pid, "piece"] == [sp.id_to_piece(int(t)) for t in mine["token_id"]])

    # the logit lens reads the table; a lake without it gives the same sets, computed with the same rule
    from evaluation.dataset import Item
    from evaluation.logit_lens import pivot_sets
    from pivot_spark.lake.reader import open_reader
    from pivot_spark.steps.tokenize import hf_tokenizer

    items = [Item(it["id"], k, "n", dict(it["words"]), {}, {}) for k, it in enumerate(ITEMS)]
    directions = [("en", "fr"), ("fr", "de"), ("zh", "ja")]
    hf = hf_tokenizer(sp_path)
    from_table, info = pivot_sets(open_reader(str(lake_copy)), hf, items, directions, tokenizer=tok, window=None,
                                  top_n=30)
    assert info["source"] == "pair_pivots" and info["window"] == 10 and "pair_pivots" in info["versions"]
    computed, info = pivot_sets(open_reader(str(smoke_lake)), hf, items, directions, tokenizer=tok, window=None,
                                top_n=30)
    assert info["source"] == "cooccurrence"
    assert from_table == computed and any(from_table.values())


def test_audit_counts_equal_a_brute_force_count(spark, lake_copy, tmp_path):
    items_file = tmp_path / "items.jsonl"
    items_file.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in ITEMS), encoding="utf-8")
    cfg = load_config("smoke", [f"lake.uri={lake_copy}", f"audit.items={items_file}", "audit.window=30"])
    out = tmp_path / "audit.json"
    summary = audit(cfg, "main", str(out), quiet=True)
    report = json.loads(out.read_text(encoding="utf-8"))
    assert summary["counts"]["arms"] == {a: v["totals"] for a, v in report["arms"].items()}

    lake = Lake(str(lake_copy))
    train = lake.read_arrow("train_set", columns=["selection", "arm", "doc_id", "tokenizer"],
                            filter=pc.field("selection") == "main")
    tok = train["tokenizer"][0].as_py()
    tokens = lake.read_arrow("doc_tokens", columns=["doc_id", "token_ids", "token_langs"],
                             filter=pc.field("tokenizer") == tok)
    by_id = dict(zip(tokens["doc_id"].to_pylist(),
                     zip(tokens["token_ids"].to_pylist(), tokens["token_langs"].to_pylist(), strict=True),
                     strict=True))
    arms: dict[str, list] = {}
    for arm, doc_id in zip(train["arm"].to_pylist(), train["doc_id"].to_pylist(), strict=True):
        arms.setdefault(arm, []).append(by_id[doc_id])
    words, pairs = eval_words(ITEMS)
    word_specs, pair_specs = count_specs(get_sp(str(artifacts.tokenizer_path(lake.uri, tok))), words, pairs)
    spellings: dict[str, list] = {}
    for spec, ids in word_specs:
        spellings.setdefault(spec.rsplit("#", 1)[0], []).append(ids)
    combos: dict[str, list] = {}
    for spec, _, ids_a, _, ids_b in pair_specs:
        combos.setdefault(spec.rsplit("#", 1)[0], []).append((ids_a, ids_b))
    want = brute_force_audit(arms, spellings.items(), combos.items(), window=30)
    assert set(report["arms"]) == set(want) == {"pivot", "random"}
    for arm, counts in want.items():
        got = report["arms"][arm]
        totals = got["totals"]
        n_tokens = sum(counts["lang"].values())
        assert totals["documents"] == counts["docs"][""] and totals["tokens"] == n_tokens
        assert totals["zxx_share"] == pytest.approx(counts["lang"].get("zxx", 0) / n_tokens, abs=0)
        assert totals["lang_share"] == {k: round(v / n_tokens, 4) for k, v in
                                        sorted(counts["lang"].items(), key=lambda kv: -kv[1])}
        assert got["word_counts"] == counts["word"] and got["pair_counts"] == counts["pair"]
        assert totals["words_seen"] == len(counts["word"]) and totals["pairs_cooccurring"] == len(counts["pair"])
    assert sum(v["totals"]["word_occurrences"] for v in report["arms"].values()) > 0
    assert sum(v["totals"]["pair_cooccurrences"] for v in report["arms"].values()) > 0
    assert any(v["totals"]["zxx_share"] > 0 for v in report["arms"].values())
    # without an items file: languages and code spans only; the report lands in the lake
    plain = audit(load_config("smoke", [f"lake.uri={lake_copy}"]), "main", quiet=True)
    assert Path(plain["counts"]["report"]) == lake_copy / "_audit" / "main.json"
    assert plain["counts"]["arms"]["pivot"]["zxx_share"] == report["arms"]["pivot"]["totals"]["zxx_share"]
    assert plain["counts"]["arms"]["pivot"]["words"] == 0
    with pytest.raises(ValueError, match="no rows"):
        audit(load_config("smoke", [f"lake.uri={lake_copy}"]), "nothing", quiet=True)
