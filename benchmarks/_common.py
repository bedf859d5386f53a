"""What the Spark job benchmarks share: a real-corpus subset, scratch lakes, fresh sessions, Spark shuffle metrics.

The benchmarks measure the project's own jobs (``annotate``, ``cooccur``) on scratch lakes under a work folder
(default ``.cache/benchmarks``, git-ignored). Expensive set-up is cached there and reused when its inputs are
unchanged: the corpus subset (keyed by the input shards and the size asked for) and the base lake with
``documents`` and the trained tokenizer (keyed by the subset and the vocabulary size).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pivot_spark.config import PivotConfig, load_config  # noqa: E402
from pivot_spark.steps.normalize import JSONL_SUFFIXES  # noqa: E402

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_WORKDIR = REPO / ".cache" / "benchmarks"
DEFAULT_CORPUS = REPO / "data" / "corpus"


def machine_line() -> str:
    """Cores and load average: the numbers are only comparable with these next to them."""
    one, five, fifteen = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {one:.2f} {five:.2f} {fifteen:.2f}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and all its descendants (the Spark JVM, the Python daemon and
    workers), reaped children included. On a shared machine, wall time measures the load as much as the job;
    CPU time measures the work, so the benchmarks print both."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        parent[int(entry)] = int(fields[1])
        used[int(entry)] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0.0)
        todo.extend(child for child, ppid in parent.items() if ppid == pid)
    return total


# -- the corpus subset -----------------------------------------------------------------------------------------


def shard_files(corpus: Path) -> list[Path]:
    """JSON Lines shards of a corpus build; folders named ``*.partial`` are still being written and skipped."""
    if not corpus.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus} does not exist: build it with `pivot-spark corpus` "
                                "or pass --corpus DIR (a folder of JSON Lines shards)")
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.name.lower().endswith(JSONL_SUFFIXES)
                   and not any(part.endswith(".partial") for part in p.relative_to(corpus).parts))
    if not files:
        raise FileNotFoundError(f"no JSON Lines shards under {corpus} (folders *.partial are skipped)")
    return files


def _lines(path: Path) -> Iterator[bytes]:
    from pivot_spark.steps.normalize import _open_binary

    with _open_binary(str(path)) as f:
        for line in f:
            if line.strip():
                yield line.rstrip(b"\r\n")


def corpus_subset(corpus: Path, mb: float, out: Path) -> dict[str, Any]:
    """At least ``mb`` MB of document text from ``corpus``, taken record by record round-robin over all shards
    (so every source and language present contributes), written as one JSON Lines file per input shard into
    ``out``. Records are copied verbatim: ingest sees exactly what the corpus holds. Reused when the shard list
    and the size are unchanged."""
    shards = shard_files(corpus)
    key = {"mb": mb, "shards": [[str(p), p.stat().st_size] for p in shards]}
    manifest = out / "SUBSET.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("key") == key:
        return json.loads(manifest.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    budget = int(mb * 1_000_000)
    readers = {p: _lines(p) for p in shards}
    sinks: dict[Path, io.BufferedWriter] = {}
    per_file: dict[str, dict[str, Any]] = {}
    total = 0
    while readers and total < budget:
        for p in list(readers):
            line = next(readers[p], None)
            if line is None:
                del readers[p]
                continue
            try:
                text = json.loads(line).get("text") or ""
            except (ValueError, AttributeError):
                text = ""  # copied anyway: ingest quarantines it, as it would in the full corpus
            rel = p.relative_to(corpus).parts
            name = "__".join(rel).split(".")[0] + ".jsonl"
            if p not in sinks:
                sinks[p] = open(out / name, "wb")  # noqa: SIM115 (closed below)
            sinks[p].write(line + b"\n")
            stats = per_file.setdefault(name, {"source": rel[0], "docs": 0, "bytes": 0})
            stats["docs"] += 1
            stats["bytes"] += len(text.encode())
            total += len(text.encode())
            if total >= budget:
                break
    for f in sinks.values():
        f.close()
    if total < budget:
        raise ValueError(f"{corpus} holds only {total / 1e6:.1f} MB of text, {mb} MB asked for")
    info = {"key": key, "corpus": str(corpus), "text_bytes": total,
            "docs": sum(s["docs"] for s in per_file.values()), "files": per_file}
    manifest.write_text(json.dumps(info, indent=1))
    return info


def describe_subset(info: dict[str, Any]) -> str:
    by_source: dict[str, int] = {}
    for s in info["files"].values():
        by_source[s["source"]] = by_source.get(s["source"], 0) + s["bytes"]
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(by_source.items()))
    return (f"corpus subset: {info['docs']} records, {info['text_bytes'] / 1e6:.1f} MB of text from "
            f"{len(info['files'])} shards of {info['corpus']} ({parts})")


# -- configs, sessions, lakes ----------------------------------------------------------------------------------


def bench_config(lake: Path, master: str, *overrides: str, ui: bool = False) -> PivotConfig:
    """The ``local`` preset (a 2-core, 24 GiB workstation) on a scratch lake and an explicit master."""
    conf = {"spark.ui.showConsoleProgress": "false", **({"spark.ui.enabled": "true"} if ui else {})}
    extra = [f"lake.uri={lake}", f"spark.master={master}", "lake.backend=bridge", f"spark.conf={json.dumps(conf)}"]
    return load_config("local", [*extra, *overrides])


def fresh_session(cfg: PivotConfig) -> tuple[SparkSession, float]:
    """Stop any running session and start the one ``cfg`` asks for (its master); warm the JVM and start the
    Python worker daemon (one trivial task per core), so the timings after it hold job work, not start-up.
    Returns the session and its start-up seconds."""
    from pyspark.sql import SparkSession

    from pivot_spark.session import build_session

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    t0 = time.perf_counter()
    spark = build_session(cfg)
    spark.range(10_000).selectExpr("sum(id)").collect()
    cores = spark.sparkContext.defaultParallelism
    spark.sparkContext.parallelize(range(cores), cores).map(lambda x: x).collect()
    return spark, time.perf_counter() - t0


def stop_session() -> None:
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def clone_tables(src: Path, dst: Path, tables: list[str]) -> None:
    """A fresh lake holding copies of some tables of another (no ``runs``: every job there runs anew)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for t in tables:
        shutil.copytree(src / t, dst / t)


def base_lake(workdir: Path, corpus: Path, mb: float, vocab: int, tokenizer: str | None) -> tuple[Path, Path]:
    """``documents`` ingested from the corpus subset and a tokenizer trained on them by the project's
    ``train-tokenizer`` job (or ``tokenizer`` if given), on local[2]. Cached in ``workdir`` per size (the two
    benchmarks share it when run with the same ``--mb``); returns the lake and the tokenizer model file."""
    from pivot_spark.pipeline.annotate import train_tokenizer
    from pivot_spark.pipeline.ingest import ingest

    tag = f"{mb:g}MB"
    info = corpus_subset(corpus, mb, workdir / f"subset-{tag}")
    log(describe_subset(info))
    key = {"subset": info["key"], "vocab": vocab, "tokenizer": tokenizer}
    lake = workdir / f"base-lake-{tag}"
    marker = workdir / f"base-lake-{tag}.json"
    if marker.exists() and json.loads(marker.read_text()).get("key") == key:
        state = json.loads(marker.read_text())
        log(f"reusing {lake} ({state['documents']} documents, tokenizer {state['model']})")
        return lake, Path(state["model"])
    shutil.rmtree(lake, ignore_errors=True)
    marker.unlink(missing_ok=True)
    cfg = bench_config(lake, "local[2]", f"ingest.input={workdir / f'subset-{tag}'}", f"tokenizer.vocab_size={vocab}")
    fresh_session(cfg)
    t0 = time.perf_counter()
    res = ingest(cfg, quiet=True)
    n_docs = res["counts"]["documents"]
    log(f"ingest: {n_docs} documents, {res['counts']['quarantined']} quarantined, "
        f"{res['counts']['duplicates']} duplicates ({time.perf_counter() - t0:.0f} s)")
    if tokenizer:
        model = Path(tokenizer).resolve()
    else:
        t0 = time.perf_counter()
        model = Path(train_tokenizer(cfg, quiet=True)["counts"]["model_file"])
        log(f"train-tokenizer: vocab {vocab} -> {model.name} ({time.perf_counter() - t0:.0f} s)")
    stop_session()
    marker.write_text(json.dumps({"key": key, "documents": n_docs, "model": str(model)}))
    return lake, model


# -- Spark status: shuffle bytes ---------------------------------------------------------------------------------


def shuffle_write_bytes(spark: SparkSession, settle_s: float = 10.0) -> int:
    """Shuffle bytes written by all completed stages of this application so far, from the UI's REST API
    (the session must run with ``spark.ui.enabled=true``). Stage metrics reach the status store through the
    listener bus after the job returns, so read until two readings agree."""
    url = spark.sparkContext.uiWebUrl
    if not url:
        raise RuntimeError("the Spark UI is off: start the session with spark.ui.enabled=true")
    app = spark.sparkContext.applicationId
    endpoint = f"{url}/api/v1/applications/{app}/stages?status=complete"
    last, deadline = -1, time.monotonic() + settle_s
    while True:
        with urllib.request.urlopen(endpoint, timeout=30) as r:
            total = sum(int(s.get("shuffleWriteBytes", 0)) for s in json.load(r))
        if total == last or time.monotonic() > deadline:
            return total
        last = total
        time.sleep(0.5)
