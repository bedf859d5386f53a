"""The plan of an experiment, computed from the recipe alone (tested without Spark or torch).

Variants (the main selection and one per ablation), the model runs in the order they are trained, the keys that
say whether a data stage or a bundle still fits the recipe, the comparisons of the report, and the typed
settings of every training and evaluation step (:class:`training.config.TrainConfig` and the
:mod:`evaluation.config` models), built directly from the recipe.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.config import BehavioursConfig, ClwtdConfig, LensConfig
from evaluation.dataset import LANG_NAMES, Item
from experiment.recipe import MAIN, Recipe
from pivot_spark.config import load_config
from training.config import TrainConfig


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


CONTROL = "control"


def model_runs(r: Recipe) -> list[ModelRun]:
    """The positive control's models, then the main arms seed by seed (so a cut-short run still has every arm at the
    first seeds), then ablations."""
    out: list[ModelRun] = []
    if r.control is not None:
        out += [ModelRun(CONTROL, r.selection.name, r.control.arm, s) for s in r.control.seeds]
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


def _key(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def data_key(r: Recipe) -> str:
    """What the data stage depends on: a finished data stage with the same key is not run again (re-running the
    Spark jobs would be a no-op anyway, except that counting an ablation's window moves the `cooccurrence`
    version, which makes the rebuild recompute the main pivot set under a new label)."""
    return _key({"spark": r.spark.model_dump(mode="json"), "selection": r.selection.model_dump(mode="json"),
                 "ablations": [a.model_dump(mode="json") for a in r.ablations],
                 "eval": {k: getattr(r.eval, k) for k in ("dataset", "corpus_items", "build_items", "langs",
                                                          "pair_windows")}})


def bundle_key(r: Recipe) -> str:
    """What an offline bundle depends on (the data stage's settings without the lake, which on the machine
    reading the bundle is the bundle): the models stage refuses a bundle made for another recipe."""
    return _key({"spark": r.spark.model_dump(mode="json", exclude={"lake"}),
                 "selection": r.selection.model_dump(mode="json"),
                 "ablations": [a.model_dump(mode="json") for a in r.ablations],
                 "eval": r.eval.model_dump(mode="json", exclude={"batch_size", "lens_batch_size", "max_items",
                                                                 "dtype"})})


def langs(r: Recipe) -> list[str]:
    return [x.strip() for x in r.eval.langs.split(",") if x.strip()]


def train_config(r: Recipe, run: ModelRun, lake: str, out: Path, glossary: Path | None = None) -> TrainConfig:
    """The trainer's settings of one model: the recipe's ``train`` with the run's selection, arm and seed; it
    resumes from its own checkpoints. A control model trains on the resident stream with ``glossary`` injected."""
    settings = r.train.model_dump(exclude={"seeds"})
    if run.variant == CONTROL and r.control is not None:
        if glossary is None:
            raise ValueError("a control model needs its glossary file")
        settings.update(resident=True, inject=str(glossary), inject_repeats=r.control.repeats)
        if r.control.max_steps:
            settings.update(max_steps=r.control.max_steps, max_tokens=None)
    return TrainConfig(**settings, lake=lake, selection=run.selection, arm=run.arm, seed=run.seed, out=str(out),
                       resume=True)


def clwtd_config(r: Recipe, model: Path, dataset: Path, subset: Path | None, out: Path,
                 item_sets: dict[str, Path] | None = None, max_items: int | None = None,
                 directions: list[str] | None = None) -> ClwtdConfig:
    """CLWTD of one model on ``dataset``: the first ``max_items`` items (None: the recipe's ``eval.max_items``;
    0: all), in ``directions`` (default: all among the recipe's languages)."""
    e = r.eval
    return ClwtdConfig(model=model, dataset=dataset, out=out, langs=langs(r), batch_size=e.batch_size,
                       dtype=e.dtype, items_subset=subset, item_sets=item_sets or {}, directions=directions,
                       max_items=(e.max_items if max_items is None else max_items) or None)


def lens_config(r: Recipe, model: Path, dataset: Path, out: Path, lake: str, tokenizer: str | None) -> LensConfig:
    """The logit lens of one model; with ``lens_pivots``, the pivot mass from the lake's co-occurrence (the lake
    tokenizer named explicitly: pivot-train saves no lake hash beside the model)."""
    e = r.eval
    cfg = LensConfig(model=model, dataset=dataset, out=out, langs=langs(r), batch_size=e.lens_batch_size,
                     dtype=e.dtype, max_items=e.lens_items or None)
    if e.lens_pivots:
        cfg = cfg.model_copy(update={"lake": lake, "window": e.lens_window, "tokenizer_hash": tokenizer})
    return cfg


def behaviours_config(r: Recipe, lens: Path, lake: str, out: Path, clwtd: Path, run: ModelRun) -> BehavioursConfig:
    """Labels on the records the model solves (its CLWTD items), co-occurrence from the corpus and from the
    model's own training rows."""
    return BehavioursConfig(lens=lens / "lens.jsonl", lake=lake, out=out, window=r.eval.behaviour_window,
                            clwtd_items=clwtd / "clwtd-items.jsonl", min_layers=r.eval.min_layers, train_lake=lake,
                            train_selection=run.selection, train_arm=run.arm)


# -- the positive control ----------------------------------------------------------------------------------------
def control_split(items: list[Item], r: Recipe) -> tuple[list[str], list[str]]:
    """(injected ids, matched ids): the control's items in data set order are paired (1st with 2nd, 3rd with
    4th, ...: neighbours in general frequency), and a seeded hash picks the injected one of each pair."""
    assert r.control is not None
    pool = items[:r.control.items] if r.control.items else items
    injected, matched = [], []
    for a, b in zip(pool[0::2], pool[1::2], strict=False):
        h = hashlib.sha256(f"{r.control.seed}|{a.id}|{b.id}".encode()).digest()[0]
        first, second = (a, b) if h % 2 == 0 else (b, a)
        injected.append(first.id)
        matched.append(second.id)
    return injected, matched


def glossary_documents(items: list[Item], injected: list[str], r: Recipe) -> list[str]:
    """Glossary documents of the injected items: every ordered pair of the evaluated languages as a line pair
    ``{L1}: {x}\n{L2}: {y}`` (the translation prompt's format), ``pairs_per_document`` to a document, in a seeded
    order."""
    import random

    assert r.control is not None
    by_id = {it.id: it for it in items}
    ls = langs(r)
    lines = [f"{LANG_NAMES[a]}: {by_id[i].words[a]}\n{LANG_NAMES[b]}: {by_id[i].words[b]}"
             for i in injected for a in ls for b in ls if a != b and a in by_id[i].words and b in by_id[i].words]
    random.Random(r.control.seed).shuffle(lines)
    k = r.control.pairs_per_document
    return ["\n\n".join(lines[j:j + k]) for j in range(0, len(lines), k)]


SCOPES = {"general": ("clwtd", False), "general-noncopy": ("clwtd", True), "indomain": ("clwtd-indomain", False),
          "indomain-noncopy": ("clwtd-indomain", True)}
"""Comparison scopes: (evaluation folder, without copyable records). The primary contrast is pivot - langmatch on
acc@1 in ``indomain-noncopy``; ``general`` is the paper's set (the headline of the reproduction)."""


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


def first_item_ids(items_file: Path, n: int | None) -> set[str]:
    """Ids of the first ``n`` items of a data set (all with None): what ``max_items=n`` evaluates. Only the
    lens items' word pairs are counted by pair-cooccur (all 2,000 items' pairs over the corpus cost minutes)."""
    ids = []
    with open(items_file, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                ids.append(json.loads(line)["id"])
                if n and len(ids) >= n:
                    break
    return set(ids)


def ids_in(path: Path) -> set[str]:
    """The ids of a file of ids, one a line."""
    return {ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}


def pair_item(line: str) -> str | None:
    """The item id of a pairs.jsonl line (pair ids are ``{item}|{lang a}|{lang b}``)."""
    return json.loads(line)["pair_id"].split("|", 1)[0] if line.strip() else None
