"""``pivot-experiment``: run an experiment recipe (experiments/*.yaml) or one of its stages.

``pivot-experiment --recipe FILE [--lake URI] [--workdir DIR] [--stage STAGE] [section.key=value ...]``: the
recipe is validated (overrides applied first), the stage runs, and the run ends with a one-screen summary.
Errors name the input and what to do, and exit with status 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console

from experiment.recipe import STAGES, Stage, load_recipe
from pivot_spark.config import ConfigError
from pivot_spark.typed_cli import VERSION_HELP, version_callback

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
err = Console(stderr=True)


@app.command()
def experiment(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="experiment recipe YAML (experiments/*.yaml)")],
    lake: Annotated[str | None, typer.Option(help="lake URI, or an offline bundle for the models and report "
                                                  "stages (replaces the recipe's spark.lake)")] = None,
    workdir: Annotated[str | None, typer.Option(help="output folder (replaces the recipe's workdir)")] = None,
    stage: Annotated[str, typer.Option(help="all; data (Spark); models (train and evaluate); report; bundle "
                                            "(data, then an offline bundle at --bundle)")] = "all",
    bundle: Annotated[Path | None, typer.Option(help="--stage bundle: folder of the offline bundle "
                                                     "(docs/offline-bundle.md)")] = None,
    budget_s: Annotated[float | None, typer.Option("--budget-s", help="models stage: start no model when less "
                                                                      "time is left than the longest one "
                                                                      "took")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="recipe overrides, section.key=value "
                                                               "(e.g. train.max_steps=10)")] = None,
    version: Annotated[bool, typer.Option("--version", callback=version_callback("pivot-experiment"),
                                          is_eager=True, help=VERSION_HELP)] = False,
) -> None:
    """The reproduction: rebuild, select arms, train seeds, evaluate, compare, ablations -> results."""
    from experiment.run import run_experiment

    try:
        if stage not in STAGES:
            raise ConfigError(f"--stage must be one of {', '.join(STAGES)}, not {stage!r}")
        r = load_recipe(recipe, lake=lake, workdir=workdir, overrides=overrides or [])
        run_experiment(r, stage=cast(Stage, stage), bundle=bundle, budget_s=budget_s)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


def main(argv: list[str] | None = None) -> None:
    """The ``pivot-experiment`` program; as a program (no ``argv``) the process ends with the command's exit
    status (:func:`pivot_spark.process.finish`)."""
    from pivot_spark.process import main_program

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv is None:
        main_program(lambda: app(args=sys.argv[1:], prog_name="pivot-experiment"))
    app(args=argv, prog_name="pivot-experiment")


if __name__ == "__main__":
    main()
