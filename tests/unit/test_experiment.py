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
    subset_result,
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
    assert {a.name for a in r.ablations} and all(a.seeds for a in r.ablations)
    assert windows_needed(r)[0]  # the base config counts at least one window


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


def test_subset_result_keeps_only_subset_items():
    res = {"items": {"en->fr": {"a": 0.1, "b": 0.2}, "fr->en": {"b": 0.3}}, "dataset": "d"}
    assert subset_result(res, {"b"})["items"] == {"en->fr": {"b": 0.2}, "fr->en": {"b": 0.3}}


def test_results_markdown_renders_numbers_and_missing_values():
    res = {"recipe": {"name": "t"}, "lake": "l", "workdir": "w", "dataset": "d", "seconds": 1.0,
           "facts": {}, "models": {"main-pivot-s1": {"arm": "pivot", "variant": "main", "train": {"tokens": 10},
                                                     "clwtd": {"mean": 0.0123, "mean_ci95": [-0.01, 0.03],
                                                               "directions": {"en->fr": {"mean": -0.02}}}}},
           "comparisons": {"all": {"pivot-vs-random": {
               "n_items": 5, "reference": "random", "arms": {"pivot": {"mean": 0.01, "seed_means": [0.01]}},
               "differences": {"pivot-random": {"mean": {"diff": 0.004, "ci95_items_seeds": [-0.1, 0.2],
                                                         "ci95_items": [-0.05, 0.06]}}}}}}}
    md = results_markdown(res)
    assert "0.0123 [-0.0100, 0.0300]" in md and "-0.0200" in md
    assert "| pivot-random | 0.0040 | [-0.1000, 0.2000] | [-0.0500, 0.0600] |" in md
    assert "n/a" in md  # no subset, no behaviours


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
