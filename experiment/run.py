"""``pivot-spark experiment``: the reproduction (paper-notes section 6) from one recipe file.

corpus (if missing) -> rebuild -> a selection with the ``pivot``, ``random`` and ``langmatch`` arms at one token
budget -> ablation selections (other pivot set sizes / windows: the ``pivot`` arm only) -> the word-pair
co-occurrence counts and the evaluation data set -> ``pivot-train`` per arm and seed -> ``pivot-eval clwtd``
(all items and the corpus-occurring subset), ``logit-lens`` and ``behaviours`` per model -> ``pivot-eval
compare`` (pivot vs random, pivot vs langmatch, ablations vs random) -> ``results.json`` + ``results.md``.

The Spark jobs run in this process through the pipeline API (one SparkSession for all of them); training and
evaluation run as their console scripts in subprocesses (they import torch, which the Spark side never needs).
Every step is idempotent, so an interrupted experiment is resumed by running the same command again: the Spark
jobs derive their run ids from their inputs, a model whose ``final/`` exists is not trained again (a half-trained
one resumes from its checkpoint), an evaluation whose JSON exists is not run again. The comparisons and the
results are cheap and always recomputed from what is on disk.

Layout of ``workdir``: ``dataset/`` (items, corpus-items.txt, pairs.jsonl), ``models/{run}/`` (pivot-train
output), ``evals/{run}/{clwtd,lens,behaviours}/``, ``compare/``, ``results/`` (results.json, results.md, PNGs).
A run name is ``{variant}-{arm}-s{seed}``; the main variant is ``main``.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console
from rich.table import Table

from pivot_spark.config import REPO_ROOT, ConfigError, PivotConfig, load_config

con = Console(stderr=True)


class StepFailed(ValueError):
    """A training or evaluation subprocess failed: the message names the step and its log."""


Stage = Literal["all", "data", "models", "report", "bundle"]
STAGES = ("all", "data", "models", "report", "bundle")
MAIN = "main"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SparkSpec(_Spec):
    config: str = Field("local", description="pivot-spark preset or YAML file of the corpus/rebuild side")
    lake: str | None = Field(None, description="lake URI; default: the config's lake.uri")
    overrides: list[str] = Field(default_factory=list, description="section.key=value for every Spark job")
    build_corpus: bool = Field(True, description="assemble the corpus when the ingest input is missing")


class SelectionSpec(_Spec):
    name: str = "exp"
    arms: list[str] = Field(default_factory=lambda: ["pivot", "random", "langmatch"])
    token_budget: int = 2_000_000
    seed: int = 1234


class TrainSpec(_Spec):
    preset: str = "tiny"
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3])
    max_steps: int | None = None
    max_tokens: int | None = None
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 20
    device: str = "auto"
    num_workers: int = 0
    extra: list[str] = Field(default_factory=list, description="further pivot-train flags")

    @model_validator(mode="after")
    def _length(self) -> TrainSpec:
        if (self.max_steps is None) == (self.max_tokens is None):
            raise ValueError("train: give exactly one of max_steps and max_tokens")
        return self


class EvalSpec(_Spec):
    dataset: str | None = Field(None, description="an existing items-v1.jsonl; default: build one in workdir")
    corpus_items: str | None = Field(None, description="item ids occurring in the corpus (with `dataset`)")
    build_items: int = Field(2000, description="items build-dataset makes")
    langs: str = "en,fr,ja,zh"
    max_items: int | None = Field(None, description="clwtd: first N items")
    batch_size: int = 32
    lens_items: int | None = Field(None, description="logit lens: first N items")
    lens_batch_size: int = 16
    lens_pivots: bool = Field(False, description="logit lens: pivot mass from the lake's cooccurrence")
    lens_window: int = Field(10, description="cooccurrence window for the lens pivot mass")
    pair_windows: list[int] = Field(default_factory=lambda: [10, 100],
                                    description="windows of pair-cooccur (paper: 100 tokens)")
    behaviour_window: int = 100
    extra: list[str] = Field(default_factory=list, description="further clwtd flags, e.g. --dtype")


class Ablation(_Spec):
    name: str
    overrides: list[str] = Field(description="pivots.* / cooccur.* settings of this pivot set")
    seeds: list[int] = Field(default_factory=lambda: [1])


class Recipe(_Spec):
    name: str
    workdir: str
    spark: SparkSpec = Field(default_factory=SparkSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    train: TrainSpec
    eval: EvalSpec = Field(default_factory=EvalSpec)
    ablations: list[Ablation] = Field(default_factory=list)
    n_boot: int = 2000
    threads: int | None = Field(None, description="torch/OpenMP threads of the model steps (1 on a shared box)")

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        if "pivot" not in self.selection.arms or len(self.selection.arms) < 2:
            raise ValueError("selection.arms needs `pivot` and at least one baseline arm")
        names = [a.name for a in self.ablations]
        if len(set(names)) != len(names) or MAIN in names:
            raise ValueError(f"ablation names must be distinct and not {MAIN!r}: {names}")
        for a in self.ablations:
            bad = [o for o in a.overrides if not o.split("=", 1)[0].startswith(("pivots.", "cooccur."))]
            if bad:
                raise ValueError(f"ablation {a.name}: only pivots.* and cooccur.* overrides, not {bad}")
        return self


def load_recipe(path: str | Path, *, lake: str | None = None, workdir: str | None = None) -> Recipe:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"recipe {p} not found (see experiments/)")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    if lake:
        data.setdefault("spark", {})["lake"] = lake
    if workdir:
        data["workdir"] = workdir
    try:
        return Recipe.model_validate(data)
    except Exception as e:  # pydantic names the bad key
        raise ConfigError(f"invalid recipe {p}: {e}") from e


# ---------------------------------------------------------------- the plan (pure: tested without Spark or torch)

@dataclass(frozen=True)
class Variant:
    """One selection: the main one (all arms) or an ablation (pivot arm only, its own pivot set)."""

    name: str
    selection: str
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]

    @property
    def pivot_set(self) -> str | None:
        return None if self.name == MAIN else f"{self.selection}-ps"


@dataclass(frozen=True)
class ModelRun:
    variant: str
    selection: str
    arm: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.arm}-s{self.seed}"


def variants(r: Recipe) -> list[Variant]:
    out = [Variant(MAIN, r.selection.name, tuple(r.selection.arms), tuple(r.train.seeds), ())]
    out += [Variant(a.name, f"{r.selection.name}-{a.name}", ("pivot",), tuple(a.seeds), tuple(a.overrides))
            for a in r.ablations]
    return out


def model_runs(r: Recipe) -> list[ModelRun]:
    """Main arms seed by seed (so a cut-short run still has every arm at the first seeds), then ablations."""
    out: list[ModelRun] = []
    for v in variants(r):
        out += [ModelRun(v.name, v.selection, arm, s) for s in v.seeds for arm in v.arms]
    return out


def windows_needed(r: Recipe) -> tuple[list[int], list[int]]:
    """(windows the base config counts, windows the ablations need counted beyond them)."""
    base = load_config(r.spark.config, r.spark.overrides)
    extra: set[int] = set()
    for v in variants(r):
        cfg = load_config(r.spark.config, [*r.spark.overrides, *v.overrides])
        extra |= {cfg.pivots.window, *cfg.cooccur.windows}
    return sorted(base.cooccur.windows), sorted(extra - set(base.cooccur.windows))


def data_key(r: Recipe) -> str:
    """What the data stage depends on: a finished data stage with the same key is not run again (re-running the
    Spark jobs would be a no-op anyway, except that counting an ablation's window moves the `cooccurrence`
    version, which makes the rebuild recompute the main pivot set under a new label)."""
    import hashlib

    body = {"spark": r.spark.model_dump(mode="json"), "selection": r.selection.model_dump(mode="json"),
            "ablations": [a.model_dump(mode="json") for a in r.ablations],
            "eval": {k: getattr(r.eval, k) for k in ("dataset", "corpus_items", "build_items", "langs",
                                                     "pair_windows")}}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def bundle_key(r: Recipe) -> str:
    """What a device bundle depends on (the data stage's settings without the lake, which on the machine reading
    the bundle is the bundle): the models stage refuses a bundle made for another recipe."""
    import hashlib

    spark = r.spark.model_dump(mode="json", exclude={"lake"})
    body = {"spark": spark, "selection": r.selection.model_dump(mode="json"),
            "ablations": [a.model_dump(mode="json") for a in r.ablations],
            "eval": r.eval.model_dump(mode="json", exclude={"batch_size", "lens_batch_size", "max_items", "extra"})}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def train_cmd(r: Recipe, run: ModelRun, lake: str, out: Path) -> list[str]:
    t = r.train
    cmd = [_script("pivot-train"), "--lake", lake, "--selection", run.selection, "--arm", run.arm,
           "--preset", t.preset, "--seq-len", str(t.seq_len), "--batch-size", str(t.batch_size),
           "--lr", str(t.lr), "--warmup", str(t.warmup), "--seed", str(run.seed), "--device", t.device,
           "--num-workers", str(t.num_workers), "--out", str(out), "--resume"]
    cmd += ["--max-steps", str(t.max_steps)] if t.max_steps else ["--max-tokens", str(t.max_tokens)]
    return cmd + list(t.extra)


def clwtd_cmd(r: Recipe, model: Path, dataset: Path, subset: Path | None, out: Path) -> list[str]:
    e = r.eval
    cmd = [_script("pivot-eval"), "clwtd", "--model", str(model), "--dataset", str(dataset), "--out", str(out),
           "--langs", e.langs, "--batch-size", str(e.batch_size)]
    if subset is not None:
        cmd += ["--items-subset", str(subset)]
    if e.max_items:
        cmd += ["--max-items", str(e.max_items)]
    return cmd + list(e.extra)


def lens_cmd(r: Recipe, model: Path, dataset: Path, out: Path, lake: str, tokenizer: str | None) -> list[str]:
    e = r.eval
    cmd = [_script("pivot-eval"), "logit-lens", "--model", str(model), "--dataset", str(dataset), "--out", str(out),
           "--langs", e.langs, "--batch-size", str(e.lens_batch_size)]
    if e.lens_items:
        cmd += ["--max-items", str(e.lens_items)]
    if e.lens_pivots:
        # pivot-train saves no tokenizer.model beside the model, so name the lake tokenizer explicitly
        cmd += ["--lake", lake, "--window", str(e.lens_window)]
        cmd += ["--tokenizer-hash", tokenizer] if tokenizer else []
    return cmd


def behaviours_cmd(r: Recipe, lens: Path, lake: str, out: Path) -> list[str]:
    return [_script("pivot-eval"), "behaviours", "--lens", str(lens / "lens.jsonl"), "--lake", lake,
            "--out", str(out), "--window", str(r.eval.behaviour_window)]


def comparisons(r: Recipe) -> list[tuple[str, list[tuple[str, list[str]]], str]]:
    """(report name, [(arm label, run names)], reference label): pivot vs each baseline arm, and every ablation
    together with the main pivot arm against the first baseline (random)."""
    runs = model_runs(r)

    def names(variant: str, arm: str) -> list[str]:
        return [m.name for m in runs if m.variant == variant and m.arm == arm]

    baselines = [a for a in r.selection.arms if a != "pivot"]
    out = [(f"pivot-vs-{b}", [("pivot", names(MAIN, "pivot")), (b, names(MAIN, b))], b) for b in baselines]
    if r.ablations:
        ref = baselines[0]
        arms = [(f"pivot-{a.name}", names(a.name, "pivot")) for a in r.ablations]
        out.append(("ablations", [*arms, ("pivot", names(MAIN, "pivot")), (ref, names(MAIN, ref))], ref))
    return out


def subset_result(result: dict[str, Any], subset: set[str]) -> dict[str, Any]:
    """A clwtd.json restricted to ``subset`` items (compare reads only ``items``), for the subset comparisons."""
    items = {d: {i: v for i, v in per.items() if i in subset} for d, per in result["items"].items()}
    return {"items": items, "model": result.get("model"), "subset_of": result.get("dataset")}


def first_item_ids(items_file: Path, n: int | None) -> set[str]:
    """Ids of the first ``n`` items of a data set (all with None): what ``--max-items n`` evaluates. Only the
    lens items' word pairs are counted by pair-cooccur (all 2,000 items' pairs over the corpus cost minutes)."""
    ids = []
    with open(items_file, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                ids.append(json.loads(line)["id"])
                if n and len(ids) >= n:
                    break
    return set(ids)


def _ids(path: Path) -> set[str]:
    return {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}


def pair_item(line: str) -> str | None:
    """The item id of a pairs.jsonl line (pair ids are ``{item}|{lang a}|{lang b}``)."""
    return json.loads(line)["pair_id"].split("|", 1)[0] if line.strip() else None


def _script(name: str) -> str:
    """The console script beside this interpreter (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


_MODULES = {"pivot-train": "training.train", "pivot-eval": "training.evaluate.cli", "pivot-spark": "pivot_spark.cli"}


def _argv(cmd: list[str]) -> list[str]:
    """``cmd`` runnable as a subprocess: a console script that is not installed (the project used from a source
    tree, as on a lent GPU machine) runs as ``python -m`` its module."""
    import shutil

    if cmd[0] in _MODULES and shutil.which(cmd[0]) is None:
        return [sys.executable, "-m", _MODULES[cmd[0]], *cmd[1:]]
    return cmd


# ---------------------------------------------------------------- execution

class Experiment:
    def __init__(self, recipe: Recipe) -> None:
        from pivot_spark.bundle import is_bundle

        self.r = recipe
        self.work = _abs(recipe.workdir)
        self.cfg = self._spark_cfg()
        self.lake = self.cfg.lake.uri
        self.from_bundle = is_bundle(self.lake)  # a device bundle instead of the lake: models and report only
        self.t0 = time.perf_counter()
        self.log: list[dict[str, Any]] = []
        self.facts: dict[str, Any] = {}

    # --- helpers
    def _spark_cfg(self, extra: list[str] | tuple[str, ...] = ()) -> PivotConfig:
        items = list(self.r.spark.overrides) + list(extra)
        if self.r.spark.lake:
            items.append(f"lake.uri={_abs(self.r.spark.lake)}")
        cfg = load_config(self.r.spark.config, items)
        # stage lines, not progress bars (the spark section does not enter run ids)
        cfg.spark.conf = {"spark.ui.showConsoleProgress": "false", **cfg.spark.conf}
        if "://" not in cfg.lake.uri:
            cfg.lake.uri = str(_abs(cfg.lake.uri))
        return cfg

    def step(self, msg: str) -> None:
        con.print(f"[bold cyan]experiment[/] [dim]{_clock(time.perf_counter() - self.t0)}[/] {msg}")

    def sh(self, cmd: list[str], what: str, log_file: Path) -> None:
        """Run a console script (niceness and environment inherited), its output to ``log_file``."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_MININTERVAL": "30"}
        with open(log_file, "a", encoding="utf-8") as f:
            f.write(f"\n$ {shlex.join(cmd)}\n")
            f.flush()
            rc = subprocess.run(_argv(cmd), stdout=f, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT).returncode
        dt = time.perf_counter() - t0
        self.log.append({"step": what, "seconds": round(dt, 1), "rc": rc})
        if rc != 0:
            tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            raise StepFailed(f"{what} failed (exit {rc}); log {log_file}:\n" + "\n".join(tail))
        self.step(f"{what} done in {dt:.0f} s")

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    # --- data side (Spark, in process)
    def data(self) -> None:
        if self.from_bundle:
            raise ConfigError(f"{self.lake} is a device bundle, which holds no corpus: run the data stage against "
                              "the lake, the models and report stages against the bundle")
        from pivot_spark.pipeline import graph
        from pivot_spark.pipeline.rebuild import rebuild

        self.ensure_corpus()
        self.step(f"rebuild on {self.lake} (a no-op when the lake is built)")
        summary = rebuild(self.cfg, quiet=True)
        main_set = _stage(summary, "pivots")["counts"]["pivot_set"]
        self.facts["rebuild"] = {r["stage"]: {"status": r["status"], "seconds": r["seconds"],
                                              "counts": _small(r.get("counts", {}))} for r in summary["stages"]}
        self.facts["pivot_sets"] = {MAIN: main_set}
        self.facts["tokenizer"] = _stage(summary, "train-tokenizer")["counts"].get("tokenizer")
        base_w, extra_w = windows_needed(self.r)
        if extra_w:
            ws = sorted({*base_w, *extra_w})
            self.step(f"cooccur: counting windows {extra_w} for the ablations")
            graph.cooccur(self._spark_cfg([f"cooccur.windows={ws}"]), quiet=True)
        sel = self.r.selection
        for v in variants(self.r):
            base = [f"select.selection={v.selection}", f"select.token_budget={sel.token_budget}",
                    f"select.seed={sel.seed}", f"select.arms={list(v.arms)}"]
            if v.pivot_set is None:
                label = main_set
            else:
                label = v.pivot_set
                vcfg = self._spark_cfg([*v.overrides, f"pivots.pivot_set={label}"])
                self.step(f"ablation {v.name}: pivots {' '.join(v.overrides)}")
                res = graph.pivots(vcfg, quiet=True)
                self.facts["pivot_sets"][v.name] = label
                self.facts.setdefault("ablation_pivots", {})[v.name] = _small(res["counts"])
                graph.score(self._spark_cfg([*v.overrides, f"score.pivot_set={label}"]), quiet=True)
            self.step(f"select {v.selection}: arms {list(v.arms)}, pivot set {label}")
            res = graph.select(self._spark_cfg([*base, f"score.pivot_set={label}"]), quiet=True)
            self.facts.setdefault("selections", {})[v.name] = res["counts"]
        self.dataset()
        pairs = self.path("dataset", "pairs.jsonl")
        self.step(f"pair-cooccur windows {self.r.eval.pair_windows} over the corpus")
        graph.pair_cooccur(self._spark_cfg([f"cooccur.windows={self.r.eval.pair_windows}"]), str(pairs),
                           quiet=True)
        self.facts["corpus"] = self.corpus_counts(main_set)

    def ensure_corpus(self) -> None:
        src = self.cfg.ingest.input
        if src is None or not self.r.spark.build_corpus:
            return
        p = _abs(src)
        if p.exists() and any(p.iterdir()):
            return
        from pivot_spark.corpus.build import build_corpus

        self.step(f"corpus: assembling {p} (cached downloads)")
        ccfg = self.cfg.corpus.model_copy(update={"out": str(p)})
        build_corpus(ccfg)

    def dataset(self) -> None:
        d = self.path("dataset")
        d.mkdir(parents=True, exist_ok=True)
        e = self.r.eval
        if e.dataset:
            items = _abs(e.dataset)
            if not items.exists():
                raise FileNotFoundError(f"eval.dataset {items} not found")
            (d / "items.path").write_text(str(items))
            if e.corpus_items:
                (d / "corpus-items.path").write_text(str(_abs(e.corpus_items)))
        elif not (d / "items-v1.jsonl").exists() or not (d / "corpus-items.txt").exists():
            self.step(f"build-dataset: {e.build_items} items, coverage against {self.lake}")
            self.sh([_script("pivot-eval"), "build-dataset", "--out", str(d), "--max-items", str(e.build_items),
                     "--langs", e.langs, "--required", e.langs, "--corpus-lake", self.lake],
                    "build-dataset", d / "build.log")
        if not (d / "pairs-all.jsonl").exists():
            self.sh([_script("pivot-eval"), "pairs", "--dataset", str(self.items_file()), "--out",
                     str(d / "pairs-all.jsonl")], "pairs", d / "build.log")
        keep = first_item_ids(self.items_file(), e.lens_items)
        lines = (d / "pairs-all.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (d / "pairs.jsonl").write_text("".join(ln for ln in lines if pair_item(ln) in keep), encoding="utf-8")

    def items_file(self) -> Path:
        ptr = self.path("dataset", "items.path")
        return Path(ptr.read_text().strip()) if ptr.exists() else self.path("dataset", "items-v1.jsonl")

    def subset_file(self) -> Path | None:
        ptr = self.path("dataset", "corpus-items.path")
        if ptr.exists():
            return Path(ptr.read_text().strip())
        own = self.path("dataset", "corpus-items.txt")
        return own if own.exists() else None

    def corpus_counts(self, pivot_set: str) -> dict[str, Any]:
        """Documents and tokens per language (the main pivot set's doc_pivot), and the corpus manifest."""
        import pyarrow.compute as pc

        from pivot_spark.lake import Lake

        lake = Lake(self.lake, self.cfg.lake.storage_options)
        t = lake.read_arrow("doc_pivot", columns=["lang", "n_tokens"], filter=pc.field("pivot_set") == pivot_set)
        g = t.group_by("lang").aggregate([("n_tokens", "sum"), ("n_tokens", "count")]).to_pylist()
        per = {r["lang"]: {"documents": r["n_tokens_count"], "tokens": r["n_tokens_sum"]} for r in g}
        out: dict[str, Any] = {"documents": sum(v["documents"] for v in per.values()),
                               "tokens": sum(v["tokens"] for v in per.values()),
                               "per_language": dict(sorted(per.items(), key=lambda kv: -kv[1]["tokens"]))}
        src = self.cfg.ingest.input
        manifest = _abs(src) / "MANIFEST.json" if src else None
        if manifest and manifest.exists():
            m = json.loads(manifest.read_text())
            out["manifest"] = {k: m.get(k) for k in ("total_docs", "total_bytes", "languages")}
        return out

    # --- models (one worker process per model: torch and transformers are imported once for all its steps)
    def models(self, budget_s: float | None = None) -> None:
        """Train and evaluate every model that is missing, in :func:`model_runs` order. ``budget_s``: do not
        start a model when less time is left than the longest model so far took (a lent GPU's minutes); the
        report then compares the models that exist."""
        runs = model_runs(self.r)
        if self.from_bundle:
            self.adopt_bundle()
        dataset, subset = self.items_file(), self.subset_file()
        if not dataset.exists():
            raise FileNotFoundError(f"no evaluation data set at {dataset}: run the data stage first")
        if subset is not None and not (_ids(subset) & first_item_ids(dataset, self.r.eval.max_items)):
            self.step(f"none of the evaluated items is in {subset}: no corpus-subset scores")
            subset = None
        t_start, took = time.perf_counter(), [0.0]
        for k, run in enumerate(runs, 1):
            todo = self.model_steps(run, dataset, subset)
            tag = f"[{k}/{len(runs)}] {run.name}"
            if not todo:
                continue
            left = None if budget_s is None else budget_s - (time.perf_counter() - t_start)
            if left is not None and len(took) > 1 and max(took) > left:  # the first model always starts
                rest = [m.name for m in runs[k - 1:]]
                self.step(f"time budget: {left:.0f} s left, a model took up to {max(took):.0f} s: not starting "
                          f"{', '.join(rest)}")
                self.log.append({"step": "budget", "seconds": 0.0, "rc": 0, "not_started": rest})
                break
            self.step(f"{tag}: {', '.join(w for w, _ in todo)}")
            t0 = time.perf_counter()
            self.worker(todo, tag, self.path("evals", run.name, "model.log"))
            took.append(time.perf_counter() - t0)

    # --- device bundles
    def bundle_files(self) -> dict[str, Path]:
        """The experiment's own inputs a bundle carries (bundle-relative path -> file)."""
        d = self.path("dataset")
        out = {"experiment/dataset/items-v1.jsonl": self.items_file(), "experiment/dataset/pairs.jsonl":
               d / "pairs.jsonl", "experiment/facts.json": self.path("facts.json")}
        subset = self.subset_file()
        if subset is not None:
            out["experiment/dataset/corpus-items.txt"] = subset
        return out

    def export_bundle(self, out: Path) -> dict[str, Any]:
        """A device bundle (:mod:`pivot_spark.bundle`) of what the models and report stages read: the arms'
        ``train_set`` files, the tokenizer, the data set, the word-pair counts and (with ``lens_pivots``) the
        co-occurrence rows touching the lens words. Needs the data stage done."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from pivot_spark.bundle import Trimmed, dir_bytes, export
        from pivot_spark.lake import Lake
        from pivot_spark.models import tokenizer_path

        e = self.r.eval
        tok = self.facts.get("tokenizer")
        if not tok:
            raise ValueError(f"{self.path('facts.json')} names no tokenizer: run the data stage first")
        trimmed = {"pair_cooccurrence": Trimmed(pc.field("window") == e.behaviour_window,
                                                ["pair_id", "window", "count", "doc_count", "tokenizer"],
                                                f"behaviours: the word pairs' counts at window {e.behaviour_window}")}
        counts: list[str] = []
        if e.lens_pivots:
            from pivot_spark.steps.tokenize import hf_tokenizer
            from training.evaluate.dataset import read_items
            from training.evaluate.logit_lens import lens_word_ids

            items = read_items(self.items_file())[:e.lens_items]
            hf = hf_tokenizer(str(tokenizer_path(self.lake, tok)))
            ids = sorted({i for v in lens_word_ids(hf, items).values() for i in v})
            near = pc.field("token_a").isin(pa.array(ids, pa.int32())) | pc.field("token_b").isin(
                pa.array(ids, pa.int32()))
            trimmed["cooccurrence"] = Trimmed(
                near & (pc.field("tokenizer") == tok) & (pc.field("window") == e.lens_window),
                ["token_a", "token_b", "lang_a", "lang_b", "window", "count", "doc_count", "tokenizer"],
                f"logit lens: rows touching the {len(ids)} token ids of the first {len(items)} items' words, "
                f"window {e.lens_window}")
            trimmed["token_stats"] = Trimmed(pc.field("tokenizer") == tok,
                                             ["token_id", "lang", "count", "doc_count", "tokenizer"],
                                             "logit lens: document frequencies of the tokenizer's tokens")
            counts.append("doc_tokens")
        runs = model_runs(self.r)
        self.step(f"bundle: {len(runs)} models' train_set files, {sorted(trimmed)} trimmed -> {out}")
        manifest = export(Lake(self.lake, self.cfg.lake.storage_options), out,
                          train=[(m.selection, m.arm) for m in runs], trimmed=trimmed, counts=counts,
                          tokenizers=[tok], files=self.bundle_files(),
                          meta={"recipe": self.r.name, "bundle_key": bundle_key(self.r)})
        self.step(f"bundle written: {manifest['bytes'] / 2**20:.1f} MiB in {out}")
        tree, wheels = _tree_bytes(REPO_ROOT), dir_bytes(REPO_ROOT / ".whl")
        total = (manifest["bytes"] + tree + wheels) / 2**20
        self.step(f"a device call carries ~{total:.1f} MiB: bundle {manifest['bytes'] / 2**20:.1f} + source tree "
                  f"{tree / 2**20:.1f} + .whl {wheels / 2**20:.1f} (the lent machines take {DEVICE_CARRY_MIB} MiB)"
                  + ("" if total <= DEVICE_CARRY_MIB else ": TOO LARGE, lower eval.lens_items or the token budget"))
        manifest["carry_mib"] = round(total, 1)
        return manifest

    def adopt_bundle(self) -> None:
        """On the machine with the bundle: its data set and facts become the workdir's (once)."""
        import shutil

        from pivot_spark.bundle import Bundle

        b = Bundle.open(self.lake)
        made_for = b.manifest.get("meta", {}).get("bundle_key")
        if made_for != bundle_key(self.r):
            raise ConfigError(f"bundle {b.root} was made for recipe {b.manifest.get('meta', {}).get('recipe')!r} "
                              f"with other data settings (key {made_for}, this recipe {bundle_key(self.r)}): "
                              "export it again with this recipe")
        problems = b.verify()
        if problems:
            raise ValueError(f"bundle {b.root} is damaged: " + "; ".join(problems[:5]))
        for rel in b.manifest["files"]:
            if rel.startswith("experiment/"):
                dst = self.work / rel.removeprefix("experiment/")
                if not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(b.root / rel, dst)
        if not self.facts and self.path("facts.json").exists():
            self.facts = json.loads(self.path("facts.json").read_text())

    def model_steps(self, run: ModelRun, dataset: Path, subset: Path | None) -> list[tuple[str, list[str]]]:
        """What is still missing for one model, in order: train, clwtd, logit-lens, behaviours."""
        mdir, edir = self.path("models", run.name), self.path("evals", run.name)
        have = {"clwtd": (edir / "clwtd" / "clwtd.json").exists(),
                "lens": (edir / "lens" / "lens-summary.json").exists(),
                "behaviours": (edir / "behaviours" / "behaviours.json").exists()}
        todo: list[tuple[str, list[str]]] = []
        if not (mdir / "final").exists() and not (have["clwtd"] and have["lens"]):
            todo.append(("train", train_cmd(self.r, run, self.lake, mdir)))
        if not have["clwtd"]:
            todo.append(("clwtd", clwtd_cmd(self.r, mdir / "final", dataset, subset, edir / "clwtd")))
        if not have["lens"]:
            tok = _tokenizer_of(mdir) or self.facts.get("tokenizer")
            todo.append(("logit-lens", lens_cmd(self.r, mdir / "final", dataset, edir / "lens", self.lake, tok)))
        if not have["behaviours"]:
            todo.append(("behaviours", behaviours_cmd(self.r, edir / "lens", self.lake, edir / "behaviours")))
        return todo

    def worker(self, todo: list[tuple[str, list[str]]], tag: str, log_file: Path) -> None:
        """Run console-script command lines in one child process (:func:`_worker_main`), output to ``log_file``."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_MININTERVAL": "30"}
        if self.r.threads:
            env.update({"OMP_NUM_THREADS": str(self.r.threads), "MKL_NUM_THREADS": str(self.r.threads)})
        spec = log_file.with_suffix(".cmds.json")
        spec.write_text(json.dumps([c for _, c in todo]))
        t0 = time.perf_counter()
        with open(log_file, "a", encoding="utf-8") as f:
            rc = subprocess.run([sys.executable, "-m", "pivot_spark.experiment", str(spec)], stdout=f,
                                stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT).returncode
        dt = time.perf_counter() - t0
        self.log.append({"step": f"{tag} {'+'.join(w for w, _ in todo)}", "seconds": round(dt, 1), "rc": rc})
        if rc != 0:
            tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            raise StepFailed(f"{tag} failed (exit {rc}); log {log_file}:\n" + "\n".join(tail))
        self.step(f"{tag} done in {dt:.0f} s")

    # --- report
    def report(self) -> dict[str, Any]:
        runs = model_runs(self.r)
        subset = self.subset_file()
        cmp_dir = self.path("compare")
        reports: dict[str, Any] = {}
        for scope in ("all", "subset"):
            if scope == "subset" and subset is None:
                continue
            for name, arms, ref in comparisons(self.r):
                found = [[(n, self._clwtd_for(n, scope, subset)) for n in names] for _, names in arms]
                groups = [[p for _, p in g if p is not None] for g in found]
                missing = [n for g in found for n, p in g if p is None]
                if any(not g for g in groups):
                    self.step(f"compare {name} ({scope}): skipped, an arm has no evaluated model ({missing})")
                    continue
                if missing:
                    self.step(f"compare {name} ({scope}): without {', '.join(missing)} (not evaluated)")
                out = cmp_dir / scope / f"{name}.md"
                cmd = [_script("pivot-eval"), "compare"]
                for g in groups:
                    cmd += ["--runs", ",".join(str(p) for p in g)]
                cmd += ["--names", ",".join(a for a, _ in arms), "--reference", ref, "--out", str(out),
                        "--n-boot", str(self.r.n_boot)]
                self.sh(cmd, f"compare {name} ({scope})", cmp_dir / "compare.log")
                reports.setdefault(scope, {})[name] = {**json.loads(out.with_suffix(".json").read_text()),
                                                       "missing_runs": missing}
        results = self.collect(runs, reports)
        rdir = self.path("results")
        rdir.mkdir(parents=True, exist_ok=True)
        (rdir / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
        (rdir / "results.md").write_text(results_markdown(results), encoding="utf-8")
        plots(results, rdir)
        return results

    def _clwtd_for(self, run: str, scope: str, subset: Path | None) -> Path | None:
        p = self.path("evals", run, "clwtd", "clwtd.json")
        if not p.exists():
            return None
        if scope == "all" or subset is None:
            return p
        sub = subset_result(json.loads(p.read_text()), _ids(subset))
        if not any(sub["items"].values()):
            return None
        q = self.path("evals", run, "clwtd-subset", "clwtd.json")
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_text(json.dumps(sub))
        return q

    def collect(self, runs: list[ModelRun], reports: dict[str, Any]) -> dict[str, Any]:
        models: dict[str, Any] = {}
        for run in runs:
            m: dict[str, Any] = {"variant": run.variant, "arm": run.arm, "seed": run.seed,
                                 "selection": run.selection}
            final = self.path("models", run.name, "final", "pivot_train.json")
            metrics = self.path("models", run.name, "metrics.jsonl")
            if final.exists():
                t = json.loads(final.read_text())
                m["train"] = {k: t.get(k) for k in ("step", "tokens", "loss", "eval_loss")}
                m["train"]["train_docs"] = t.get("data", {}).get("train_docs")
                m["train"]["train_tokens"] = t.get("data", {}).get("train_tokens")
            elif metrics.exists():
                m["train"] = _metrics_end(metrics)
            cj = self.path("evals", run.name, "clwtd", "clwtd.json")
            if cj.exists():
                c = json.loads(cj.read_text())
                m["clwtd"] = _clwtd_brief(c)
                if "subset" in c:
                    m["clwtd_subset"] = _clwtd_brief(c["subset"])
            bj = self.path("evals", run.name, "behaviours", "behaviours.json")
            if bj.exists():
                b = json.loads(bj.read_text())
                m["behaviours"] = {"mean_auc": b.get("mean_auc"), "label_counts": b.get("label_counts"),
                                   "window": b.get("window"), "pairs_missing_in_lake": b.get("pairs_missing_in_lake"),
                                   "directions": {d: {k: v.get(k) for k in ("auc", "n", "n_cooccurrence", "n_pivot")}
                                                  for d, v in b.get("directions", {}).items()}}
            models[run.name] = m
        return {"recipe": self.r.model_dump(mode="json"), "lake": self.lake, "workdir": str(self.work),
                "dataset": str(self.items_file()), "subset": str(self.subset_file() or ""),
                "facts": self.facts, "models": models, "comparisons": reports, "steps": self.log,
                "seconds": round(time.perf_counter() - self.t0, 1)}


def run_experiment(recipe: Recipe, *, stage: Stage = "all", bundle: str | Path | None = None,
                   budget_s: float | None = None) -> dict[str, Any]:
    """Run ``stage`` of ``recipe``: ``all`` = data, models, report; ``bundle`` = data (when not done), then a device
    bundle at ``bundle``; against a bundle (``spark.lake`` / ``--lake`` naming one) only models and report."""
    if stage == "bundle" and bundle is None:
        raise ConfigError("--stage bundle needs --bundle DIR (where the device bundle is written)")
    ex = Experiment(recipe)
    ex.work.mkdir(parents=True, exist_ok=True)
    (ex.work / "recipe.json").write_text(recipe.model_dump_json(indent=1))
    facts = ex.work / "facts.json"
    if facts.exists():
        ex.facts = json.loads(facts.read_text())
    n = len(model_runs(recipe))
    ex.step(f"recipe {recipe.name}: {n} models, lake {ex.lake}, workdir {ex.work}")
    key = data_key(recipe)
    if ex.from_bundle:
        if stage in ("data", "bundle"):
            raise ConfigError(f"{ex.lake} is a device bundle: it runs the models and report stages; the data "
                              "stage and bundles are made from the lake")
        ex.step(f"{ex.lake} is a device bundle: models and report only")
    elif stage in ("all", "data", "bundle"):
        if ex.facts.get("data_key") == key:
            ex.step(f"data stage already done for this recipe ({facts}); delete it to redo")
        else:
            ex.data()
            ex.facts["data_key"] = key
            facts.write_text(json.dumps(ex.facts, indent=1, default=str))
    if stage == "bundle":
        ex.export_bundle(_abs(bundle))  # type: ignore[arg-type]
        return {}
    if stage in ("all", "models"):
        ex.models(budget_s)
    results: dict[str, Any] = {}
    if stage in ("all", "report"):
        results = ex.report()
        print_summary(results)
    return results


# ---------------------------------------------------------------- summaries

def _clwtd_brief(c: dict[str, Any]) -> dict[str, Any]:
    return {"mean": c.get("mean"), "mean_ci95": c.get("mean_ci95"), "n_items": c.get("n_items"),
            "directions": {d: {k: v.get(k) for k in ("n", "mean", "ci95", "share_positive", "p_correct_mean")}
                           for d, v in c.get("directions", {}).items()}}


def _metrics_end(path: Path) -> dict[str, Any]:
    last: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "end":
            last = {k: rec.get(k) for k in ("step", "tokens", "loss", "eval_loss")}
    return last


def _tokenizer_of(model_dir: Path) -> str | None:
    """The lake tokenizer hash a trained model's rows came from (recorded by pivot-train)."""
    for p in (model_dir / "final" / "pivot_train.json",):
        if p.exists():
            return json.loads(p.read_text()).get("data", {}).get("tokenizer")
    return None


def _stage(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in summary["stages"] if r["stage"] == name)


def _small(counts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if not (isinstance(v, str) and len(v) > 400)}


DEVICE_CARRY_MIB = 64  # what one call to a lent GPU machine carries here (docs/device.md)


def _tree_bytes(root: Path) -> int:
    """Bytes of the files git would send (tracked, and untracked but not ignored); 0 outside a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum((root / n).stat().st_size for n in out.decode().split("\0") if n and (root / n).is_file())


def _abs(p: str | Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else REPO_ROOT / q


def _clock(s: float) -> str:
    return f"{int(s // 60):3d}:{int(s % 60):02d}"


def _f(x: Any, nd: int = 4) -> str:
    """Fixed point; scientific below 1e-3, where tiny models' scores live (0.0000 would hide the sign)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.{nd}f}"


def _ci(ci: Any) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]" if ci else "n/a"


def results_markdown(res: dict[str, Any]) -> str:
    """The generated summary (docs/results.md quotes it and adds the reading)."""
    r = res["recipe"]
    lines = [f"# Experiment `{r['name']}`", "",
             f"lake `{res['lake']}`, workdir `{res['workdir']}`, data set `{res['dataset']}`, "
             f"{res['seconds']:.0f} s in this invocation.", ""]
    corpus = res["facts"].get("corpus")
    if corpus:
        lines += [f"Corpus: {corpus['documents']:,} scored documents, {corpus['tokens']:,} tokens.", "",
                  "| language | documents | tokens |", "|---|---|---|"]
        lines += [f"| {k} | {v['documents']:,} | {v['tokens']:,} |" for k, v in corpus["per_language"].items()]
        lines.append("")
    for vname, sel in res["facts"].get("selections", {}).items():
        lines += [f"Selection `{sel.get('selection')}` ({vname}, pivot set `{sel.get('pivot_set')}`, budget "
                  f"{sel.get('token_budget'):,} tokens):", "", "| arm | documents | tokens | mean pivot proportion "
                  "| language mix |", "|---|---|---|---|---|"]
        lines += [f"| {a} | {v['documents']:,} | {v['tokens']:,} | {v['mean_pivot_proportion']} | {v['lang_mix']} |"
                  for a, v in sel.get("arms", {}).items()]
        lines.append("")
    lines += ["## Models", "", "| run | train tokens seen | final loss | eval loss | CLWTD mean [95% CI] | "
              "subset mean [95% CI] | behaviour AUC (mean over directions) | labels |", "|---|---|---|---|---|---|---|---|"]
    for name, m in res["models"].items():
        t, c, s, b = m.get("train", {}), m.get("clwtd", {}), m.get("clwtd_subset", {}), m.get("behaviours", {})
        lines.append(f"| {name} | {t.get('tokens') or 'n/a'} | {_f(t.get('loss'), 3)} | {_f(t.get('eval_loss'), 3)} | "
                     f"{_f(c.get('mean'))} {_ci(c.get('mean_ci95'))} | {_f(s.get('mean'))} {_ci(s.get('mean_ci95'))} "
                     f"(n={s.get('n_items', 'n/a')}) | {_f(b.get('mean_auc'), 3)} | {b.get('label_counts', 'n/a')} |")
    lines.append("")
    dirs = sorted({d for m in res["models"].values() for d in m.get("clwtd", {}).get("directions", {})})
    if dirs:
        lines += ["## CLWTD per direction (mean S over items)", "",
                  "| run | " + " | ".join(dirs) + " |", "|---" * (len(dirs) + 1) + "|"]
        for name, m in res["models"].items():
            per = m.get("clwtd", {}).get("directions", {})
            lines.append(f"| {name} | " + " | ".join(_f(per.get(d, {}).get("mean")) for d in dirs) + " |")
        lines += ["", "## Behaviour AUC per direction (log co-occurrence frequency -> co-occurrence behaviour)", "",
                  "| run | " + " | ".join(dirs) + " |", "|---" * (len(dirs) + 1) + "|"]
        for name, m in res["models"].items():
            per = m.get("behaviours", {}).get("directions", {})
            lines.append(f"| {name} | " + " | ".join(_f(per.get(d, {}).get("auc"), 3) for d in dirs) + " |")
        lines.append("")
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            lines += [f"## Comparison `{name}` ({'all items' if scope == 'all' else 'corpus-occurring items'}, "
                      f"n={rep['n_items']}, reference `{rep['reference']}`)", "",
                      "| difference | mean diff | 95% CI items+seeds | 95% CI items |", "|---|---|---|---|"]
            for k, v in rep["differences"].items():
                mm = v["mean"]
                lines.append(f"| {k} | {_f(mm['diff'])} | {_ci(mm['ci95_items_seeds'])} | {_ci(mm['ci95_items'])} |")
            lines += ["", "Arm means: " + ", ".join(f"{a} {_f(v['mean'])} (seeds "
                                                    f"{', '.join(_f(x) for x in v['seed_means'])})"
                                                    for a, v in rep["arms"].items()), ""]
            if rep.get("missing_runs"):
                lines += [f"Not evaluated (not in this comparison): {', '.join(rep['missing_runs'])}.", ""]
    unrun = [m for m, v in res["models"].items() if "clwtd" not in v]
    if unrun:
        lines += [f"Models without evaluations (not trained, or stopped by the time budget): {', '.join(unrun)}.", ""]
    return "\n".join(lines)


def plots(res: dict[str, Any], out: Path) -> list[Path]:
    """Per-run CLWTD mean with its item-bootstrap CI (all items and subset), and the behaviour AUC per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, m in res["models"].items() if "clwtd" in m]
    if not names:
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(names) + 1.6), sharey=True)
    for ax, key, title in ((axes[0], "clwtd", "all items"), (axes[1], "clwtd_subset", "corpus-occurring items")):
        if not any(res["models"][n].get(key) for n in names):
            ax.text(0.5, 0.5, "no scores", ha="center", transform=ax.transAxes)
        for y, n in enumerate(names):
            c = res["models"][n].get(key)
            if not c or c.get("mean") is None:
                continue
            lo, hi = c["mean_ci95"]
            ax.errorbar(c["mean"], y, xerr=[[c["mean"] - lo], [hi - c["mean"]]], fmt="o",
                        color=_arm_color(res["models"][n]["arm"], res["models"][n]["variant"]))
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"CLWTD mean S, {title}")
        ax.set_yticks(range(len(names)), names)
    fig.tight_layout()
    p = out / "clwtd-runs.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(p)
    auc = [(n, res["models"][n].get("behaviours", {}).get("mean_auc")) for n in names]
    auc = [(n, a) for n, a in auc if a is not None and not math.isnan(a)]
    if auc:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(auc) + 1.4))
        ax.barh(range(len(auc)), [a - 0.5 for _, a in auc], left=0.5,
                color=[_arm_color(res["models"][n]["arm"], res["models"][n]["variant"]) for n, _ in auc])
        ax.axvline(0.5, color="grey", lw=0.8)
        ax.set_yticks(range(len(auc)), [n for n, _ in auc])
        ax.set_xlim(0, 1)
        ax.set_title("AUC of log co-occurrence frequency (mean over directions)")
        fig.tight_layout()
        p = out / "behaviour-auc.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)
    return paths


def _arm_color(arm: str, variant: str) -> str:
    if variant != MAIN:
        return "tab:purple"
    return {"pivot": "tab:red", "random": "tab:blue", "langmatch": "tab:green"}.get(arm, "tab:grey")


def print_summary(res: dict[str, Any]) -> None:
    t = Table(title=f"experiment {res['recipe']['name']} · {len(res['models'])} models")
    for c in ("run", "tokens", "eval loss", "CLWTD", "subset", "AUC"):
        t.add_column(c)
    for name, m in res["models"].items():
        t.add_row(name, str(m.get("train", {}).get("tokens", "-")), _f(m.get("train", {}).get("eval_loss"), 3),
                  _f(m.get("clwtd", {}).get("mean")), _f(m.get("clwtd_subset", {}).get("mean")),
                  _f(m.get("behaviours", {}).get("mean_auc"), 3))
    out = Console()
    out.print(t)
    for scope, reps in res["comparisons"].items():
        for name, rep in reps.items():
            for k, v in rep["differences"].items():
                mm = v["mean"]
                out.print(f"{scope:6s} {name:18s} {k:28s} {_f(mm['diff'])}  CI items+seeds "
                          f"{_ci(mm['ci95_items_seeds'])}  CI items {_ci(mm['ci95_items'])}")
    out.print(f"results: {res['workdir']}/results/results.json and results.md")


def _worker_main(spec: str) -> int:
    """``python -m pivot_spark.experiment CMDS.json``: run pivot-train / pivot-eval command lines in this one
    process, in order; stops at the first failure. Used by the models stage (imports torch, the Spark side
    never does)."""
    cmds: list[list[str]] = json.loads(Path(spec).read_text())
    for cmd in cmds:
        print(f"\n$ {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        name = Path(cmd[0]).name
        try:
            if name == "pivot-train":
                from training.train import main as train_main

                rc = train_main(cmd[1:])
            elif name == "pivot-eval":
                from training.evaluate.cli import app as eval_app

                eval_app(cmd[1:], prog_name="pivot-eval")
                rc = 0
            else:
                raise ValueError(f"not a pivot-train/pivot-eval command: {cmd[0]}")
        except SystemExit as e:  # typer ends with sys.exit
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        print(f"# exit {rc} after {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            return int(rc)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1]))
