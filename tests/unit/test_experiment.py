"""The experiment recipe logic: validation, the plan of models, the typed step settings and the comparisons (no
Spark, no torch: the end-to-end run is tests/spark/test_experiment_smoke.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiment import run as X
from experiment.plan import (
    bundle_key,
    comparisons,
    data_key,
    model_runs,
    train_config,
    variants,
    windows_needed,
)
from experiment.recipe import Recipe, load_recipe
from experiment.report import results_markdown
from experiment.run import Experiment
from pivot_spark.config import ConfigError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def recipe(**kw) -> Recipe:
    base = {"name": "t", "workdir": "out/t", "train": {"max_steps": 5},
            "ablations": [{"name": "k500", "overrides": ["pivots.top_k=500"]},
                          {"name": "w50", "overrides": ["cooccur.windows=[10,50]", "pivots.window=50"]}]}
    return Recipe.model_validate({**base, **kw})


@pytest.mark.parametrize("name", ["cpu", "cpu-quick", "gpu"])
def test_shipped_recipes_load_with_three_seeds_per_arm(name):
    r = load_recipe(EXPERIMENTS / f"{name}.yaml")
    assert set(r.selection.arms) == {"pivot", "random", "langmatch"}
    assert len(r.train.seeds) >= 3
    assert name == "gpu" or ({a.name for a in r.ablations} and all(a.seeds for a in r.ablations))
    assert windows_needed(r)[0]  # the base config counts at least one window


def test_gpu_recipe_is_sized_for_one_node_and_a_60_mib_bundle():
    from training.model import llama_config
    from training.presets import PRESETS

    r = load_recipe(EXPERIMENTS / "gpu.yaml")
    assert r.bundle.max_mib == 60 and not r.ablations and len(model_runs(r)) == 9
    assert r.train.resident and r.train.eval_set == "common" and r.train.max_tokens == 40_000_000
    assert "tokenizer.vocab_size=16000" in r.spark.overrides
    cfg = llama_config(r.train.preset, vocab_size=16000, seq_len=1024, bos_id=1, eos_id=2)
    p = PRESETS[r.train.preset]
    n = p.layers * (4 * p.hidden**2 + 3 * p.hidden * p.intermediate) + 16000 * p.hidden  # tied embeddings
    assert 15e6 <= n <= 21e6 and cfg.num_hidden_layers >= r.eval.min_layers


def test_gpu_recipe_uses_its_committed_frozen_in_domain_set():
    """The in-domain set of the GPU run was frozen before any model was scored: committed, hash-checked, built by
    rule v1 from this recipe's own lake with the recipe's languages, size and threshold."""
    import json

    from evaluation.itemsets import RULE, check_frozen

    r = load_recipe(EXPERIMENTS / "gpu.yaml")
    folder = EXPERIMENTS.parent / str(r.eval.indomain)
    items = check_frozen(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert (folder / "RULE.txt").read_text(encoding="utf-8") == RULE
    assert manifest["lake"] == r.spark.lake and manifest["langs"] == r.eval.langs.split(",")
    assert manifest["size"] == r.eval.indomain_size == manifest["n_items"] == len(items.read_text().splitlines())
    assert manifest["min_docs"] == r.eval.indomain_min_docs
    assert not any(str(v).startswith("/") for v in (manifest["lake"], manifest["dataset"]))  # portable paths


def test_control_recipe_trains_only_the_control():
    r = load_recipe(EXPERIMENTS / "control.yaml")
    assert [m.variant for m in model_runs(r)] == ["control"] * 3 and r.control is not None


def test_model_runs_main_arms_seed_major_then_ablations():
    runs = model_runs(recipe())
    names = [m.name for m in runs]
    assert names[:3] == ["main-pivot-s1", "main-random-s1", "main-langmatch-s1"]
    assert len([m for m in runs if m.variant == "main"]) == 9
    assert names[-2:] == ["k500-pivot-s1", "w50-pivot-s1"]
    assert {m.selection for m in runs if m.variant == "w50"} == {"exp-w50"}
    assert len(set(names)) == len(names)


def test_variants_get_their_own_pivot_set_and_selection():
    vs = {v.name: v for v in variants(recipe())}
    assert vs["main"].pivot_set is None and vs["main"].selection == "exp"
    assert vs["k500"].pivot_set == "exp-k500-ps" and vs["k500"].arms == ("pivot",)


def test_windows_needed_lists_only_the_extra_ablation_windows():
    base, extra = windows_needed(recipe())
    assert base == [10] and extra == [50]


def test_comparisons_pair_pivot_with_each_baseline_and_ablations_with_random():
    cmp = {name: (arms, ref) for name, arms, ref in comparisons(recipe())}
    assert set(cmp) == {"pivot-vs-random", "pivot-vs-langmatch", "ablations"}
    arms, ref = cmp["pivot-vs-langmatch"]
    assert ref == "langmatch" and [a for a, _ in arms] == ["pivot", "langmatch"]
    assert arms[1][1] == ["main-langmatch-s1", "main-langmatch-s2", "main-langmatch-s3"]
    arms, ref = cmp["ablations"]
    assert ref == "random" and [a for a, _ in arms] == ["pivot-k500", "pivot-w50", "pivot", "random"]


def test_train_config_resumes_and_uses_one_length_setting():
    r = recipe()
    cfg = train_config(r, model_runs(r)[1], "/lake", Path("/m"))
    assert cfg.arm == "random" and cfg.seed == 1
    assert cfg.resume and cfg.max_steps == 5 and cfg.max_tokens is None


@pytest.mark.parametrize("bad, match", [
    ({"train": {"max_steps": 5, "max_tokens": 9}}, "exactly one"),
    ({"selection": {"arms": ["random", "langmatch"]}}, "pivot"),
    ({"ablations": [{"name": "main", "overrides": ["pivots.top_k=5"]}]}, "distinct"),
    ({"ablations": [{"name": "x", "overrides": ["select.token_budget=5"]}]}, "only pivots"),
])
def test_bad_recipes_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        recipe(**bad)


def test_load_recipe_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_recipe(tmp_path / "none.yaml")
    p = tmp_path / "r.yaml"
    p.write_text("name: x\nworkdir: w\ntrain: {max_steps: 1}\nbogus: 1\n")
    with pytest.raises(ConfigError, match="r.yaml"):
        load_recipe(p)
    p.write_text("name: x\nworkdir: w\ntrain: {max_steps: 1}\n")
    r = load_recipe(p, lake="/l", workdir="/w")
    assert r.spark.lake == "/l" and r.workdir == "/w"


def test_data_key_changes_with_the_data_side_only():
    r = recipe()
    assert data_key(r) == data_key(recipe(train={"max_steps": 99}))
    assert data_key(r) != data_key(recipe(selection={"token_budget": 7}))


def test_results_markdown_renders_numbers_and_missing_values():
    acc = {"acc1": {"mean": 0.3125, "ci95": [0.25, 0.375]}, "rr": {"mean": 0.5}, "llr": {"mean": 0.1},
           "n_records": 8}
    res = {"recipe": {"name": "t"}, "lake": "l", "workdir": "w", "dataset": "d", "seconds": 1.0,
           "facts": {}, "models": {"main-pivot-s1": {"arm": "pivot", "variant": "main", "train": {"tokens": 10},
                                                     "clwtd": {"mean": 0.0123, "mean_ci95": [-0.01, 0.03],
                                                               "scopes": {"all": acc},
                                                               "directions": {"en->fr": {"acc1": 0.25}}}}},
           "comparisons": {"general": {"pivot-vs-random": {
               "n_items": 5, "reference": "random", "metric": "acc1", "metric_label": "acc@1", "chance": 0.1,
               "arms": {"pivot": {"mean": 0.01, "seed_means": [0.01]}},
               "differences": {"pivot-random": {"mean": {
                   "diff": 0.04, "ci95_items_given_seeds": [-0.05, 0.06],
                   "paired_by_seed": {"diff": 0.04, "ci95": [-0.1, 0.2], "n_seeds": 3}}}}}}}}
    md = results_markdown(res)
    assert "0.3125 [0.2500, 0.3750]" in md and "| 0.2500 |" in md
    assert "| pivot-random | 0.0400 | [-0.1000, 0.2000] (3) | [-0.0500, 0.0600] |" in md
    assert "n/a" in md  # no in-domain scores, no behaviours


def test_control_runs_first_with_a_matched_split_and_its_glossary(tmp_path):
    from evaluation.dataset import Item
    from experiment.plan import CONTROL, clwtd_config, control_split, glossary_documents

    r = recipe(control={"seeds": [1, 2], "repeats": 3, "max_steps": 7, "pairs_per_document": 4})
    runs = model_runs(r)
    assert [m.name for m in runs[:2]] == ["control-random-s1", "control-random-s2"]
    assert runs[2].variant == "main"
    items = [Item(f"w{i}.n", i, "n", {"en": f"e{i}", "fr": f"f{i}", "ja": f"j{i}", "zh": f"z{i}"}, {}, {})
             for i in range(9)]
    injected, matched = control_split(items, r)
    assert len(injected) == len(matched) == 4 and not set(injected) & set(matched)
    for a, b in zip(injected, matched, strict=True):  # neighbours in frequency rank
        assert abs(int(a[1:-2]) - int(b[1:-2])) == 1 and min(int(a[1:-2]), int(b[1:-2])) % 2 == 0
    docs = glossary_documents(items, injected, r)
    lines = [blk for d in docs for blk in d.split("\n\n")]
    assert len(lines) == 4 * 12 and len(docs) == 12
    first = items[int(injected[0][1:-2])]
    assert f"English: {first.words['en']}\nFrench: {first.words['fr']}" in lines
    assert not any(f"e{m[1:-2]}\n" in blk for m in matched for blk in lines)
    cfg = train_config(r, runs[0], "/lake", tmp_path / "m", tmp_path / "g.jsonl")
    assert cfg.resident and cfg.inject == str(tmp_path / "g.jsonl") and cfg.inject_repeats == 3
    assert cfg.max_steps == 7 and cfg.arm == "random" and runs[0].variant == CONTROL
    with pytest.raises(ValueError, match="glossary"):
        train_config(r, runs[0], "/lake", tmp_path / "m")
    assert clwtd_config(r, tmp_path, tmp_path, None, tmp_path, max_items=0).max_items is None
    assert clwtd_config(r, tmp_path, tmp_path, None, tmp_path, max_items=5).max_items == 5
    assert clwtd_config(r, tmp_path, tmp_path, None, tmp_path, directions=["en->fr"]).directions == ["en->fr"]


@pytest.mark.parametrize(("injected", "passes"), [([0.6, 0.7, 0.65], True), ([0.1, 0.15, 0.05], False)])
def test_control_result_passes_only_above_chance(tmp_path, injected, passes):
    import json

    from experiment.plan import ModelRun
    from experiment.report import control_result

    runs = [ModelRun("control", "s", "random", k) for k in (1, 2, 3)]
    for run, v in zip(runs, injected, strict=True):
        d = tmp_path / "evals" / run.name / "clwtd"
        d.mkdir(parents=True)
        scope = {k: {"metrics": {"acc1": {"mean": a, "ci95": [a - 0.1, a + 0.1]}, "rr": {"mean": a}}, "n_records": 9}
                 for k, a in (("injected", v), ("matched", 0.1))}
        (d / "clwtd.json").write_text(json.dumps({"scopes": scope}))
    res = control_result(tmp_path, runs)
    assert res["passes"] is passes and res["injected"]["n_seeds"] == 3
    assert res["difference"]["diff"] == pytest.approx(sum(injected) / 3 - 0.1)


def test_pairs_are_limited_to_the_lens_items(tmp_path):
    from experiment.plan import first_item_ids, pair_item

    items = tmp_path / "items.jsonl"
    items.write_text("".join(f'{{"id": "w{i}.n"}}\n' for i in range(5)))
    assert first_item_ids(items, 2) == {"w0.n", "w1.n"} and len(first_item_ids(items, None)) == 5
    assert pair_item('{"pair_id": "w1.n|en|fr", "lang_a": "en"}\n') == "w1.n" and pair_item("\n") is None


def test_bundle_key_follows_the_data_a_bundle_holds_not_the_training():
    r = recipe()
    assert bundle_key(r) == bundle_key(recipe(train={"max_steps": 9, "preset": "125m", "device": "cuda"}))
    assert bundle_key(r) == bundle_key(recipe(spark={"lake": "/elsewhere"}))  # the lake is the bundle there
    assert bundle_key(r) == bundle_key(recipe(eval={"max_items": 7, "batch_size": 3}))
    assert bundle_key(r) != bundle_key(recipe(eval={"lens_items": 7}))  # the bundle's co-occurrence rows
    assert bundle_key(r) != bundle_key(recipe(selection={"token_budget": 5}))


def test_worker_jobs_carry_the_typed_settings_through_their_file(tmp_path):
    """The settings of a model's steps reach the worker as they were built: serialized by their own models."""
    from experiment.worker import Jobs, TrainJob

    r = recipe(train={"max_steps": 5, "eval_shard": "none", "lr": 1e-3})
    cfg = train_config(r, model_runs(r)[0], "/lake", tmp_path / "m")
    spec = tmp_path / "jobs.json"
    spec.write_text(Jobs(jobs=[TrainJob(config=cfg)]).model_dump_json())
    (job,) = Jobs.model_validate_json(spec.read_text()).jobs
    assert isinstance(job, TrainJob) and job.config == cfg and job.config.eval_shard is None


@pytest.mark.parametrize(("budget", "started"), [(None, 11), (1300.0, 11), (1000.0, 9), (450.0, 4), (150.0, 1), (0.0, 1)])
def test_time_budget_starts_no_model_it_cannot_finish(tmp_path, monkeypatch, budget, started):
    """Models of 100 s (a clock the fake worker advances): a model starts while the time left covers the longest
    one so far; the first one always starts."""
    r = recipe(workdir=str(tmp_path / "w"), eval={"dataset": str(tmp_path / "items.jsonl")})
    (tmp_path / "items.jsonl").write_text('{"id": "a"}\n')
    ex = Experiment(r)
    ex.path("dataset").mkdir(parents=True)
    (ex.path("dataset") / "items.path").write_text(str(tmp_path / "items.jsonl"))
    clock = [0.0]
    monkeypatch.setattr(X.time, "perf_counter", lambda: clock[0])
    ran: list[str] = []

    def worker(todo, tag, log_file):
        ran.append(tag)
        clock[0] += 100.0 + 10.0 * (len(ran) == 2)  # the second model is the slowest

    monkeypatch.setattr(ex, "worker", worker)
    ex.models(budget)
    assert len(ran) == started
    if started < 11:
        assert ex.log[-1]["step"] == "budget" and len(ex.log[-1]["not_started"]) == 11 - started
