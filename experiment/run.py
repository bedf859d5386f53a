"""Running an experiment recipe: its stages, the worker processes of its models, the time budget.

corpus (if missing) -> rebuild -> a selection with the ``pivot``, ``random`` and ``langmatch`` arms at one token
budget -> ablation selections (other pivot set sizes / windows: the ``pivot`` arm only) -> the word-pair
co-occurrence counts and the evaluation data set -> training per arm and seed -> CLWTD (all items and the
corpus-occurring subset; the frozen in-domain set), logit lens and behaviours per model -> comparisons (pivot vs
random, pivot vs langmatch, ablations vs random; acc@1 on the general and in-domain sets, with and without the
copyable records) -> ``results.json`` + ``results.md``. With ``control``, the positive control's models (one arm
with glossary-injected dictionary pairs) run first and the report says whether the metric sees what they learnt.

The Spark jobs run in this process through the pipeline's job functions (one SparkSession for all of them,
imported when the data stage runs). Training and evaluation run in worker processes (:mod:`experiment.worker`;
they import torch, which the Spark side never needs) that get their typed settings, built from the recipe by
:mod:`experiment.plan`. Every step is idempotent, so an interrupted experiment is resumed by running the same
command again: the Spark jobs derive their run ids from their inputs, a model whose ``final/`` exists is not
trained again (a half-trained one resumes from its checkpoint), an evaluation whose JSON exists is not run
again. The comparisons and the results are cheap and always recomputed from what is on disk.

Layout of ``workdir``: ``dataset/`` (items, corpus-items.txt, pairs.jsonl), ``audit/{selection}.json`` (what each
arm holds: ``pivot-spark audit``), ``models/{run}/`` (trainer output),
``evals/{run}/{clwtd,lens,behaviours}/``, ``compare/``, ``results/`` (results.json, results.md, PNGs). A run
name is ``{variant}-{arm}-s{seed}``; the main variant is ``main``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from evaluation.config import BuildDatasetConfig, CompareConfig, ItemSetsConfig, PairsConfig
from experiment import report
from experiment.bundle import adopt_bundle, experiment_files, export_bundle
from experiment.plan import (
    CONTROL,
    SCOPES,
    ModelRun,
    behaviours_config,
    bundle_key,
    clwtd_config,
    comparisons,
    control_split,
    data_key,
    first_item_ids,
    glossary_documents,
    ids_in,
    langs,
    lens_config,
    model_runs,
    pair_item,
    train_config,
    variants,
    windows_needed,
)
from experiment.recipe import MAIN, Recipe, Stage
from experiment.worker import (
    BehavioursJob,
    BuildDatasetJob,
    ClwtdJob,
    CompareJob,
    ItemSetsJob,
    Job,
    Jobs,
    LensJob,
    PairsJob,
    TrainJob,
)
from pivot_spark.bundle import is_bundle
from pivot_spark.config import REPO_ROOT, ConfigError, PivotConfig, load_config

con = Console(stderr=True)


class StepFailed(ValueError):
    """A training or evaluation worker failed: the message names the step and its log."""


class Experiment:
    def __init__(self, recipe: Recipe) -> None:
        self.r = recipe
        self.work = _abs(recipe.workdir)
        self.cfg = self._spark_cfg()
        self.lake = self.cfg.lake.uri
        self.from_bundle = is_bundle(self.lake)  # an offline bundle instead of the lake: models and report only
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

    def path(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    def run_jobs(self, jobs: list[Job], label: str, log_file: Path, env: dict[str, str] | None = None) -> None:
        """Run ``jobs`` in one worker process (niceness and environment inherited), its output to ``log_file``."""
        log_file.parent.mkdir(parents=True, exist_ok=True)
        spec = log_file.with_suffix(".jobs.json")
        spec.write_text(Jobs(jobs=jobs).model_dump_json(indent=1), encoding="utf-8")
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TQDM_MININTERVAL": "30",
                    **(env or {})}
        t0 = time.perf_counter()
        with open(log_file, "a", encoding="utf-8") as f:
            rc = subprocess.run([sys.executable, "-m", "experiment.worker", str(spec)], stdout=f,
                                stderr=subprocess.STDOUT, env=full_env, cwd=REPO_ROOT).returncode
        dt = time.perf_counter() - t0
        self.log.append({"step": label, "seconds": round(dt, 1), "rc": rc})
        if rc != 0:
            tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            raise StepFailed(f"{label} failed (exit {rc}); log {log_file}:\n" + "\n".join(tail))
        self.step(f"{label} done in {dt:.0f} s")

    # --- data side (Spark, in process)
    def data(self) -> None:
        if self.from_bundle:
            raise ConfigError(f"{self.lake} is an offline bundle, which holds no corpus: run the data stage "
                              "against the lake, the models and report stages against the bundle")
        from pivot_spark.pipeline.audit import audit
        from pivot_spark.pipeline.cooccur import cooccur
        from pivot_spark.pipeline.pair_cooccur import pair_cooccur
        from pivot_spark.pipeline.pair_pivots import pair_pivots
        from pivot_spark.pipeline.pivots import pivots
        from pivot_spark.pipeline.rebuild import rebuild
        from pivot_spark.pipeline.score import score
        from pivot_spark.pipeline.select import select

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
            cooccur(self._spark_cfg([f"cooccur.windows={ws}"]), quiet=True)
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
                res = pivots(vcfg, quiet=True)
                self.facts["pivot_sets"][v.name] = label
                self.facts.setdefault("ablation_pivots", {})[v.name] = _small(res["counts"])
                score(self._spark_cfg([*v.overrides, f"score.pivot_set={label}"]), quiet=True)
            self.step(f"select {v.selection}: arms {list(v.arms)}, pivot set {label}")
            res = select(self._spark_cfg([*base, f"score.pivot_set={label}"]), quiet=True)
            self.facts.setdefault("selections", {})[v.name] = res["counts"]
        self.dataset()
        pairs = self.path("dataset", "pairs.jsonl")
        self.step(f"pair-cooccur windows {self.r.eval.pair_windows} over the corpus")
        pair_cooccur(self._spark_cfg([f"cooccur.windows={self.r.eval.pair_windows}"]), str(pairs), quiet=True)
        self.step(f"pair-pivots: the word pairs' pivots at window {self.r.eval.lens_window}")
        pair_pivots(self._spark_cfg([f"pair_pivots.window={self.r.eval.lens_window}"]), str(pairs), quiet=True)
        self.indomain()
        self.facts["corpus"] = self.corpus_counts(main_set)
        for name in sorted({v.selection for v in variants(self.r)}):
            self.step(f"audit {name}: languages, code spans, evaluation words and pairs per arm")
            res = audit(self._spark_cfg([f"audit.items={self.items_file()}"]), name,
                        str(self.path("audit", f"{name}.json")), quiet=True)
            self.facts.setdefault("audit", {})[name] = res["counts"]["arms"]

    def indomain(self) -> None:
        """The frozen in-domain item set: the recipe's committed one (hash checked), else built from the lake
        once (evaluation.itemsets.RULE) into dataset/indomain, to be committed beside the recipe."""
        e = self.r.eval
        if e.indomain:
            from evaluation.itemsets import check_frozen

            check_frozen(_abs(e.indomain))
            return
        out = self.path("dataset", "indomain")
        if (out / "manifest.json").exists():
            return
        self.step(f"item-sets: the in-domain set ({e.indomain_size} items) from {self.lake}")
        self.run_jobs([ItemSetsJob(config=ItemSetsConfig(
            dataset=self.items_file(), lake=self.lake, out=out, langs=langs(self.r), size=e.indomain_size,
            min_docs=e.indomain_min_docs))], "item-sets", self.path("dataset", "build.log"))

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
            self.run_jobs([BuildDatasetJob(config=BuildDatasetConfig(
                out=d, max_items=e.build_items, langs=langs(self.r), required=langs(self.r),
                corpus_lake=self.lake))], "build-dataset", d / "build.log")
        if not (d / "pairs-all.jsonl").exists():
            self.run_jobs([PairsJob(config=PairsConfig(dataset=self.items_file(), out=d / "pairs-all.jsonl"))],
                          "pairs", d / "build.log")
        keep = first_item_ids(self.items_file(), e.lens_items)
        lines = (d / "pairs-all.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        (d / "pairs.jsonl").write_text("".join(ln for ln in lines if pair_item(ln) in keep), encoding="utf-8")

    def items_file(self) -> Path:
        ptr = self.path("dataset", "items.path")
        return Path(ptr.read_text().strip()) if ptr.exists() else self.path("dataset", "items-v1.jsonl")

    def indomain_file(self) -> Path | None:
        """The in-domain items file (checked against its frozen hash), None when there is none or it holds too few
        items to draw a prompt's shots from."""
        from evaluation.clwtd import N_SHOTS
        from evaluation.itemsets import check_frozen

        folder = _abs(self.r.eval.indomain) if self.r.eval.indomain else self.path("dataset", "indomain")
        if not (folder / "manifest.json").exists():
            return None
        items = check_frozen(folder)
        n = sum(1 for ln in items.read_text(encoding="utf-8").splitlines() if ln.strip())
        return items if n > N_SHOTS else None  # fewer items than a prompt's shots + 1: no in-domain scores

    def control_files(self, dataset: Path) -> dict[str, Path]:
        """The positive control's split and glossary in ``control/`` (a pure function of the data set and the
        recipe's ``control``): injected.txt, matched.txt, glossary.jsonl."""
        from evaluation.dataset import read_items

        d = self.path("control")
        files = {"injected": d / "injected.txt", "matched": d / "matched.txt", "glossary": d / "glossary.jsonl"}
        items = read_items(dataset)
        injected, matched = control_split(items, self.r)
        docs = glossary_documents(items, injected, self.r)
        d.mkdir(parents=True, exist_ok=True)
        files["injected"].write_text("".join(f"{i}\n" for i in injected), encoding="utf-8")
        files["matched"].write_text("".join(f"{i}\n" for i in matched), encoding="utf-8")
        files["glossary"].write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs),
                                     encoding="utf-8")
        return files

    def subset_file(self) -> Path | None:
        ptr = self.path("dataset", "corpus-items.path")
        if ptr.exists():
            return Path(ptr.read_text().strip())
        own = self.path("dataset", "corpus-items.txt")
        return own if own.exists() else None

    def corpus_counts(self, pivot_set: str) -> dict[str, Any]:
        """Documents and tokens per language (the main pivot set's doc_pivot), and the corpus manifest."""
        import pyarrow.compute as pc

        from pivot_spark.lake.reader import open_reader

        reader = open_reader(self.lake, storage_options=self.cfg.lake.storage_options)
        t = reader.read("doc_pivot", ["lang", "n_tokens"], pc.field("pivot_set") == pivot_set)
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
        start a model when less time is left than the longest model so far took; the report then compares the
        models that exist."""
        runs = model_runs(self.r)
        if self.from_bundle:
            adopt_bundle(self.r, self.lake, self.work)
            if not self.facts and self.path("facts.json").exists():
                self.facts = json.loads(self.path("facts.json").read_text())
        dataset, subset = self.items_file(), self.subset_file()
        if not dataset.exists():
            raise FileNotFoundError(f"no evaluation data set at {dataset}: run the data stage first")
        if subset is not None and not (ids_in(subset) & first_item_ids(dataset, self.r.eval.max_items)):
            self.step(f"none of the evaluated items is in {subset}: no corpus-subset scores")
            subset = None
        if self.indomain_file() is None:
            self.step("no in-domain set with more items than a prompt's shots: no in-domain scores")
        control = self.control_files(dataset) if self.r.control is not None else None
        t_start, took = time.perf_counter(), [0.0]
        for k, run in enumerate(runs, 1):
            todo = self.model_steps(run, dataset, subset, control)
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
            self.write_results({})  # after every model: a run cut short still has its numbers in results/

    def model_steps(self, run: ModelRun, dataset: Path, subset: Path | None,
                    control: dict[str, Path] | None = None) -> list[tuple[str, Job]]:
        """What is still missing for one model, in order: train, clwtd (general set), clwtd-indomain, logit-lens,
        behaviours; a control model: train with its glossary, clwtd on the control items."""
        mdir, edir = self.path("models", run.name), self.path("evals", run.name)
        indomain = self.indomain_file()
        have = {"clwtd": (edir / "clwtd" / "clwtd.json").exists(),
                "clwtd-indomain": indomain is None or (edir / "clwtd-indomain" / "clwtd.json").exists(),
                "lens": (edir / "lens" / "lens-summary.json").exists(),
                "behaviours": (edir / "behaviours" / "behaviours.json").exists()}
        todo: list[tuple[str, Job]] = []
        if run.variant == CONTROL:
            assert control is not None and self.r.control is not None
            if not (mdir / "final" / "pivot_train.json").exists() and not have["clwtd"]:
                todo.append(("train", TrainJob(config=train_config(self.r, run, self.lake, mdir,
                                                                   control["glossary"]))))
            if not have["clwtd"]:
                sets = {"injected": control["injected"], "matched": control["matched"]}
                todo.append(("clwtd", ClwtdJob(config=clwtd_config(
                    self.r, mdir / "final", dataset, None, edir / "clwtd", sets,
                    max_items=self.r.control.items or 0, directions=self.r.control.directions))))
            return todo
        trained = (mdir / "final" / "pivot_train.json").exists()  # written last: a complete final/
        if not trained and not (have["clwtd"] and have["clwtd-indomain"] and have["lens"]):
            todo.append(("train", TrainJob(config=train_config(self.r, run, self.lake, mdir))))
        if not have["clwtd"]:
            todo.append(("clwtd", ClwtdJob(config=clwtd_config(self.r, mdir / "final", dataset, subset,
                                                                edir / "clwtd"))))
        if indomain is not None and not have["clwtd-indomain"]:
            todo.append(("clwtd-indomain", ClwtdJob(config=clwtd_config(
                self.r, mdir / "final", indomain, None, edir / "clwtd-indomain",
                max_items=self.r.eval.indomain_items or 0))))
        if not have["lens"]:
            tok = _tokenizer_of(mdir) or self.facts.get("tokenizer")
            todo.append(("logit-lens", LensJob(config=lens_config(self.r, mdir / "final", dataset, edir / "lens",
                                                                  self.lake, tok))))
        if not have["behaviours"]:
            todo.append(("behaviours", BehavioursJob(config=behaviours_config(
                self.r, edir / "lens", self.lake, edir / "behaviours", edir / "clwtd", run))))
        return todo

    def worker(self, todo: list[tuple[str, Job]], tag: str, log_file: Path) -> None:
        """Run one model's missing steps in one worker process, its output to ``log_file``."""
        threads = {"OMP_NUM_THREADS": str(self.r.threads), "MKL_NUM_THREADS": str(self.r.threads)} \
            if self.r.threads else {}
        self.run_jobs([job for _, job in todo], f"{tag} {'+'.join(w for w, _ in todo)}", log_file, threads)

    # --- offline bundles
    def export_bundle(self, out: Path) -> dict[str, Any]:
        """An offline bundle of what the models and report stages read (:mod:`experiment.bundle`)."""
        runs = model_runs(self.r)
        self.step(f"bundle: {len(runs)} models' train_set files and the evaluation inputs -> {out}")
        manifest = export_bundle(self.r, self.lake, self.cfg.lake.storage_options, tokenizer=self.facts.get(
            "tokenizer"), items=self.items_file(), files=experiment_files(self.work, self.items_file(),
                                                                          self.subset_file()), out=out)
        limit = "no limit" if self.r.bundle.max_mib is None else f"limit {self.r.bundle.max_mib:g} MiB"
        self.step(f"bundle written: {manifest['bytes'] / 2**20:.1f} MiB in {out} ({limit}, bundle.max_mib)")
        return manifest

    # --- report
    def report(self) -> dict[str, Any]:
        """Every comparison of every scope in one worker process (one interpreter start for all), then
        ``results/``."""
        cmp_dir = self.path("compare")
        todo: list[tuple[str, str, Path, list[str]]] = []
        jobs: list[Job] = []
        for scope, (folder, noncopy) in SCOPES.items():
            for name, arms, ref in comparisons(self.r):
                found = [[(n, self.path("evals", n, folder, "clwtd.json")) for n in names] for _, names in arms]
                groups = [[p for _, p in g if p.exists()] for g in found]
                missing = [n for g in found for n, p in g if not p.exists()]
                if any(not g for g in groups):
                    self.step(f"compare {name} ({scope}): skipped, an arm has no evaluated model ({missing})")
                    continue
                if missing:
                    self.step(f"compare {name} ({scope}): without {', '.join(missing)} (not evaluated)")
                out = cmp_dir / scope / f"{name}.md"
                jobs.append(CompareJob(config=CompareConfig(
                    runs=[[str(p) for p in g] for g in groups], names=[a for a, _ in arms], reference=ref, out=out,
                    n_boot=self.r.n_boot, exclude_copyable=noncopy)))
                todo.append((scope, name, out, missing))
        if jobs:
            self.run_jobs(jobs, f"compare: {len(jobs)} comparisons", cmp_dir / "compare.log")
        reports: dict[str, Any] = {}
        for scope, name, out, missing in todo:
            reports.setdefault(scope, {})[name] = {**json.loads(out.with_suffix(".json").read_text()),
                                                   "missing_runs": missing}
        return self.write_results(reports)

    def write_results(self, comparisons: dict[str, Any]) -> dict[str, Any]:
        """``results/`` from what is on disk: every model's training and evaluations, the control, and the
        given comparisons."""
        runs = model_runs(self.r)
        results = {"recipe": self.r.model_dump(mode="json"), "lake": self.lake, "workdir": str(self.work),
                   "dataset": str(self.items_file()), "subset": str(self.subset_file() or ""),
                   "indomain": str(self.indomain_file() or ""), "facts": self.facts,
                   "models": report.model_results(self.work, runs), "comparisons": comparisons,
                   "control": report.control_result(self.work, [m for m in runs if m.variant == CONTROL]),
                   "steps": self.log, "seconds": round(time.perf_counter() - self.t0, 1)}
        report.write(results, self.path("results"))
        return results


def run_experiment(recipe: Recipe, *, stage: Stage = "all", bundle: str | Path | None = None,
                   budget_s: float | None = None) -> dict[str, Any]:
    """Run ``stage`` of ``recipe``: ``all`` = data, models, report; ``bundle`` = data (when not done), then an
    offline bundle at ``bundle``; against a bundle (``spark.lake`` naming one) only models and report."""
    if stage == "bundle" and bundle is None:
        raise ConfigError("--stage bundle needs --bundle DIR (where the offline bundle is written)")
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
            raise ConfigError(f"{ex.lake} is an offline bundle: it runs the models and report stages; the data "
                              "stage and bundles are made from the lake")
        ex.step(f"{ex.lake} is an offline bundle (made for bundle key {bundle_key(recipe)}): models and report "
                "only")
    elif stage in ("all", "data", "bundle"):
        if ex.facts.get("data_key") == key:
            ex.step(f"data stage already done for this recipe ({facts}); delete it to redo")
        else:
            ex.data()
            ex.facts["data_key"] = key
            facts.write_text(json.dumps(ex.facts, indent=1, default=str))
    if stage == "bundle" and bundle is not None:
        ex.export_bundle(_abs(bundle))
        return {}
    if stage in ("all", "models"):
        ex.models(budget_s)
    results: dict[str, Any] = {}
    if stage in ("all", "report"):
        results = ex.report()
        report.print_summary(results)
    return results


def _tokenizer_of(model_dir: Path) -> str | None:
    """The lake tokenizer hash a trained model's rows came from (recorded by the trainer)."""
    p = model_dir / "final" / "pivot_train.json"
    return json.loads(p.read_text()).get("data", {}).get("tokenizer") if p.exists() else None


def _stage(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in summary["stages"] if r["stage"] == name)


def _small(counts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in counts.items() if not (isinstance(v, str) and len(v) > 400)}


def _abs(p: str | Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else REPO_ROOT / q


def _clock(s: float) -> str:
    return f"{int(s // 60):3d}:{int(s % 60):02d}"
