"""Writers that cannot corrupt each other (Spark): ingests and rebuilds started at the same moment on one lake, with
overlapping inputs, end with each text once; a rebuild's stages run under their own run ids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pivot_spark import artifacts
from pivot_spark.config import load_config
from pivot_spark.io.fs import list_files, location
from pivot_spark.io.readers import plan_units
from pivot_spark.lake import Lake
from pivot_spark.steps.normalize import ingest_units
from pivot_spark.steps.tokenize import content_mask, get_sp
from tests.oracles import brute_force_pairs
from tests.support.reliability import REPO

pytestmark = pytest.mark.spark
WAIT = "lake.lease_wait_seconds=3600"


def _write_jsonl(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "part.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pivot_spark.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(procs: list[subprocess.Popen[str]], timeout: float) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        out.append((p.returncode, err))
    return out


def _hashes(lake: Lake) -> list[str]:
    return lake.read_arrow("documents", columns=["content_hash"]).column(0).to_pylist()


def test_concurrent_ingests_with_overlapping_inputs_keep_each_text_once(tmp_path):
    texts = [f"Document {i}: " + " ".join(f"word{(i * 7 + k) % 97}" for k in range(12)) for i in range(300)]
    a = _write_jsonl(tmp_path / "a", [{"id": f"a{i}", "text": t} for i, t in enumerate(texts[:200])])
    b = _write_jsonl(tmp_path / "b", [{"id": f"b{i}", "text": t} for i, t in enumerate(texts[100:])])
    lake_dir = tmp_path / "lake"
    procs = [_start("ingest", "--config", "smoke", "--lake", str(lake_dir), "--input", str(folder), WAIT)
             for folder in (a, b)]
    results = _finish(procs, timeout=1200)
    assert [rc for rc, _ in results] == [0, 0], [err[-3000:] for _, err in results]
    lake = Lake(str(lake_dir))
    hashes = _hashes(lake)
    assert len(hashes) == 300 == len(set(hashes))  # 400 rows before the lease
    ok = [json.loads(r["counts"]) for r in lake.read_arrow("runs").to_pylist() if r["job"] == "ingest"]
    assert sorted((c["documents"], c["duplicates"]) for c in ok) == [(100, 100), (200, 0)]


def test_a_rebuild_runs_each_stage_under_its_own_run_id(lake_copy, tmp_path, capsys):
    from pivot_spark.cli import main
    from pivot_spark.pipeline.rebuild import rebuild

    lake = Lake(str(lake_copy))
    docs = lake.read_arrow("documents", columns=["text"]).to_pylist()[:24]
    extra = _write_jsonl(tmp_path / "extra", [{"id": f"x{i}", "text": docs[2 * i]["text"] + "\n\n" +
                                               docs[2 * i + 1]["text"], "source": "extra"} for i in range(12)])
    cfg = load_config("smoke", [f"lake.uri={lake.uri}", f"ingest.input={extra}", "run.run_id=nightly-1"])
    summary = rebuild(cfg, quiet=True)
    by_stage = {s["stage"]: s for s in summary["stages"]}
    assert by_stage["ingest"]["counts"]["documents"] == 12
    assert by_stage["annotate"]["counts"]["documents"] == 12  # new documents are annotated: not skipped
    assert list(by_stage["cooccur"]["counts"]["counted"]) == ["snap-nightly-1"]
    assert all(by_stage[s]["status"] == "ok" for s in ("ingest", "annotate", "cooccur", "pivots", "score", "select"))
    runs = {(r["job"], r["run_id"]) for r in lake.read_arrow("runs").to_pylist()}
    for job in ("ingest", "annotate", "cooccur", "pivots", "score", "select"):
        assert (job, f"nightly-1.{job}") in runs
    assert ("rebuild", "nightly-1") in runs
    # The same run id again: every stage is done. With other input: refused, naming the stage's run id.
    again = rebuild(cfg, quiet=True)
    assert again["changed"] == []
    other = _write_jsonl(tmp_path / "other", [{"id": "y", "text": "A text that no run has seen before."}])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["rebuild", "--config", "smoke", "--lake", lake.uri, "--input", str(other), "--run-id", "nightly-1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert any("run id 'nightly-1.ingest' was used by an earlier ingest run with other input" in line
               for line in err), err


def _expected_hashes(folders: list[Path], cfg) -> set[str]:
    """The content hashes ingest keeps from ``folders``, read by the task-side reader on the driver."""
    out: set[str] = set()
    for folder in folders:
        loc = location(str(folder))
        files, _ = list_files(loc, exclude=cfg.ingest.exclude)
        units, _ = plan_units(loc.fs, [(f.path, f.uri, f.size) for f in files])
        for batch in ingest_units(loc.fs, units, source_default=folder.name,
                                  max_text_bytes=cfg.ingest.max_text_bytes, preview_chars=10):
            rows = batch.to_pylist()
            out |= {r["content_hash"] for r in rows if r["kind"] == "doc"}
    return out


def _fixture_records(every: int) -> list[dict]:
    import gzip
    import io

    import zstandard

    records = []
    for f in sorted((REPO / "tests" / "fixtures" / "corpus").glob("*.jsonl.*")):
        raw = f.read_bytes()
        data = gzip.decompress(raw) if f.suffix == ".gz" else \
            zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
        records += [json.loads(line) for line in data.splitlines() if line.strip()]
    return records[::every]


@pytest.mark.slow
def test_soak_concurrent_ingests_and_rebuilds_end_with_the_distinct_documents_counted_once(tmp_path):
    """Five writers at once on one lake (ingests and rebuilds, inputs overlapping by half), then one more rebuild:
    exactly the distinct documents, each annotated once, co-occurrence equal to a brute-force count over them."""
    records = _fixture_records(every=3)
    n = len(records)
    parts = {"a": records[: n * 3 // 5], "b": records[n * 2 // 5:], "c": records[n // 5: n * 4 // 5]}
    folders = {k: _write_jsonl(tmp_path / k, v) for k, v in parts.items()}
    lake_dir = tmp_path / "lake"
    common = ["--config", "smoke", "--lake", str(lake_dir), WAIT]
    procs = [
        _start("ingest", "--input", str(folders["a"]), *common),
        _start("rebuild", "--input", str(folders["b"]), *common),
        _start("ingest", "--input", str(folders["c"]), *common),
        _start("rebuild", "--input", str(folders["a"]), "--run-id", "soak-1", *common),
        _start("ingest", "--input", str(folders["b"]), *common),
    ]
    results = _finish(procs, timeout=3600)
    assert [rc for rc, _ in results] == [0] * len(procs), [err[-3000:] for _, err in results]
    final = subprocess.run([sys.executable, "-m", "pivot_spark.cli", "rebuild", "--input", str(folders["c"]),
                            *common], cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert final.returncode == 0, final.stderr[-3000:]

    lake = Lake(str(lake_dir))
    cfg = load_config("smoke", [f"lake.uri={lake.uri}"])
    hashes = _hashes(lake)
    assert len(hashes) == len(set(hashes))  # no text twice
    assert set(hashes) == _expected_hashes(list(folders.values()), cfg)  # no record lost
    doc_ids = lake.read_arrow("documents", columns=["doc_id"]).column(0).to_pylist()
    annotated = lake.read_arrow("doc_tokens", columns=["doc_id"]).column(0).to_pylist()
    assert sorted(annotated) == sorted(doc_ids)  # every document annotated, once
    tok = lake.read_arrow("doc_tokens", columns=["tokenizer"])["tokenizer"][0].as_py()
    window, min_count = cfg.cooccur.windows[0], cfg.cooccur.min_count
    content = content_mask(get_sp(artifacts.tokenizer_path(lake.uri, tok)))
    snapshots = set(lake.read_arrow("doc_tokens", columns=["snapshot"]).column(0).to_pylist())
    for snap in sorted(snapshots):  # counts are per snapshot, each counted once
        docs = lake.read_arrow("doc_tokens", columns=["token_ids", "token_langs"],
                               partition_filters=[("snapshot", "=", snap)]).to_pylist()
        ref = brute_force_pairs(((d["token_ids"], d["token_langs"]) for d in docs), window=window, content=content)
        want = {k: v for k, v in ref.items() if v[0] >= min_count}
        got: dict[tuple, tuple[int, int]] = {}
        for r in lake.read_arrow("cooccurrence", filter=(pc.field("window") == window)
                                 & (pc.field("snapshot") == snap)).to_pylist():
            key = (r["token_a"], r["token_b"], r["lang_a"], r["lang_b"])
            before = got.get(key, (0, 0))  # a snapshot counted twice would add up here
            got[key] = (before[0] + r["count"], before[1] + r["doc_count"])
        assert got == want, snap
    failed = [r for r in lake.read_arrow("runs").to_pylist() if r["status"] != "ok"]
    assert failed == []


def test_a_writer_killed_mid_run_holds_up_no_one(tmp_path):
    """``kill -9`` of an ingest while it holds the lease: the same command run again on the same machine takes
    the lease over at once (the holder's process is gone) and ends with every text once."""
    import os
    import signal
    import time

    from pivot_spark.lake.lease import lease_state

    texts = [f"Killed run text {i}: " + " ".join(f"w{(i * 5 + k) % 89}" for k in range(10)) for i in range(200)]
    inp = _write_jsonl(tmp_path / "in", [{"text": t} for t in texts])
    lake_dir = tmp_path / "lake"
    args = ["ingest", "--config", "smoke", "--lake", str(lake_dir), "--input", str(inp), "--run-id", "k1", WAIT]
    victim = _start(*args)
    deadline = time.monotonic() + 600
    while (lease_state(Lake(str(lake_dir))) or {}).get("state") != "held":
        assert victim.poll() is None and time.monotonic() < deadline, "the ingest ended before it was killed"
        time.sleep(0.2)
    time.sleep(3)  # into its Spark work
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    t0 = time.monotonic()
    again = subprocess.run([sys.executable, "-m", "pivot_spark.cli", *args], cwd=REPO, capture_output=True,
                           text=True, timeout=1200)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "took over the writer lease of pivot-spark ingest" in again.stderr and "holder gone" in again.stderr
    assert time.monotonic() - t0 < 600
    hashes = _hashes(Lake(str(lake_dir)))
    assert len(hashes) == 200 == len(set(hashes))
