"""The settings of each ``pivot-eval`` command, typed: the command line and the experiment build the same models.

``pivot-eval <command>`` builds one of these from its options, a ``--config`` YAML file and ``key=value``
arguments (:mod:`pivot_spark.typed_cli`); the experiment builds them directly. Imports neither torch nor
pyspark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from pivot_spark.typed_cli import split_list

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APT_CACHE = REPO_ROOT / ".cache" / "pivot-spark" / "apt"
MAIN_LANGS = ["en", "fr", "ja", "zh"]

CommaList = Annotated[list[str], BeforeValidator(split_list)]
Directions = Annotated[list[str] | None, BeforeValidator(split_list)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BuildDatasetConfig(_Settings):
    """``build-dataset``: the word translation data set from bilingual dictionaries."""

    out: Path = Field(description="output folder")
    seed: int = Field(0, description="seed of the item and distractor draws")
    langs: CommaList = Field(default_factory=lambda: [*MAIN_LANGS, "de", "es", "ru"], description="languages (en first)")
    required: CommaList = Field(default_factory=lambda: list(MAIN_LANGS), description="languages every item must have")
    max_items: int = Field(2000, description="stop after this many items")
    corpus_lake: str | None = Field(None, description="also count items whose words occur in this lake's documents")
    apt_cache: Path = Field(DEFAULT_APT_CACHE, description="private apt cache for the dictionary packages")


class ItemSetsConfig(_Settings):
    """``item-sets``: the frozen in-domain item set of a lake's corpus (evaluation.itemsets.RULE)."""

    dataset: Path = Field(description="items-v1.jsonl from build-dataset (the general set)")
    lake: str = Field(description="lake with documents and doc_lang")
    out: Path = Field(description="folder of the frozen set (indomain-items.jsonl, RULE.txt, manifest.json)")
    langs: CommaList = Field(default_factory=lambda: list(MAIN_LANGS), description="languages every item must have")
    size: int = Field(200, description="items in the set")
    min_docs: int = Field(5, description="documents of its language each word must occur in")
    seed: int = Field(0, description="seed of the distractor tie-break")
    table_versions: dict[str, int] = Field(default_factory=dict, description="table -> version to read from the "
                                                                             "lake (default: the newest)")


class PairsConfig(_Settings):
    """``pairs``: every item's word pairs, for ``pivot-spark pair-cooccur --pairs``."""

    dataset: Path = Field(description="items-v1.jsonl from build-dataset")
    out: Path = Field(description="pairs.jsonl for pivot-spark pair-cooccur --pairs")


class ClwtdConfig(_Settings):
    """``clwtd``: the translation score of one model."""

    model: Path = Field(description="local transformers causal LM directory")
    dataset: Path = Field(description="items-v1.jsonl from build-dataset")
    out: Path = Field(description="output folder")
    directions: Directions = Field(None, description="comma-separated, e.g. en->fr,fr->en; default: all among langs")
    langs: CommaList = Field(default_factory=lambda: list(MAIN_LANGS), description="languages whose directions are "
                                                                                "evaluated")
    batch_size: int = Field(32, description="sequences per forward pass")
    seed: int = Field(0, description="seed of the shot draws and bootstrap")
    dtype: str = Field("auto", description="weights: auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16; the "
                                           "output head and log-softmax always run in fp32")
    items_subset: Path | None = Field(None, description="file of item ids (one a line), e.g. corpus-items.txt: "
                                                        "also report on them")
    item_sets: dict[str, Path] = Field(default_factory=dict, description="name -> file of item ids: each set's "
                                                                         "metrics (and its non-copyable part)")
    max_items: int | None = Field(None, description="score the first N items of each direction (shots still "
                                                    "drawn from all)")


class LensConfig(_Settings):
    """``logit-lens``: per item and layer, the top token and the mass on source, target and pivot tokens."""

    model: Path = Field(description="local transformers causal LM directory")
    dataset: Path = Field(description="items-v1.jsonl from build-dataset")
    out: Path = Field(description="output folder")
    directions: Directions = Field(None, description="comma-separated, e.g. en->fr,fr->en; default: all among langs")
    langs: CommaList = Field(default_factory=lambda: list(MAIN_LANGS), description="languages whose directions are "
                                                                                "evaluated")
    batch_size: int = Field(16, description="sequences per forward pass")
    seed: int = Field(0, description="seed of the shot draws")
    dtype: str = Field("auto", description="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    lake: str | None = Field(None, description="lake (or offline bundle) with cooccurrence and token_stats for the "
                                               "pivot tokens")
    table_versions: dict[str, int] = Field(default_factory=dict, description="table -> version to read from the "
                                                                             "lake (default: the newest)")
    window: int | None = Field(None, description="co-occurrence window (default: the largest in the table)")
    top_n: int = Field(100, description="pivot candidates per word pair")
    tokenizer_hash: str | None = Field(None, description="lake tokenizer the model uses (default: hash of its "
                                                         "tokenizer.model)")
    max_items: int | None = Field(None, description="first N items of each direction (shots still drawn from all)")


class BehavioursConfig(_Settings):
    """``behaviours``: label semantic pivot vs co-occurrence behaviour; AUC of log co-occurrence frequency."""

    lens: Path = Field(description="lens.jsonl from logit-lens")
    lake: str = Field(description="lake (or offline bundle) with pair_cooccurrence")
    out: Path = Field(description="output folder")
    table_versions: dict[str, int] = Field(default_factory=dict, description="table -> version to read from the "
                                                                             "lake (default: the newest)")
    window: int | None = Field(None, description="pair_cooccurrence window (default: the largest)")
    freq: Literal["count", "doc_count"] = Field("count", description="the pair_cooccurrence frequency column")
    clwtd_items: Path | None = Field(None, description="clwtd-items.jsonl of the same model: label only the "
                                                       "records it solves (true source ranked first)")
    min_layers: int = Field(6, description="label no records of a model with fewer layers (no middle layers)")
    train_lake: str | None = Field(None, description="lake or bundle with the model's train_set: also the AUC of "
                                                     "co-occurrence in the model's own training documents")
    train_selection: str | None = Field(None, description="the model's selection (with train_lake)")
    train_arm: str | None = Field(None, description="the model's arm (with train_lake)")


class CompareConfig(_Settings):
    """``compare``: arms (several seeds each) side by side, differences with paired bootstrap CIs."""

    runs: list[list[str]] = Field(description="one arm's clwtd.json files (or folders), comma-separated; repeat "
                                              "per arm")
    names: CommaList = Field(description="arm names, comma-separated")
    out: Path = Field(description="report.md (a .json beside it)")
    reference: str | None = Field(None, description="arm the others are compared with (default: the last)")
    n_boot: int = Field(2000, description="bootstrap replicates")
    seed: int = Field(0, description="seed of the bootstrap")
    metric: Literal["acc1", "rr", "llr", "S"] = Field("acc1", description="acc1 (primary), rr (MRR), llr or S")
    items: Path | None = Field(None, description="file of item ids (one a line): compare on these only")
    exclude_copyable: bool = Field(False, description="leave out the copyable records (shared piece, cognates)")

    @field_validator("runs", mode="before")
    @classmethod
    def _split_runs(cls, v: Any) -> Any:
        return [split_list(x) for x in v] if isinstance(v, list) else v
