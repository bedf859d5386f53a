"""``pivot-eval``: the paper's evaluation on any local transformers causal LM.

Commands: ``build-dataset`` (the word translation data set from dictionaries), ``item-sets`` (the frozen
in-domain item set of a lake's corpus), ``pairs`` (the word pairs file
for ``pivot-spark pair-cooccur``), ``clwtd`` (the translation score), ``logit-lens``, ``behaviours`` and
``compare``. Each takes its settings (:mod:`evaluation.config`) as options, a ``--config`` YAML file and
``key=value`` arguments, writes JSON (and PNG) into its output and ends with a one-screen summary; errors name
the input and exit with status 2. Nothing is downloaded from a model hub (local files only).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console

from evaluation import jobs
from evaluation.config import (
    BehavioursConfig,
    BuildDatasetConfig,
    ClwtdConfig,
    CompareConfig,
    ItemSetsConfig,
    LensConfig,
    PairsConfig,
)
from pivot_spark.typed_cli import VERSION_HELP, add_command, version_callback

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Evaluate models on the word-level cross-lingual translation task (CLWTD).")
out_console = Console()
err = Console(stderr=True)


@app.callback()
def _program(version: Annotated[bool, typer.Option("--version", callback=version_callback("pivot-eval"),
                                                   is_eager=True, help=VERSION_HELP)] = False) -> None:
    pass
C = TypeVar("C", bound=BaseModel)


def _command(job: Callable[[C], dict[str, Any]], title: Callable[[C], str]) -> Callable[[C], None]:
    """Run ``job`` with logging on, print its summary; input errors exit 2 with the message."""

    def run(cfg: C) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        try:
            summary = job(cfg)
        except (FileNotFoundError, ValueError, KeyError) as e:
            err.print(f"[red]error:[/] {e}")
            raise typer.Exit(2) from e
        out_console.rule(title(cfg))
        out_console.print_json(json.dumps(summary, ensure_ascii=False, default=str))

    return run


add_command(app, BuildDatasetConfig, _command(jobs.build_dataset, lambda c: f"data set written to {c.out}"),
            name="build-dataset", help=jobs.build_dataset.__doc__ or "")
add_command(app, ItemSetsConfig, _command(jobs.item_sets, lambda c: f"in-domain item set frozen in {c.out}"),
            name="item-sets", help=jobs.item_sets.__doc__ or "")
add_command(app, PairsConfig, _command(jobs.pairs, lambda c: f"pairs written to {c.out}"),
            name="pairs", help=jobs.pairs.__doc__ or "")
add_command(app, ClwtdConfig, _command(jobs.clwtd, lambda c: f"CLWTD written to {c.out}"),
            name="clwtd", help=jobs.clwtd.__doc__ or "")
add_command(app, LensConfig, _command(jobs.logit_lens, lambda c: f"logit lens written to {c.out}"),
            name="logit-lens", help=jobs.logit_lens.__doc__ or "")
add_command(app, BehavioursConfig, _command(jobs.behaviours, lambda c: f"behaviours written to {c.out}"),
            name="behaviours", help=jobs.behaviours.__doc__ or "")
add_command(app, CompareConfig, _command(jobs.compare, lambda c: f"comparison written to {c.out}"),
            name="compare", help=jobs.compare.__doc__ or "")


def main(argv: list[str] | None = None) -> None:
    """The ``pivot-eval`` program; as a program (no ``argv``) the process ends with the command's exit status
    (:func:`pivot_spark.process.finish`)."""
    from pivot_spark.process import main_program

    if argv is None:
        main_program(lambda: app(prog_name="pivot-eval"))
    app(args=argv, prog_name="pivot-eval")


if __name__ == "__main__":
    main()
