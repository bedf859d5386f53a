"""The packed form the cooccur job shuffles: global language table, key packing, routing, summing, read units."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pivot_spark.lake import FileEntry, Lake
from pivot_spark.lake.spark import plan_read_units, read_unit_batches
from pivot_spark.schemas import DOC_TOKENS
from pivot_spark.steps.cooccur import TokenBatch, decode_pair_keys, pair_key_counts, token_key_counts
from pivot_spark.steps.cooccur_packed import PACKED, decode_packed, route_packed, sum_packed
from tests.oracles import brute_force_pairs
from tests.unit.test_cooccur import doc_table, realistic_docs

VOCAB = 300
LANGS = ["de", "en", "fr", "ja", "und", "zh"]


def _packed(batch: TokenBatch, window: int, keep: np.ndarray, snap: int) -> pa.Table:
    keys, count, doc_count = pair_key_counts(batch, window=window, keep=keep)
    n = len(keys)
    return pa.table([np.full(n, snap, np.int32), np.full(n, window, np.int32), keys, count, doc_count],
                    schema=PACKED)


def test_global_language_table_gives_summable_keys() -> None:
    """Batches with different local language tables, remapped to one table, sum to the whole corpus's counts."""
    rng = np.random.default_rng(7)
    docs = realistic_docs(rng, 60, VOCAB)
    keep = np.ones(VOCAB, bool)
    keep[:5] = False
    halves = [TokenBatch.from_arrow(doc_table(docs[:25])), TokenBatch.from_arrow(doc_table(docs[25:]))]
    assert halves[0].lang_names != tuple(LANGS)
    parts = pa.concat_tables([_packed(h.with_lang_names(LANGS), 10, keep, 0) for h in halves])
    snap, window, key, count, doc_count = sum_packed(parts)
    token_a, token_b, lang_a, lang_b = decode_pair_keys(key, VOCAB, LANGS)
    got = {(a, b, la, lb): (c, d) for a, b, la, lb, c, d in zip(
        token_a.to_pylist(), token_b.to_pylist(), lang_a.to_pylist(), lang_b.to_pylist(), count, doc_count,
        strict=True)}
    assert got == brute_force_pairs(docs, window=10, content=keep)


def test_with_lang_names_rejects_unknown_languages() -> None:
    batch = TokenBatch.from_docs([([1, 2], ["en", "xx"])])
    with pytest.raises(ValueError, match="xx"):
        batch.with_lang_names(["en", "fr"])
    remapped = batch.with_lang_names(["fr", "xx", "en"])
    assert [remapped.lang_names[i] for i in remapped.langs] == ["en", "xx"]


@pytest.mark.parametrize("huge_key", [False, True])
def test_sum_packed_numpy_and_arrow_paths_agree(huge_key: bool) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    key = rng.integers(0, 50, n).astype(np.int64) + ((1 << 61) if huge_key else 0)
    t = pa.table([rng.integers(0, 3, n).astype(np.int32), rng.choice([0, 4, 10], n).astype(np.int32), key,
                  rng.integers(1, 5, n), rng.integers(1, 3, n)], schema=PACKED)
    got = sum_packed(t)
    ref = t.group_by(["snap", "window", "key"]).aggregate([("count", "sum"), ("doc_count", "sum")]).to_pandas()
    ref = ref.sort_values(["snap", "window", "key"]).reset_index(drop=True)
    order = np.lexsort((got[2], got[1], got[0]))
    for col, arr in zip(["snap", "window", "key", "count_sum", "doc_count_sum"], got, strict=True):
        assert np.array_equal(arr[order], ref[col].to_numpy()), col


def test_route_sends_every_key_to_one_partition() -> None:
    rng = np.random.default_rng(5)
    key = rng.integers(0, 1 << 40, 20_000).astype(np.int64)
    rb = pa.RecordBatch.from_arrays([pa.array(np.zeros(len(key), np.int32)), pa.array(np.full(len(key), 10, np.int32)),
                                     pa.array(key), pa.array(np.ones(len(key), np.int64)),
                                     pa.array(np.ones(len(key), np.int64))], schema=PACKED)
    seen: dict[int, int] = {}
    rows = 0
    sizes = []
    for r, blob in route_packed(rb, 7):
        part = pa.ipc.open_stream(blob).read_all()
        sizes.append(part.num_rows)
        rows += part.num_rows
        for k in part["key"].to_pylist():
            assert seen.setdefault(k, r) == r
    assert rows == len(key) and len(sizes) == 7
    assert min(sizes) > 0.5 * max(sizes)  # the hash spreads keys evenly
    again = {k: r for r, blob in route_packed(rb, 7) for k in pa.ipc.open_stream(blob).read_all()["key"].to_pylist()}
    assert again == seen  # deterministic: the same key goes to the same partition in every task


def test_decode_packed_prunes_pairs_and_keeps_token_rows() -> None:
    batch = TokenBatch.from_docs([([3, 4, 5, 3, 4], ["en", "en", "fr", "fr", "en"])] * 3).with_lang_names(LANGS)
    keep = np.ones(VOCAB, bool)
    pairs_t = _packed(batch, 3, keep, 0)
    tk, tc, td = token_key_counts(batch, keep=keep)
    tokens_t = pa.table([np.zeros(len(tk), np.int32), np.zeros(len(tk), np.int32), tk, tc, td], schema=PACKED)
    pieces = np.array([f"p{i}" for i in range(VOCAB)], dtype=object)
    pairs, stats, counts = decode_packed(pa.concat_tables([pairs_t, tokens_t]), ["s0"], VOCAB, LANGS, pieces,
                                          min_count=4, tok="t")
    ref = brute_force_pairs([([3, 4, 5, 3, 4], ["en", "en", "fr", "fr", "en"])] * 3, window=3, content=keep)
    assert {(r["token_a"], r["token_b"], r["lang_a"], r["lang_b"]): (r["count"], r["doc_count"])
            for r in pairs.to_pylist()} == {k: v for k, v in ref.items() if v[0] >= 4}
    assert counts["pair_occurrences.3"] == sum(v[0] for v in ref.values())
    assert counts["distinct_pairs.3"] == len(ref)
    assert set(stats["piece"].to_pylist()) == {"p3", "p4", "p5"}
    assert set(pairs["snapshot"].to_pylist()) == {"s0"} and set(pairs["tokenizer"].to_pylist()) == {"t"}


def test_read_units_cover_every_row_group_once(tmp_path) -> None:
    """plan_read_units deals all row groups of the pinned version to balanced units; reading them back gives
    exactly the table's rows, with the partition column filled in."""
    lake = Lake(str(tmp_path / "lake"))
    rng = np.random.default_rng(1)
    rows = []
    for snap in ("a", "b"):
        for i in range(300):
            n = int(rng.integers(1, 200))
            rows.append({"doc_id": f"{snap}{i}", "tokenizer": "t", "token_ids": rng.integers(0, 99, n).tolist(),
                         "token_langs": ["en"] * n, "n_tokens": n, "lid_model": "m", "snapshot": snap})
    table = pa.Table.from_pylist(rows, schema=DOC_TOKENS)
    root = tmp_path / "lake" / "doc_tokens"
    entries = []
    for snap in ("a", "b"):
        part = table.filter(pa.compute.equal(table["snapshot"], snap)).drop(["snapshot"])
        (root / f"snapshot={snap}").mkdir(parents=True)
        path = f"snapshot={snap}/f.parquet"
        pq.write_table(part, root / path, row_group_size=40)
        entries.append(FileEntry(path, (root / path).stat().st_size, {"snapshot": snap}, part.num_rows,
                                 json.dumps({"numRecords": part.num_rows})))
    lake.commit_files("doc_tokens", entries, mode="append", app_id="test")
    units = plan_read_units(lake, "doc_tokens", None, 4)
    assert len(units) == 4
    groups = [(path, rg) for u in units for path, rgs, _ in u for rg in rgs]
    assert len(groups) == len(set(groups)) == 2 * 8  # 300 rows in row groups of 40
    back = pa.Table.from_batches([b for u in units for b in read_unit_batches(
        lake.table_uri("doc_tokens"), "doc_tokens", u, ["doc_id", "n_tokens", "snapshot"])])
    assert sorted(back["doc_id"].to_pylist()) == sorted(table["doc_id"].to_pylist())
    assert {r["doc_id"][0] == r["snapshot"] for r in back.to_pylist()} == {True}
    only_b = plan_read_units(lake, "doc_tokens", None, 4, [("snapshot", "=", "b")])
    assert {pv["snapshot"] for u in only_b for _, _, pv in u} == {"b"}


def test_row_slices_balance_by_weight(tmp_path) -> None:
    """plan_row_slices cuts row groups into slices by a weight column and deals them so that one huge row
    does not share a unit with many others; every row is read exactly once."""
    from pivot_spark.lake.spark import plan_row_slices, read_slice_batches
    from pivot_spark.schemas import DOCUMENTS

    lake = Lake(str(tmp_path / "lake"))
    sizes = [100] * 400 + [40_000] + [100] * 399  # one multi-MB-like page among short descriptions
    rows = [{f.name: None for f in DOCUMENTS} | {"doc_id": f"d{i}", "text": "x", "n_bytes": n, "snapshot": "s",
                                                 "source": "t", "content_hash": "h", "run_id": "r"}
            for i, n in enumerate(sizes)]
    table = pa.Table.from_pylist(rows, schema=DOCUMENTS)
    root = tmp_path / "lake" / "documents" / "snapshot=s"
    root.mkdir(parents=True)
    pq.write_table(table.drop(["snapshot"]), root / "f.parquet", row_group_size=300)
    size = (root / "f.parquet").stat().st_size
    lake.commit_files("documents", [FileEntry("snapshot=s/f.parquet", size, {"snapshot": "s"}, len(rows),
                                              json.dumps({"numRecords": len(rows)}))], mode="append", app_id="t")
    units = plan_row_slices(lake, "documents", None, 4, "n_bytes")
    assert len(units) == 4
    back = [pa.Table.from_batches(list(read_slice_batches(lake.table_uri("documents"), "documents", u,
                                                          ["doc_id", "n_bytes", "snapshot"]))) for u in units]
    ids = [i for t in back for i in t["doc_id"].to_pylist()]
    assert sorted(ids) == sorted(r["doc_id"] for r in rows)
    weights = sorted(sum(t["n_bytes"].to_pylist()) for t in back)
    heavy = next(t for t in back if "d400" in t["doc_id"].to_pylist())
    assert heavy.num_rows < 100  # the heavy row's unit holds few others
    assert weights[-1] == max(40_000 + 100 * (heavy.num_rows - 1), weights[-1])
    assert weights[0] > 0.5 * weights[1]  # the light units are balanced among themselves
