"""The process that runs an experiment's training and evaluation steps: ``python -m experiment.worker JOBS.json``.

The experiment writes the typed settings of the steps (a :class:`Jobs` list, serialized by pydantic) and starts
one worker process per model (and per data-set or comparison step): torch and transformers are imported once for
all the steps of a model, never in the experiment's own process (which holds the SparkSession). The worker runs
the jobs in order and stops at the first failure (exit status 1, the traceback in its output).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from evaluation.config import (
    BehavioursConfig,
    BuildDatasetConfig,
    ClwtdConfig,
    CompareConfig,
    ItemSetsConfig,
    LensConfig,
    PairsConfig,
)
from training.config import TrainConfig


class TrainJob(BaseModel):
    kind: Literal["train"] = "train"
    config: TrainConfig


class BuildDatasetJob(BaseModel):
    kind: Literal["build-dataset"] = "build-dataset"
    config: BuildDatasetConfig


class ItemSetsJob(BaseModel):
    kind: Literal["item-sets"] = "item-sets"
    config: ItemSetsConfig


class PairsJob(BaseModel):
    kind: Literal["pairs"] = "pairs"
    config: PairsConfig


class ClwtdJob(BaseModel):
    kind: Literal["clwtd"] = "clwtd"
    config: ClwtdConfig


class LensJob(BaseModel):
    kind: Literal["logit-lens"] = "logit-lens"
    config: LensConfig


class BehavioursJob(BaseModel):
    kind: Literal["behaviours"] = "behaviours"
    config: BehavioursConfig


class CompareJob(BaseModel):
    kind: Literal["compare"] = "compare"
    config: CompareConfig


Job = Annotated[TrainJob | BuildDatasetJob | ItemSetsJob | PairsJob | ClwtdJob | LensJob | BehavioursJob
                | CompareJob, Field(discriminator="kind")]


class Jobs(BaseModel):
    jobs: list[Job]


def run_job(job: Job) -> dict[str, Any]:
    """Run one job in this process; returns its summary."""
    if isinstance(job, TrainJob):
        from training.train import summary_line, train

        summary = train(job.config)
        print(summary_line(summary, job.config.out), flush=True)
        return {k: summary[k] for k in ("step", "max_steps", "tokens", "loss", "eval_loss")}
    from evaluation import jobs

    if isinstance(job, BuildDatasetJob):
        return jobs.build_dataset(job.config)
    if isinstance(job, ItemSetsJob):
        return jobs.item_sets(job.config)
    if isinstance(job, PairsJob):
        return jobs.pairs(job.config)
    if isinstance(job, ClwtdJob):
        return jobs.clwtd(job.config)
    if isinstance(job, LensJob):
        return jobs.logit_lens(job.config)
    if isinstance(job, BehavioursJob):
        return jobs.behaviours(job.config)
    return jobs.compare(job.config)


def main(argv: list[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m experiment.worker JOBS.json", file=sys.stderr)
        return 2
    todo = Jobs.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
    for job in todo.jobs:
        print(f"\n$ {job.kind} {job.config.model_dump_json()}", flush=True)
        t0 = time.perf_counter()
        summary = run_job(job)
        print(f"# {job.kind} done after {time.perf_counter() - t0:.1f} s: "
              f"{json.dumps(summary, ensure_ascii=False, default=str)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
