"""``pivot-spark``: the command line of the Spark side.

``pivot-spark <command> [--config PRESET|FILE] [--lake URI] [--run-id ID] [key=value ...]``. Every command loads the
typed config (preset or YAML file, then overrides), runs one job and ends with a one-screen summary. Errors name the
input and what to do, and exit non-zero.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console

from pivot_spark.config import ConfigError, PivotConfig, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build semantic-pivot-aware pre-training data with Spark and Delta Lake.")
err = Console(stderr=True)

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="preset (smoke, local, cluster) or a YAML file")]
LakeOpt = Annotated[str | None, typer.Option("--lake", help="lake root URI (overrides lake.uri)")]
RunIdOpt = Annotated[str | None, typer.Option("--run-id", help="run id; default derived from the inputs")]
Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, section.key=value")]


def _cfg(config: str, lake: str | None, run_id: str | None, overrides: list[str] | None,
         extra: list[str] | None = None) -> PivotConfig:
    items = list(overrides or []) + list(extra or [])
    if lake:
        items.append(f"lake.uri={lake}")
    if run_id:
        items.append(f"run.run_id={run_id}")
    return load_config(config, items)


def _run(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except (ConfigError, FileNotFoundError, ValueError) as e:
        err.print(f"[red]error:[/] {e}")
        raise typer.Exit(2) from e


@app.command()
def ingest(input: Annotated[str | None, typer.Option("--input", "-i", help="file or folder to ingest")] = None,
           snapshot: Annotated[str | None, typer.Option(help="snapshot partition label")] = None,
           config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           overrides: Overrides = None) -> None:
    """Ingest JSON Lines (plain, .gz, .zst), Parquet or .txt files into `documents` (bad records -> `quarantine`)."""
    from pivot_spark.pipeline.ingest import ingest as job

    extra = ([f"ingest.input={input}"] if input else []) + ([f"ingest.snapshot={snapshot}"] if snapshot else [])
    _run(lambda: job(_cfg(config, lake, run_id, overrides, extra)))


@app.command()
def corpus(config: ConfigOpt = "local", out: Annotated[str | None, typer.Option(help="output folder")] = None,
           overrides: Overrides = None) -> None:
    """Assemble the translated-Debian-documentation corpus as JSON Lines shards (cached downloads)."""
    from pivot_spark.corpus.build import build_corpus, summary_lines

    def go() -> None:
        cfg = _cfg(config, None, None, overrides, [f"corpus.out={out}"] if out else [])
        manifest = build_corpus(cfg.corpus)
        Console().print("\n".join(summary_lines(manifest)), highlight=False)

    _run(go)


@app.command("train-tokenizer")
def train_tokenizer(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
                    overrides: Overrides = None) -> None:
    """Train the SentencePiece BPE tokenizer on a language-balanced sample of `documents`."""
    from pivot_spark.pipeline.annotate import train_tokenizer as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def annotate(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
             overrides: Overrides = None) -> None:
    """Language ID (fastText) and tokenization (SentencePiece) of new documents -> `doc_lang`, `doc_tokens`."""
    from pivot_spark.pipeline.annotate import annotate as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def cooccur(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
            overrides: Overrides = None) -> None:
    """Windowed token co-occurrence counts of new snapshots -> `cooccurrence`, `token_stats`."""
    from pivot_spark.pipeline.cooccur import cooccur as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command("pair-cooccur")
def pair_cooccur(pairs: Annotated[str, typer.Option("--pairs", help="JSON Lines: pair_id, lang_a, word_a, "
                                                                    "lang_b, word_b")],
                 config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
                 overrides: Overrides = None) -> None:
    """Co-occurrence of word pairs (e.g. the evaluation dictionary) -> `pair_cooccurrence`."""
    from pivot_spark.pipeline.pair_cooccur import pair_cooccur as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides), pairs))


@app.command()
def pivots(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           overrides: Overrides = None) -> None:
    """Discover the semantic pivot set (hub tokens of the cross-lingual co-occurrence graph) -> `pivots`."""
    from pivot_spark.pipeline.pivots import pivots as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def score(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
          overrides: Overrides = None) -> None:
    """Each document's pivot proportion for a pivot set -> `doc_pivot`."""
    from pivot_spark.pipeline.score import score as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def select(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           overrides: Overrides = None) -> None:
    """A named selection with `pivot`/`random`(/`langmatch`) arms at one token budget -> `train_set`."""
    from pivot_spark.pipeline.select import select as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def rebuild(input: Annotated[str | None, typer.Option("--input", "-i", help="corpus to ingest")] = None,
            config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
            overrides: Overrides = None) -> None:
    """The whole chain, incremental and idempotent: ingest, annotate, cooccur, pivots, score, select."""
    from pivot_spark.pipeline.rebuild import rebuild as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides, [f"ingest.input={input}"] if input else [])))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def submit(ctx: typer.Context,
           command: Annotated[str, typer.Argument(help="the pivot-spark command to run on the cluster")],
           master: Annotated[str, typer.Option("--master", help="spark://host:port, k8s://..., yarn")],
           python: Annotated[str | None, typer.Option(help="executors' Python (default: this one)")] = None,
           deploy_mode: Annotated[str, typer.Option(help="client or cluster")] = "client",
           conf: Annotated[list[str] | None, typer.Option("--conf", help="extra spark conf k=v")] = None) -> None:
    """Run a command through spark-submit: code zipped on --py-files, models shipped with the job."""
    from pivot_spark.submit import submit as do_submit

    extra = dict(c.split("=", 1) for c in conf or [])
    rc = do_submit(command, list(ctx.args), master=master, python=python, deploy_mode=deploy_mode, conf=extra)
    raise typer.Exit(rc)


@app.command("show-pivots")
def show_pivots(config: ConfigOpt = "local", lake: LakeOpt = None,
                pivot_set: Annotated[str | None, typer.Option("--pivot-set", help="label; default the newest")] = None,
                top: Annotated[int, typer.Option(help="how many pivots to list")] = 50,
                markdown: Annotated[bool, typer.Option("--markdown", help="a Markdown table")] = False) -> None:
    """The top pivots of a pivot set with their pieces, hub statistics and languages."""
    from pivot_spark.pipeline.status import print_pivots

    _run(lambda: print_pivots(_cfg(config, lake, None, None), pivot_set=pivot_set, top=top, markdown=markdown))


@app.command()
def status(config: ConfigOpt = "local", lake: LakeOpt = None,
           runs: Annotated[int, typer.Option(help="how many recent runs to list")] = 10) -> None:
    """Every table with its version and row count, and the last runs."""
    from pivot_spark.pipeline.status import print_status

    _run(lambda: print_status(_cfg(config, lake, None, None), n_runs=runs))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv if argv is not None else sys.argv[1:], prog_name="pivot-spark", standalone_mode=True)
    except SystemExit as e:
        if e.code not in (0, None):
            raise


if __name__ == "__main__":
    main()
