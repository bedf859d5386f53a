"""The trainer's settings: one typed model for ``pivot-train``'s options and the experiment recipe's ``train``.

:class:`TrainSettings` is how to train (model size, optimisation, stream, checkpoints) with every default of the
trainer; :class:`TrainConfig` adds what one run trains on and where it writes. ``pivot-train`` builds a
:class:`TrainConfig` from its options, a ``--config`` YAML file and ``key=value`` arguments; an experiment recipe's
``train`` section is a :class:`TrainSettings` (plus its seeds) from which the experiment builds one
:class:`TrainConfig` per model. Imports neither torch nor pyspark.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from training.presets import PRESETS

EvalShard = int | Literal["last"] | None
EvalSet = Literal["arm", "common"]

# `pivot-train --help` panels
HELP_GROUPS = {
    "data": ("lake", "selection", "arm", "table_version", "eval_shard", "eval_set", "tokenizer", "seq_len",
             "num_workers", "shuffle_block", "resident", "inject", "inject_repeats", "trace_data"),
    "model and optimisation": ("preset", "batch_size", "grad_accum", "max_steps", "max_tokens", "lr",
                               "min_lr_ratio", "warmup", "weight_decay", "grad_clip", "seed", "compile", "device"),
    "output": ("out", "resume", "overwrite", "stop_at", "save_every", "keep", "eval_every", "eval_batches",
               "log_every", "tensorboard"),
}


class TrainSettings(BaseModel):
    """How to train; the defaults of ``pivot-train`` and of a recipe's ``train`` section."""

    model_config = ConfigDict(extra="forbid")

    preset: str = Field("small", description=f"model size: {', '.join(PRESETS)}")
    seq_len: int = Field(1024, description="tokens per training sequence")
    batch_size: int = Field(8, description="sequences per micro-batch per rank")
    grad_accum: int = Field(1, description="micro-batches per optimizer step")
    max_steps: int | None = Field(None, description="run length in optimizer steps (or max_tokens)")
    max_tokens: int | None = Field(None, description="run length in tokens over all ranks (or max_steps)")
    lr: float = Field(6e-4, description="peak learning rate")
    min_lr_ratio: float = Field(0.1, description="cosine floor as a share of lr")
    warmup: int = Field(100, description="warmup steps")
    weight_decay: float = Field(0.1, description="AdamW decay of the matrices")
    grad_clip: float = Field(1.0, description="gradient norm clip")
    compile: bool = Field(False, description="torch.compile the decoder layers and the loss (CUDA)")
    device: str = Field("auto", description="auto, cpu, cuda")
    eval_shard: EvalShard = Field("last", description="held-out shard: a number, last (the highest) or none "
                                                      "(no eval, train on all)")
    eval_set: EvalSet = Field("arm", description="eval loss on the arm's own held-out shard (arm) or on the "
                                                 "selection's common held-out set, the same for every arm (common)")
    resident: bool = Field(False, description="read the arm's token stream once and keep it on the device "
                                              "(no DataLoader)")
    inject: str | None = Field(None, description="JSON Lines file of {text} documents mixed into the resident "
                                                 "stream (the positive control's glossary)")
    inject_repeats: int = Field(1, description="copies of each injected document per epoch of the stream")
    num_workers: int = Field(2, description="DataLoader workers per rank")
    shuffle_block: int = Field(512, description="rows shuffled together")
    save_every: int = Field(1000, description="checkpoint every N steps (0: only at the end)")
    keep: int = Field(2, description="checkpoints kept")
    eval_every: int = Field(200, description="eval loss every N steps (0: only at the end)")
    eval_batches: int = Field(8, description="batches of the held-out shard per evaluation")
    log_every: int = Field(10, description="metrics line every N steps")
    tensorboard: bool = Field(True, description="also log the metrics for TensorBoard, in out/tensorboard")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str) -> str:
        if v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; choose one of {', '.join(PRESETS)}")
        return v

    @field_validator("eval_shard", mode="before")
    @classmethod
    def _shard(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.lower() in ("none", "null"):
                return None
            if v.strip().lstrip("-").isdigit():
                return int(v)
        return v

    @model_validator(mode="after")
    def _length(self) -> TrainSettings:
        if (self.max_steps is None) == (self.max_tokens is None):
            raise ValueError("give exactly one of max_steps and max_tokens")
        if self.inject and not self.resident:
            raise ValueError("inject needs resident: true (documents are mixed into the resident stream)")
        if self.eval_set == "common" and self.eval_shard is None:
            raise ValueError("eval_set common needs a held-out shard (eval_shard last or a number)")
        return self


class TrainConfig(TrainSettings):
    """One training run: :class:`TrainSettings` plus the selection it reads and the folder it writes."""

    lake: str = Field(description="lake root URI holding train_set, or an offline bundle")
    selection: str = Field(description="selection name in train_set")
    arm: str = Field(description="pivot, random, ...")
    out: str = Field(description="run folder")
    table_version: int | None = Field(None, description="train_set version to pin (default: the newest)")
    tokenizer: str | None = Field(None, description="SentencePiece model (default: the one the rows name)")
    seed: int = Field(1234, description="model init, data order and shuffle")
    resume: bool = Field(False, description="continue from the newest checkpoint in out")
    overwrite: bool = Field(False, description="start afresh in an out folder that holds an earlier run: its "
                                               "checkpoints, final model, metrics and logs are deleted first")
    stop_at: int | None = Field(None, description="checkpoint and exit after this step (time-limited jobs: "
                                                  "rerun with resume)")
    trace_data: str | None = Field(None, description="debug: folder where readers log the units and doc ids read")

    @model_validator(mode="after")
    def _resume_or_overwrite(self) -> TrainConfig:
        if self.resume and self.overwrite:
            raise ValueError("resume continues the run in out and overwrite deletes it: give one of them")
        return self
