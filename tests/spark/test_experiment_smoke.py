"""The experiment recipe end to end on the smoke fixture: rebuild, three arms, an ablation, tiny models,
clwtd on a handful of real items, logit lens, behaviours, compare, results; then a re-run that does nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ITEMS = ROOT / "tests" / "evaluate" / "fixtures" / "items-sample.jsonl"

# ~10 minutes on 2 idle cores (a rebuild of the fixture, then ten models, each a worker process that imports torch);
# 25 on the shared box
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(2700)]


def test_recipe_end_to_end_on_the_smoke_fixture(tmp_path):
    from evaluation.corpus import coverage, lake_texts
    from evaluation.dataset import read_items
    from experiment.plan import model_runs
    from experiment.recipe import load_recipe
    from experiment.run import run_experiment
    from pivot_spark.lake.reader import open_reader

    lake = tmp_path / "lake"
    work = tmp_path / "work"
    recipe = {
        "name": "smoke", "workdir": str(work),
        "spark": {"config": "smoke", "lake": str(lake)},
        "selection": {"name": "exp", "token_budget": 30000},
        "train": {"preset": "tiny", "seeds": [1, 2, 3], "max_steps": 4, "seq_len": 64, "batch_size": 4,
                  "lr": 3e-3, "warmup": 1, "num_workers": 0, "eval_batches": 1},
        "eval": {"dataset": str(ITEMS), "corpus_items": str(tmp_path / "corpus-items.txt"), "max_items": 4,
                 "lens_items": 4, "pair_windows": [10, 30], "behaviour_window": 30},
        "ablations": [{"name": "k100", "overrides": ["pivots.top_k=100"], "seeds": [1]}],
        "n_boot": 50,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    r = load_recipe(path)

    run_experiment(r, stage="data")
    # the corpus-occurring subset, computed the way build-dataset --corpus-lake computes it
    _, present = coverage(read_items(ITEMS)[:4], lake_texts(open_reader(str(lake))))
    (tmp_path / "corpus-items.txt").write_text("".join(f"{i}\n" for i in present))
    res = run_experiment(r, stage="all")

    runs = model_runs(r)
    assert len(runs) == 10 and set(res["models"]) == {m.name for m in runs}
    for name, m in res["models"].items():
        assert m["train"]["step"] == 4, name
        dirs = m["clwtd"]["directions"]
        assert len(dirs) == 12 and all(v["n"] == 4 for v in dirs.values())
        assert -1.0 <= m["clwtd"]["mean"] <= 1.0
        assert "label_counts" in m["behaviours"]
        assert "pivot" not in m["behaviours"]["label_counts"]  # 2-layer models get no behaviour labels
    sels = res["facts"]["selections"]
    arms = sels["main"]["arms"]
    assert set(arms) == {"pivot", "random", "langmatch"}
    assert arms["pivot"]["mean_pivot_proportion"] > arms["random"]["mean_pivot_proportion"]
    assert sels["k100"]["pivot_set"] == "exp-k100-ps" and set(sels["k100"]["arms"]) == {"pivot"}
    cmp = res["comparisons"]["general"]
    assert set(cmp) == {"pivot-vs-random", "pivot-vs-langmatch", "ablations"}
    assert cmp["pivot-vs-random"]["metric"] == "acc1" and "general-noncopy" in res["comparisons"]
    diff = cmp["pivot-vs-random"]["differences"]["pivot-random"]["mean"]
    t = diff["paired_by_seed"]
    assert t["n_seeds"] == 3 and t["ci95"][0] <= diff["diff"] <= t["ci95"][1]
    assert 0.0 <= res["models"]["main-pivot-s1"]["clwtd"]["scopes"]["all"]["acc1"]["mean"] <= 1.0
    out = work / "results"
    assert json.loads((out / "results.json").read_text())["models"]
    assert "pivot-random" in (out / "results.md").read_text()
    assert (out / "clwtd-runs.png").stat().st_size > 0

    # a second run trains and evaluates nothing: every model and evaluation is found on disk
    stamp = {p: p.stat().st_mtime_ns for p in work.glob("evals/*/clwtd/clwtd.json")}
    again = run_experiment(r, stage="all")
    steps = [s["step"] for s in again["steps"]]
    assert not [s for s in steps if " train" in s or " clwtd" in s or "logit-lens" in s or "behaviours" in s]
    assert stamp == {p: p.stat().st_mtime_ns for p in work.glob("evals/*/clwtd/clwtd.json")}

    # an offline bundle of the same recipe, read where neither delta-rs nor Spark is installed: the first model
    # (the budget stops the models stage after it) trains and scores exactly as it did from the lake
    from experiment.plan import bundle_key

    bundle, work2 = tmp_path / "bundle", tmp_path / "work-offline"
    run_experiment(r, stage="bundle", bundle=bundle)
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["meta"]["bundle_key"] == bundle_key(r)
    assert {f["partition"]["selection"] for f in manifest["tables"]["train_set"]["files"]} == {"exp", "exp-k100"}
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\nfor m in ('deltalake', 'pyspark', 'delta', 'fasttext', 'langcodes'):\n    sys.modules[m] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{block}{os.pathsep}{ROOT}"}
    cmd = [sys.executable, "-m", "experiment.cli", "--recipe", str(path), "--lake", str(bundle),
           "--workdir", str(work2)]
    res = subprocess.run([*cmd, "--stage", "models", "--budget-s", "1"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    first = runs[0].name
    assert sorted(p.name for p in (work2 / "evals").iterdir()) == [first]
    assert "time budget" in res.stderr
    for rel in ("clwtd/clwtd.json", "behaviours/behaviours.json"):
        a, b = (json.loads((w / "evals" / first / rel).read_text()) for w in (work, work2))
        key = "items" if "items" in a else "directions"
        assert a[key] == b[key], rel
    lens = [[json.loads(ln)["pivot_ids"] for ln in (w / "evals" / first / "lens" / "lens.jsonl").open()]
            for w in (work, work2)]
    assert lens[0] == lens[1]
    res = subprocess.run([*cmd, "--stage", "report"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert list(json.loads((work2 / "results" / "results.json").read_text())["models"][first]["clwtd"])
    with pytest.raises(Exception, match="is an offline bundle"):
        run_experiment(load_recipe(path, lake=str(bundle), workdir=str(work2)), stage="data")
