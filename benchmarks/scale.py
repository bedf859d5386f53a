"""Benchmark: ``rebuild`` on 1x, 2x and 4x a sample of the real corpus; does the driver grow with the data?

    .venv/bin/python benchmarks/scale.py [--corpus data/corpus] [--mb 30] [--scales 1,2,4] [--driver-memory 4g]

1. Samples (cached in ``--workdir``, default ``.cache/benchmarks``): for scale ``k``, every shard of the corpus
   build contributes its first records up to ``k * f`` of its own text bytes (the record that crosses the line
   when at least half of it fits), ``f`` being ``--mb`` over the corpus's text. So each scale has the corpus's
   mix of sources and languages, the 4x sample holds the 2x sample, which holds the 1x sample, and the samples
   are the same on every run. Each is written as JSON Lines, one file per shard, records copied verbatim.
2. The tokenizer is trained once, by the project's ``train-tokenizer`` job on the 1x sample (its own process and
   scratch lake, not timed), and every scale uses it through ``tokenizer.model_path``: all scales tokenize
   identically, so tokens, pairs and pivots grow with the documents alone, and ``train-tokenizer``, whose sample
   is bounded by ``tokenizer.sample_bytes_per_lang`` per language rather than by the corpus, is not one of the
   measured stages (``rebuild`` keeps the given model).
3. Each scale runs ``rebuild`` in a fresh process (a fresh Python driver and driver JVM) on a fresh lake, with
   the ``local`` preset plus ``spark.driver_memory`` (``--driver-memory``), ``ingest.input`` (the sample),
   ``tokenizer.model_path`` and ``select.token_budget`` proportional to the scale (the preset's budget times the
   sample's share of the corpus). The session is started and warmed first (reported, not counted in the
   rebuild's wall time); the wall time is the ``rebuild`` call, and each stage's seconds come from its summary.
4. Measured in that process while ``rebuild`` runs:

   - Python driver RSS peak: the kernel's high-water mark of the process (``VmHWM``), and per stage from
     ``VmRSS`` samples;
   - JVM heap used: ``MemoryMXBean.getHeapMemoryUsage().getUsed()`` sampled through py4j every ``--interval``
     seconds; beside it the heap left after the JVM's latest collection (``GarbageCollectorMXBean``'s last GC
     info) and the bytes of cached blocks (``getRDDStorageInfo``); peaks over the run and per stage (a sample
     belongs to the stage running at its time);
   - CPU seconds: user + system of the driver's whole process tree (the JVM, the Python worker daemon and its
     workers, reaped children included), read from ``/proc`` before the session starts and after the rebuild
     (so they include the session's start-up).

   In local mode the executors run inside the driver JVM, so its heap also holds task memory (aggregation and
   sort pages, Arrow batches on their way to Python workers, broadcast relations, cached blocks), and how high
   "heap used" climbs between collections depends on the collector's sizing of the young generation, which
   follows the allocation rate: an upper bound on what the driver keeps, not a measure of it. Two diagnoses
   separate the two: ``--gc-every S`` forces a full collection every ``S`` seconds and reports the heap used
   right after it (the live heap; it slows the runs down), and ``--master local-cluster[2,1,2048]`` runs the
   executors in JVMs of their own, leaving the driver JVM only the driver's work.

Output: a table per scale and per stage; the last lines are
``RESULT driver_memory_growth_4x <peak at 4x / peak at 1x>`` (peak = Python driver RSS peak + JVM heap-used peak;
target <= 1.25) and ``RESULT rebuild_time_growth_4x <wall at 4x / wall at 1x>`` (target <= 4.5).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from _common import DEFAULT_CORPUS, DEFAULT_WORKDIR, REPO, cpu_seconds, log, machine_line, shard_files

from pivot_spark.config import PivotConfig, load_config

STAGES = ["ingest", "train-tokenizer", "annotate", "cooccur", "pivots", "score", "select"]
MB = 1024 * 1024


# -- samples -------------------------------------------------------------------------------------------------------


def _records(path: Path) -> list[tuple[bytes, int]]:
    """A shard's non-blank lines with their text's UTF-8 size (0 where the line is no object with a text)."""
    from _common import _lines

    out = []
    for line in _lines(path):
        try:
            text = json.loads(line).get("text") or ""
        except (ValueError, AttributeError):
            text = ""  # copied anyway: ingest quarantines it, as it would in the full corpus
        out.append((line, len(text.encode()) if isinstance(text, str) else 0))
    return out


def build_samples(corpus: Path, mb: float, scales: list[int], workdir: Path) -> dict[str, Any]:
    """The nested samples ``scale-{k}x/`` under ``workdir/scale-samples-{mb}MB`` (see the module docstring);
    reused when the corpus shards, the size and the scales are unchanged. Returns the manifest."""
    shards = shard_files(corpus)
    root = workdir / f"scale-samples-{mb:g}MB"
    key = {"mb": mb, "scales": scales, "rule": "half", "shards": [[str(p), p.stat().st_size] for p in shards]}
    manifest = root / "SAMPLES.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("key") == key:
        return json.loads(manifest.read_text())
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    records = {p: _records(p) for p in shards}
    corpus_bytes = sum(n for recs in records.values() for _, n in recs)
    share = mb * 1e6 / corpus_bytes
    if max(scales) * share > 1:
        raise ValueError(f"{corpus} holds {corpus_bytes / 1e6:.1f} MB of text: --mb {mb} at {max(scales)}x "
                         "is more than all of it")
    info: dict[str, Any] = {"key": key, "corpus": str(corpus), "corpus_text_bytes": corpus_bytes,
                            "share_1x": share, "scales": {}}
    for k in scales:
        folder = root / f"scale-{k}x"
        folder.mkdir()
        n_docs = n_bytes = n_files = 0
        for p, recs in records.items():
            limit = k * share * sum(n for _, n in recs)
            taken: list[bytes] = []
            size = 0
            for line, n in recs:
                if size + n / 2 > limit:  # the record that crosses the line stays out unless half of it fits
                    break
                taken.append(line)
                size += n
            if not taken:
                continue
            name = "__".join(p.relative_to(corpus).parts).split(".")[0] + ".jsonl"
            (folder / name).write_bytes(b"".join(line + b"\n" for line in taken))
            n_docs += len(taken)
            n_bytes += size
            n_files += 1
        info["scales"][str(k)] = {"folder": str(folder), "records": n_docs, "text_bytes": n_bytes, "files": n_files}
        log(f"sample {k}x: {n_docs} records, {n_bytes / 1e6:.1f} MB of text from {n_files} of {len(records)} shards")
    manifest.write_text(json.dumps(info, indent=1))
    return info


# -- configs and child processes -----------------------------------------------------------------------------------


def scale_config(lake: Path, *overrides: str) -> PivotConfig:
    """The ``local`` preset on ``lake`` with the given overrides (and no console progress bars)."""
    conf = json.dumps({"spark.ui.showConsoleProgress": "false"})
    return load_config("local", [f"lake.uri={lake}", f"spark.conf={conf}", *overrides])


def run_child(args: list[str], out: Path) -> dict[str, Any]:
    """Run this script in a fresh Python process (a fresh driver JVM) and read the JSON it writes to ``out``."""
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, check=False)
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"{' '.join(cmd)} failed (exit status {proc.returncode})")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def child_tokenizer(ns: argparse.Namespace) -> dict[str, Any]:
    """Ingest the 1x sample into a scratch lake and train the tokenizer there with the project's job."""
    from pivot_spark.pipeline.annotate import train_tokenizer
    from pivot_spark.pipeline.ingest import ingest

    lake = Path(ns.lake)
    shutil.rmtree(lake, ignore_errors=True)
    cfg = scale_config(lake, f"ingest.input={ns.input}", f"spark.driver_memory={ns.driver_memory}")
    ingest(cfg, quiet=True)
    res = train_tokenizer(cfg, quiet=True)
    return {"model": res["counts"]["model_file"], "tokenizer": res["counts"]["tokenizer"],
            "sample": res["counts"]["sample"]}


def tokenizer_for(sample: dict[str, Any], workdir: Path, driver_memory: str) -> str:
    """The tokenizer trained on the 1x sample (cached in ``workdir`` with the sample's key)."""
    lake, marker = workdir / "scale-tokenizer-lake", workdir / "scale-tokenizer.json"
    key = {"sample": sample["key"], "vocab": scale_config(lake).tokenizer.vocab_size}
    if marker.exists():
        state = json.loads(marker.read_text())
        if state.get("key") == key and Path(state["model"]).exists():
            log(f"reusing the tokenizer {state['model']}")
            return str(state["model"])
    t0 = time.perf_counter()
    res = run_child(["--child", "tokenizer", "--lake", str(lake), "--input", sample["scales"]["1"]["folder"],
                     "--driver-memory", driver_memory], workdir / "scale-tokenizer.out.json")
    log(f"train-tokenizer on the 1x sample: {res['tokenizer']} ({time.perf_counter() - t0:.0f} s)")
    marker.write_text(json.dumps({"key": key, "model": res["model"]}))
    return str(res["model"])


# -- measuring a driver --------------------------------------------------------------------------------------------


def _status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (the peak since the process image started) of a process, in bytes. (``getrusage``'s
    ``ru_maxrss`` would not do: it keeps the peak of the image a process was forked from, here the parent's.)"""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0]) * 1024
    return out


def _jvm_pid() -> int | None:
    """The driver JVM: the java process among this process's children (py4j starts it)."""
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid == me and os.path.basename(os.readlink(f"/proc/{entry}/exe")) == "java":
                return int(entry)
        except OSError:
            continue
    return None


class DriverSampler(threading.Thread):
    """Samples the driver every ``interval`` seconds: the Python process's RSS, the JVM's heap used (through py4j),
    the heap left after the JVM's latest collection, and the bytes of cached blocks held in memory."""

    def __init__(self, spark: Any, interval: float, gc_every: float | None = None) -> None:
        super().__init__(daemon=True)
        jvm = spark.sparkContext._jvm
        self.system = jvm.java.lang.System
        self.gc_every, self.last_forced = gc_every, time.monotonic()
        mf = jvm.java.lang.management.ManagementFactory
        self.sc = spark.sparkContext._jsc.sc()
        self.memory = mf.getMemoryMXBean()
        self.heap_pools = {str(p.getName()) for p in mf.getMemoryPoolMXBeans()
                           if p.getType().toString() == "Heap memory"}
        self.collectors = list(mf.getGarbageCollectorMXBeans())
        self.gc_names = [str(g.getName()) for g in self.collectors]
        self.last_gc: dict[int, int] = {}
        self.after_gc = 0  # heap used right after the latest collection seen
        self.interval = interval
        # (unix time, Python RSS, JVM heap used, heap after the latest collection, cached bytes in memory, heap
        # used after a full collection forced now: the live heap, -1 when not forced)
        self.samples: list[tuple[float, int, int, int, int, int]] = []
        self.stop_event = threading.Event()

    def _collections(self) -> None:
        for i, g in enumerate(self.collectors):
            info = g.getLastGcInfo()
            if info is None or info.getId() == self.last_gc.get(i):
                continue
            self.last_gc[i] = info.getId()
            after = info.getMemoryUsageAfterGc()
            self.after_gc = sum(int(after.get(name).getUsed()) for name in after.keySet() if name in self.heap_pools)

    def sample(self, n: int) -> None:
        heap = int(self.memory.getHeapMemoryUsage().getUsed())
        self._collections()
        cached = sum(int(r.memSize()) for r in self.sc.getRDDStorageInfo()) if n % 4 == 0 else -1
        live = -1
        if self.gc_every and time.monotonic() - self.last_forced >= self.gc_every:
            self.system.gc()
            live, self.last_forced = int(self.memory.getHeapMemoryUsage().getUsed()), time.monotonic()
        self.samples.append((time.time(), _status()["VmRSS"], heap, self.after_gc, cached, live))

    def run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            try:
                self.sample(n)
            except Exception:  # the gateway is closing: the run is over
                return
            n += 1
            self.stop_event.wait(self.interval)

    def finish(self) -> dict[str, Any]:
        self.stop_event.set()
        self.join()
        self.sample(0)
        counts = {name: int(g.getCollectionCount()) for name, g in zip(self.gc_names, self.collectors, strict=True)}
        return {"heap_max": int(self.memory.getHeapMemoryUsage().getMax()), "collections": counts}

    def peaks(self, lo: float = 0.0, hi: float = float("inf")) -> dict[str, int | None]:
        """Largest sampled values between two times."""
        mine = [s for s in self.samples if lo <= s[0] < hi]
        return {key: max((int(s[i]) for s in mine), default=None)
                for i, key in enumerate(["", "py_rss", "heap", "heap_after_gc", "cached", "live_heap"]) if i}


def child_scale(ns: argparse.Namespace) -> dict[str, Any]:
    """One scale: a fresh lake, a session started and warmed, then ``rebuild`` measured (module docstring)."""
    from pivot_spark.pipeline.rebuild import rebuild
    from pivot_spark.session import build_session

    lake = Path(ns.lake)
    shutil.rmtree(lake, ignore_errors=True)
    cfg = scale_config(lake, f"ingest.input={ns.input}", f"tokenizer.model_path={ns.tokenizer}",
                       f"select.token_budget={ns.budget}", f"spark.driver_memory={ns.driver_memory}",
                       *([f"spark.master={ns.master}"] if ns.master else []))
    load_start = os.getloadavg()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    spark = build_session(cfg)
    spark.range(10_000).selectExpr("sum(id)").collect()
    cores = spark.sparkContext.defaultParallelism
    workers = set(spark.sparkContext.parallelize(range(cores), cores)
                  .map(lambda _: __import__("pivot_spark").__file__).collect())
    startup = time.perf_counter() - t0
    spark_master = spark.sparkContext.master
    rss_before = _status()["VmRSS"]
    sampler = DriverSampler(spark, ns.interval, ns.gc_every)
    sampler.start()
    t_start, t1 = time.time(), time.perf_counter()
    summary = rebuild(cfg, quiet=True)
    wall = time.perf_counter() - t1
    jvm = sampler.finish()
    cpu = cpu_seconds() - cpu0
    jvm_pid = _jvm_pid()
    jvm_rss_peak = _status(jvm_pid)["VmHWM"] if jvm_pid else None
    py_rss_peak = _status()["VmHWM"]
    spark.stop()

    # Each sample belongs to the stage running at its time: the stages run back to back from t_start, each for
    # the seconds its summary reports.
    stages, edge = [], t_start
    for st in summary["stages"]:
        lo, edge = edge, edge + st["seconds"]
        stages.append({"stage": st["stage"], "status": st["status"], "seconds": st["seconds"],
                       **sampler.peaks(lo, edge),
                       "counts": {k: v for k, v in st.get("counts", {}).items() if isinstance(v, int | float)}})
    return {
        "scale": ns.scale, "lake": str(lake), "budget": ns.budget, "master": spark_master, "startup_s": startup,
        "code": {"driver": __import__("pivot_spark").__file__, "workers": sorted(workers)},
        "wall_s": wall, "cpu_s": cpu, "load_start": load_start, "load_end": os.getloadavg(),
        "py_rss_before": rss_before, "py_rss_peak": py_rss_peak, "jvm_rss_peak": jvm_rss_peak,
        **{f"sampled_{k}": v for k, v in sampler.peaks().items()}, "samples": len(sampler.samples), **jvm,
        "stages": stages, "failed": summary["failed"],
    }


# -- the benchmark -------------------------------------------------------------------------------------------------


def mib(n: float | None) -> str:
    return "-" if n is None or n < 0 else f"{n / MB:,.0f}"


def peak_of(r: dict[str, Any]) -> int:
    """The driver's peak as the RESULT line counts it: Python RSS peak + JVM heap-used peak."""
    return int(r["py_rss_peak"] + r["sampled_heap"])


def report(results: list[dict[str, Any]], samples: dict[str, Any]) -> None:
    base, top = results[0], results[-1]
    print()
    print(machine_line())
    print(f"code: {base['code']['driver']} (driver), {', '.join(base['code']['workers'])} (Python workers)")
    print(f"master {base['master']}, spark.driver_memory {mib(base['heap_max'])} MiB of heap, memory sampled every "
          f"{base['interval']} s ({', '.join(str(r['samples']) for r in results)} samples)")
    for r in results:
        counts = {s["stage"]: s["counts"] for s in r["stages"]}
        info = samples["scales"][str(r["scale"])]
        print(f"{r['scale']}x: {info['records']} records, {info['text_bytes'] / 1e6:.1f} MB of text -> "
              f"{counts['ingest'].get('documents', 0)} documents, {counts['annotate'].get('tokens', 0)} tokens, "
              f"{counts['cooccur'].get('cooccurrence_rows', 0)} co-occurrence rows; token budget {r['budget']}; "
              "load average " + " ".join(f"{x:.2f}" for x in r["load_start"]) + " -> "
              + " ".join(f"{x:.2f}" for x in r["load_end"]))
    names = [f"{r['scale']}x" for r in results]
    live = bool(base.get("gc_every"))
    heap_cols = "heap used / after GC / live MiB" if live else "heap used / after GC MiB"
    print()
    print("Per stage: seconds, and the peaks sampled while it ran (JVM heap; Python driver RSS).")
    print("| stage | " + " | ".join(f"{n} s" for n in names) + " | "
          + " | ".join(f"{n} {heap_cols}" for n in names) + " | "
          + " | ".join(f"{n} Python RSS MiB" for n in names) + " |")
    print("|---" * (1 + 3 * len(results)) + "|")
    for i, name in enumerate(STAGES):
        row = [r["stages"][i] for r in results]
        assert all(st["stage"] == name for st in row)
        heaps = [f"{mib(st['heap'])} / {mib(st['heap_after_gc'])}" + (f" / {mib(st['live_heap'])}" if live else "")
                 for st in row]
        print(f"| {name} | " + " | ".join(f"{st['seconds']:.1f}" for st in row) + " | " + " | ".join(heaps)
              + " | " + " | ".join(mib(st["py_rss"]) for st in row) + " |")
    print()
    print("| scale | session start s | rebuild wall s | CPU s | Python RSS peak MiB | JVM heap-used peak MiB | "
          "peak MiB | heap after GC peak MiB | " + ("live heap peak MiB | " if live else "")
          + "cached blocks peak MiB | JVM RSS peak MiB |")
    print("|---" * (10 + live) + "|")
    for r in results:
        print(f"| {r['scale']}x | {r['startup_s']:.1f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
              f"{mib(r['py_rss_peak'])} | {mib(r['sampled_heap'])} | {mib(peak_of(r))} | "
              f"{mib(r['sampled_heap_after_gc'])} | " + (f"{mib(r['sampled_live_heap'])} | " if live else "")
              + f"{mib(r['sampled_cached'])} | {mib(r['jvm_rss_peak'])} |")
    print()
    if top["scale"] == 4 * base["scale"]:
        print(f"RESULT driver_memory_growth_4x {peak_of(top) / peak_of(base):.3f}")
        print(f"RESULT rebuild_time_growth_4x {top['wall_s'] / base['wall_s']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus build (JSON Lines shards)")
    ap.add_argument("--mb", type=float, default=30.0, help="MB of text in the 1x sample")
    ap.add_argument("--scales", default="1,2,4", help="comma-separated multiples of the 1x sample")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="samples, scratch lakes, results")
    ap.add_argument("--driver-memory", default="4g", help="spark.driver_memory of every run")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between memory samples")
    ap.add_argument("--gc-every", type=float, help="diagnosis: force a full collection every this many seconds "
                    "and report the heap used right after it (the live heap); it slows the runs down")
    ap.add_argument("--master", help="spark.master of every run (default: the preset's, local[*]); "
                    "local-cluster[2,1,2048] runs the executors in JVMs of their own")
    # what a child process (one scale, or the tokenizer) is told
    ap.add_argument("--child", choices=["tokenizer", "scale"], help=argparse.SUPPRESS)
    ap.add_argument("--lake", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--tokenizer", help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        res = child_tokenizer(ns) if ns.child == "tokenizer" else child_scale(ns)
        ns.out.write_text(json.dumps({**res, "interval": ns.interval, "gc_every": ns.gc_every}))
        return

    scales = sorted(int(s) for s in ns.scales.split(","))
    ns.workdir, ns.corpus = ns.workdir.resolve(), ns.corpus.resolve()
    ns.workdir.mkdir(parents=True, exist_ok=True)
    log(machine_line())
    samples = build_samples(ns.corpus, ns.mb, scales, ns.workdir)
    model = tokenizer_for(samples, ns.workdir, ns.driver_memory)
    preset_budget = scale_config(ns.workdir).select.token_budget
    results = []
    for k in scales:
        budget = round(preset_budget * samples["share_1x"] * k)
        log(f"rebuild at {k}x (fresh process and lake, token budget {budget}) ...")
        res = run_child(["--child", "scale", "--scale", str(k), "--lake", str(ns.workdir / f"scale-lake-{k}x"),
                         "--input", samples["scales"][str(k)]["folder"], "--tokenizer", model,
                         "--budget", str(budget), "--driver-memory", ns.driver_memory, "--interval", str(ns.interval),
                         *(["--master", ns.master] if ns.master else []),
                         *(["--gc-every", str(ns.gc_every)] if ns.gc_every else [])],
                        ns.workdir / f"scale-{k}x.json")
        if res["failed"]:
            raise SystemExit(f"rebuild at {k}x failed in {res['failed']}")
        log(f"{k}x: rebuild {res['wall_s']:.1f} s, {res['cpu_s']:.1f} CPU s, Python RSS peak "
            f"{mib(res['py_rss_peak'])} MiB, JVM heap-used peak {mib(res['sampled_heap'])} MiB")
        results.append(res)
    report(results, samples)


if __name__ == "__main__":
    main()
