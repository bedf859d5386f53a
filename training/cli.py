"""``pivot-train``'s command line: settings parsed, and ``--help`` answered, before torch is imported.

The trainer itself (:mod:`training.train`) imports torch, transformers and the data stream; this module imports
only the settings (:mod:`training.config`) and typer, so ``pivot-train --help`` and usage errors answer in well
under a second. ``torchrun -m training.train`` and the ``pivot-train`` script both come through :func:`main`.
"""

from __future__ import annotations

import os
import sys

import typer

from pivot_spark.typed_cli import add_command
from training.config import HELP_GROUPS, TrainConfig

HELP = ("Pretrain a Llama-family model on one selection and arm of train_set (torchrun-compatible). Settings come "
        "from the options, a --config YAML file and key=value arguments (e.g. lr=3e-4).")


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` of a ``pivot-train`` command line; usage errors exit 2, ``--help`` exits 0."""
    got: list[TrainConfig] = []
    cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    add_command(cli, TrainConfig, got.append, name="pivot-train", groups=HELP_GROUPS, help=HELP, version=True)
    try:
        cli(args=sys.argv[1:] if argv is None else argv, prog_name="pivot-train")
    except SystemExit as e:  # the command line always ends with one
        if got and e.code in (0, None):
            return got[0]
        raise
    raise RuntimeError("pivot-train: the command line ended without settings")


def main(argv: list[str] | None = None) -> int:
    """The ``pivot-train`` program: 0 when it trained, 2 with one line naming the cause and the fix for the
    errors of its input (the out folder, a table version the lake lacks, checkpoints none of which loads). As a
    program (no ``argv``: the console script, ``torchrun -m training.train``) the process ends with that status
    (:func:`pivot_spark.process.finish`)."""
    if argv is None:
        from pivot_spark.process import main_program

        main_program(lambda: _main(None))
    return _main(argv)


def _main(argv: list[str] | None) -> int:
    cfg = parse_args(argv)
    from pivot_spark.lake.reader import VersionNotFound
    from training.checkpoint import CheckpointError
    from training.train import OutDirError, summary_line, train

    try:
        summary = train(cfg)
    except (OutDirError, VersionNotFound, CheckpointError) as e:
        print(f"pivot-train: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(summary_line(summary, cfg.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
