"""The experiment recipe: its schema and how a YAML file becomes one (validated, with overrides).

A recipe names the Spark side (a ``pivot-spark`` preset or file, the lake), the selection and its arms, how to
train (``train``: :class:`training.config.TrainSettings` plus the seeds), how to evaluate, the ablations and the
bundle limits. Imports neither pyspark nor torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pivot_spark.config import ConfigError
from pivot_spark.typed_cli import SettingsError, apply_overrides, read_settings_file, validate
from training.config import TrainSettings

Stage = Literal["all", "data", "models", "report", "bundle"]
STAGES: tuple[Stage, ...] = ("all", "data", "models", "report", "bundle")
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


class TrainSpec(TrainSettings):
    """How every model of the recipe trains (the trainer's settings and defaults), and the seeds of the main arms."""

    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3], description="training seeds of the main arms")


class EvalSpec(_Spec):
    dataset: str | None = Field(None, description="an existing items-v1.jsonl; default: build one in workdir")
    corpus_items: str | None = Field(None, description="item ids occurring in the corpus (with `dataset`)")
    build_items: int = Field(2000, description="items build-dataset makes")
    langs: str = "en,fr,ja,zh"
    max_items: int | None = Field(None, description="clwtd: first N items")
    batch_size: int = 32
    dtype: str = Field("auto", description="clwtd and logit lens: auto (bf16 on CUDA, fp32 on CPU), float32, "
                                           "bfloat16")
    lens_items: int | None = Field(None, description="logit lens: first N items")
    lens_batch_size: int = 16
    lens_pivots: bool = Field(False, description="logit lens: pivot mass from the lake's cooccurrence")
    lens_window: int = Field(10, description="cooccurrence window for the lens pivot mass")
    pair_windows: list[int] = Field(default_factory=lambda: [10, 100],
                                    description="windows of pair-cooccur (the paper's window is 100 tokens)")
    behaviour_window: int = 100
    indomain: str | None = Field(None, description="a frozen in-domain item set (folder from pivot-eval item-sets, "
                                                   "committed); default: built from the lake by the data stage")
    indomain_size: int = Field(200, description="items of the in-domain set the data stage builds")
    indomain_min_docs: int = Field(5, description="documents of its language each in-domain word must occur in")
    indomain_items: int | None = Field(None, description="clwtd on the first N in-domain items (default: all)")
    min_layers: int = Field(6, description="behaviour labels only for models with at least this many layers")


class ControlSpec(_Spec):
    """The positive control: models of one arm with dictionary pairs injected as glossary lines; the metric must
    rank the injected pairs above matched pairs that were not injected (docs/evaluation.md section 6)."""

    arm: str = Field("random", description="arm of the main selection the control models train on")
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3])
    items: int | None = Field(None, description="the first N items of the data set take part (default: all)")
    directions: list[str] | None = Field(None, description="directions scored, e.g. [en->fr, ja->zh] (default: all "
                                                           "among eval.langs; the glossary has every ordered pair)")
    repeats: int = Field(4, description="copies of each glossary document per epoch of the training stream")
    pairs_per_document: int = Field(6, description="glossary lines per injected document")
    max_steps: int | None = Field(None, description="training steps of a control model (default: train.max_steps)")
    seed: int = Field(0, description="seed of the injected/matched split and of the glossary documents")


class Ablation(_Spec):
    name: str
    overrides: list[str] = Field(description="pivots.* / cooccur.* settings of this pivot set")
    seeds: list[int] = Field(default_factory=lambda: [1])


class BundleSpec(_Spec):
    max_mib: float | None = Field(1024, description="refuse to write an offline bundle larger than this (MiB); "
                                                    "null: no limit")


class Recipe(_Spec):
    name: str
    workdir: str
    spark: SparkSpec = Field(default_factory=SparkSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    train: TrainSpec
    eval: EvalSpec = Field(default_factory=EvalSpec)
    ablations: list[Ablation] = Field(default_factory=list)
    bundle: BundleSpec = Field(default_factory=BundleSpec)
    control: ControlSpec | None = Field(None, description="the positive control (glossary-injected pairs)")
    n_boot: int = 2000
    threads: int | None = Field(None, description="torch/OpenMP threads of the model steps (1 on a shared box)")

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        if "pivot" not in self.selection.arms or len(self.selection.arms) < 2:
            raise ValueError("selection.arms needs `pivot` and at least one baseline arm")
        if self.control is not None and self.control.arm not in self.selection.arms:
            raise ValueError(f"control.arm {self.control.arm!r} is not among selection.arms")
        names = [a.name for a in self.ablations]
        if len(set(names)) != len(names) or MAIN in names:
            raise ValueError(f"ablation names must be distinct and not {MAIN!r}: {names}")
        for a in self.ablations:
            bad = [o for o in a.overrides if not o.split("=", 1)[0].startswith(("pivots.", "cooccur."))]
            if bad:
                raise ValueError(f"ablation {a.name}: only pivots.* and cooccur.* overrides, not {bad}")
        return self


def load_recipe(path: str | Path, *, lake: str | None = None, workdir: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """The recipe in a YAML file with ``section.key=value`` overrides; ``lake`` and ``workdir`` replace the
    recipe's ``spark.lake`` and ``workdir``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"recipe {p} not found (see experiments/)")
    try:
        data = apply_overrides(read_settings_file(p), overrides, Recipe)
        if lake:
            data.setdefault("spark", {})["lake"] = lake
        if workdir:
            data["workdir"] = workdir
        return validate(Recipe, data)
    except SettingsError as e:  # names the bad key
        raise ConfigError(f"recipe {p}: {e}") from e
