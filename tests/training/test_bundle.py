"""Offline bundles (pivot_spark.bundle): what the trainer and the evaluator read from a bundle is what they read from
the lake, the bundle is checked and written atomically, and reading it needs neither delta-rs nor Spark."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import write_deltalake

from evaluation import tables as lk
from pivot_spark.bundle import Bundle, BundleTooLarge, Trimmed, export, is_bundle, sha256
from pivot_spark.lake import Lake
from pivot_spark.lake.reader import LakeReader, open_reader
from training.data import PackedStream, open_train_set

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(lake: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("offline") / "bundle"
    tok = next((Path(lake) / "_models" / "tokenizer").glob("*.model")).stem
    note = tmp_path_factory.mktemp("notes") / "facts.json"
    note.write_text(json.dumps({"tokenizer": tok}))
    export(open_reader(lake), out, train=[("demo", "pivot")], tokenizers=[tok], files={"experiment/facts.json": note},
           meta={"recipe": "test"})
    return out


def _batches(ts, n=3):
    s = PackedStream(ts, seq_len=32, batch_size=4, seed=5, block=24)
    return [b.tolist() for b in itertools.islice(iter(s), n)]


def test_trainer_reads_the_same_rows_and_stream_from_a_bundle(lake, bundle):
    assert is_bundle(bundle) and not is_bundle(lake)
    a, b = open_train_set(lake, "demo", "pivot"), open_train_set(str(bundle), "demo", "pivot")
    da, db = a.describe(), b.describe()
    assert da.pop("table") != db.pop("table") and da == db  # same version, shards, documents, tokens
    assert b.tokenizer_model.startswith(str(bundle)) and b.vocab_size == a.vocab_size
    assert _batches(a) == _batches(b)
    # the train files are byte copies of the pinned version's files
    src = {Path(p).name: sha256(p) for p in Lake(lake).file_uris("train_set", a.version,
                                                                  [("selection", "=", "demo"), ("arm", "=", "pivot")])}
    got = {Path(p).name: sha256(p) for p in Bundle.open(bundle).files("train_set", {"arm": "pivot"})}
    assert got == src


def test_a_bundle_holds_only_what_was_exported(bundle):
    with pytest.raises(ValueError, match="no rows for selection='demo' arm='random'"):
        open_train_set(str(bundle), "demo", "random")
    with pytest.raises(ValueError, match="holds train_set version 1, not 0"):
        open_train_set(str(bundle), "demo", "pivot", version=0)
    with pytest.raises(FileNotFoundError, match="holds no table 'cooccurrence'"):
        open_reader(bundle).read("cooccurrence")
    m = Bundle.open(bundle).manifest
    assert m["meta"] == {"recipe": "test"} and set(m["files"]) == {"experiment/facts.json",
                                                                   next(iter(k for k in m["files"] if "_models" in k))}


def test_evaluator_reads_trimmed_tables_and_counts_of_the_pinned_version(tmp_path):
    lake = tmp_path / "lake"
    rows = pa.table({"token_a": pa.array([1, 2, 3, 4, 1], pa.int32()), "token_b": pa.array([5, 6, 7, 8, 9], pa.int32()),
                     "window": pa.array([10, 10, 10, 10, 50], pa.int32()), "count": pa.array([3, 4, 5, 6, 7], pa.int64()),
                     "tokenizer": ["t1"] * 5})
    write_deltalake(str(lake / "cooccurrence"), rows.slice(0, 3))
    write_deltalake(str(lake / "cooccurrence"), rows.slice(3), mode="append")
    near = pc.field("token_a").isin(pa.array([1, 4], pa.int32())) & (pc.field("window") == 10)
    out = tmp_path / "bundle"
    m = export(open_reader(str(lake)), out, trimmed={"cooccurrence": Trimmed(near, ["token_a", "token_b", "count",
                                                                             "tokenizer"], "rows near 1 and 4")},
               counts=[])
    t = m["tables"]["cooccurrence"]
    assert t["version"] == 1 and t["source_rows"] == 5 and t["files"][0]["rows"] == 2 and "is_in" in t["filter"]
    got = open_reader(out).read("cooccurrence").sort_by("token_a")
    assert got.column_names == ["token_a", "token_b", "count", "tokenizer"]
    assert got["token_a"].to_pylist() == [1, 4] and got["count"].to_pylist() == [3, 6]
    assert open_reader(out).read("cooccurrence", ["count"], pc.field("token_a") == 4)["count"].to_pylist() == [6]
    assert open_reader(out).row_count("cooccurrence") == open_reader(lake).row_count("cooccurrence") == 5
    assert lk.tokenizers_in(open_reader(out), "cooccurrence") == ["t1"]


def test_verify_finds_missing_and_changed_files(bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    b = Bundle.open(copy)
    assert b.verify() == []
    (first,) = b.files("train_set")
    data = bytearray(Path(first).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(first).write_bytes(bytes(data))
    os.remove(copy / next(iter(b.manifest["files"])))
    problems = b.verify()
    assert any("content differs" in p for p in problems) and any("missing" in p for p in problems)
    (copy / "bundle.json").write_text(json.dumps({**b.manifest, "format": "other/9"}))
    with pytest.raises(ValueError, match="format 'other/9'"):
        Bundle.open(copy)


def test_export_replaces_a_bundle_whole_or_not_at_all(lake, tmp_path):
    out = tmp_path / "b"
    first = export(open_reader(lake), out, train=[("demo", "pivot")])
    with pytest.raises(ValueError, match="arm='nope'"):
        export(open_reader(lake), out, train=[("demo", "random"), ("demo", "nope")])
    assert Bundle.open(out).manifest == first and Bundle.open(out).verify() == []
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folder left
    again = export(open_reader(lake), out, train=[("demo", "random")])
    assert {f["partition"]["arm"] for f in again["tables"]["train_set"]["files"]} == {"random"}
    assert not list(out.glob("train_set/selection=demo/arm=pivot/*"))


def test_reading_a_bundle_needs_neither_deltalake_nor_pyspark(bundle, tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\nfor m in ('deltalake', 'pyspark', 'delta', 'fasttext', 'langcodes'):\n    sys.modules[m] = None\n")
    code = ("import sys, itertools\n"
            "from training.data import PackedStream, open_train_set\n"
            "ts = open_train_set(sys.argv[1], 'demo', 'pivot')\n"
            "b = next(iter(PackedStream(ts, seq_len=32, batch_size=4, seed=5, block=24)))\n"
            "import experiment.run, experiment.cli, evaluation.cli, evaluation.jobs\n"
            "assert 'deltalake' not in sys.modules or sys.modules['deltalake'] is None\n"
            "print('ok', tuple(b.shape))\n")
    env = {**os.environ, "PYTHONPATH": f"{block}{os.pathsep}{ROOT}"}
    res = subprocess.run([sys.executable, "-c", code, str(bundle)], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok (4, 33)"


def test_a_lake_reader_pins_each_table_at_its_first_use(tmp_path):
    lake = str(tmp_path / "lake")
    t = pa.table({"x": [1, 2]})
    write_deltalake(f"{lake}/t", t)
    r = open_reader(lake)
    assert isinstance(r, LakeReader) and r.read("t").num_rows == 2 and r.version("t") == 0
    write_deltalake(f"{lake}/t", t, mode="append")  # the lake moves on; the reader stays at version 0
    assert r.read("t").num_rows == 2 and r.row_count("t") == 2 and r.pinned() == {"t": 0}
    assert open_reader(lake).row_count("t") == 4
    old = open_reader(lake, versions={"t": 0})
    assert old.read("t").num_rows == 2 and old.pinned() == {"t": 0}
    with pytest.raises(FileNotFoundError, match="no Delta table 'nope'"):
        r.read("nope")


def test_export_refuses_a_bundle_over_its_size_limit(lake, tmp_path):
    out = tmp_path / "b"
    with pytest.raises(BundleTooLarge, match="over its limit of 0.0 MiB"):
        export(open_reader(lake), out, train=[("demo", "pivot")], max_bytes=1000)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary folder left
