"""``pivot-spark``: the command line of the Spark side.

``pivot-spark <command> [--config PRESET|FILE] [--lake URI] [--run-id ID] [key=value ...]``. Every command loads the
typed config (preset or YAML file, then overrides), runs one job and ends with a one-screen summary. Errors name the
input and what to do, and exit non-zero.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pivot_spark.config import ConfigError, PivotConfig, load_config
from pivot_spark.typed_cli import VERSION_HELP, version_callback

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build semantic-pivot-aware pre-training data with Spark and Delta Lake.")
err = Console(stderr=True)

ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="preset (smoke, local, cluster) or a YAML file")]
LakeOpt = Annotated[str | None, typer.Option("--lake", help="lake root URI (overrides lake.uri)")]
RunIdOpt = Annotated[str | None, typer.Option("--run-id", help="run id; default derived from the inputs")]
Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, section.key=value")]
UiOpt = Annotated[bool, typer.Option("--ui", help="serve the Spark UI while the job runs (spark.ui=true)")]


VersionOpt = Annotated[bool, typer.Option("--version", callback=version_callback("pivot-spark"), is_eager=True,
                                          help=VERSION_HELP)]


@app.callback()
def _program(version: VersionOpt = False) -> None:
    pass


def _cfg(config: str, lake: str | None, run_id: str | None, overrides: list[str] | None,
         extra: list[str] | None = None, *, ui: bool = False) -> PivotConfig:
    items = list(overrides or []) + list(extra or []) + (["spark.ui=true"] if ui else [])
    if lake:
        items.append(f"lake.uri={lake}")
    if run_id:
        items.append(f"run.run_id={run_id}")
    return load_config(config, items)


def _run(fn: Callable[[], Any]) -> None:
    from pivot_spark.lake.lease import LeaseHeld, LeaseLost

    try:
        fn()
    except (ConfigError, FileNotFoundError, ValueError, LeaseHeld, LeaseLost) as e:
        err.print(f"[red]error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)  # one line, as it is
        raise typer.Exit(2) from e


def _write(what: str, job: Callable[..., Any], cfg: PivotConfig, *args: Any) -> Any:
    """Run a job that writes the lake while holding the lake's writer lease, from before the job reads anything
    (some jobs decide what is new before their run starts) until it has finished."""
    from pivot_spark.pipeline.runner import job_lease

    with job_lease(cfg, what):
        return job(cfg, *args)


@app.command()
def ingest(input: Annotated[str | None, typer.Option("--input", "-i", help="file or folder to ingest")] = None,
           snapshot: Annotated[str | None, typer.Option(help="snapshot partition label")] = None,
           config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None, ui: UiOpt = False,
           overrides: Overrides = None) -> None:
    """Ingest JSON Lines (plain, .gz, .zst), Parquet or .txt files into `documents` (bad records -> `quarantine`)."""
    from pivot_spark.pipeline.ingest import ingest as job

    extra = ([f"ingest.input={input}"] if input else []) + ([f"ingest.snapshot={snapshot}"] if snapshot else [])
    _run(lambda: _write("ingest", job, _cfg(config, lake, run_id, overrides, extra, ui=ui)))


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
                    ui: UiOpt = False, overrides: Overrides = None) -> None:
    """Train the SentencePiece BPE tokenizer on a language-balanced sample of `documents`."""
    from pivot_spark.pipeline.annotate import train_tokenizer as job

    _run(lambda: _write("train-tokenizer", job, _cfg(config, lake, run_id, overrides, ui=ui)))


@app.command()
def annotate(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
             ui: UiOpt = False, overrides: Overrides = None) -> None:
    """Language ID (fastText) and tokenization (SentencePiece) of new documents -> `doc_lang`, `doc_tokens`."""
    from pivot_spark.pipeline.annotate import annotate as job

    _run(lambda: _write("annotate", job, _cfg(config, lake, run_id, overrides, ui=ui)))


@app.command()
def cooccur(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
            ui: UiOpt = False, overrides: Overrides = None) -> None:
    """Windowed token co-occurrence counts of new snapshots -> `cooccurrence`, `token_stats`."""
    from pivot_spark.pipeline.cooccur import cooccur as job

    _run(lambda: _write("cooccur", job, _cfg(config, lake, run_id, overrides, ui=ui)))


PairsOpt = Annotated[str, typer.Option("--pairs", help="JSON Lines: pair_id, lang_a, word_a, lang_b, word_b")]


@app.command("pair-cooccur")
def pair_cooccur(pairs: PairsOpt,
                 config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None, ui: UiOpt = False,
                 overrides: Overrides = None) -> None:
    """Co-occurrence of word pairs (e.g. the evaluation dictionary) -> `pair_cooccurrence`."""
    from pivot_spark.pipeline.pair_cooccur import pair_cooccur as job

    _run(lambda: _write("pair-cooccur", job, _cfg(config, lake, run_id, overrides, ui=ui), pairs))


@app.command("pair-pivots")
def pair_pivots(pairs: PairsOpt,
                config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None, ui: UiOpt = False,
                overrides: Overrides = None) -> None:
    """The semantic pivots of each word pair (tokens near both words beyond their background) -> `pair_pivots`."""
    from pivot_spark.pipeline.pair_pivots import pair_pivots as job

    _run(lambda: _write("pair-pivots", job, _cfg(config, lake, run_id, overrides, ui=ui), pairs))


@app.command()
def pivots(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           ui: UiOpt = False, overrides: Overrides = None) -> None:
    """Discover the semantic pivot set (hub tokens of the cross-lingual co-occurrence graph) -> `pivots`."""
    from pivot_spark.pipeline.pivots import pivots as job

    _run(lambda: _write("pivots", job, _cfg(config, lake, run_id, overrides, ui=ui)))


@app.command()
def score(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
          ui: UiOpt = False, overrides: Overrides = None) -> None:
    """Each document's pivot proportion for a pivot set -> `doc_pivot`."""
    from pivot_spark.pipeline.score import score as job

    _run(lambda: _write("score", job, _cfg(config, lake, run_id, overrides, ui=ui)))


@app.command()
def select(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           ui: UiOpt = False, overrides: Overrides = None) -> None:
    """A named selection with `pivot`/`random`(/`langmatch`) arms at one token budget -> `train_set`."""
    from pivot_spark.pipeline.select import select as job

    _run(lambda: _write("select", job, _cfg(config, lake, run_id, overrides, ui=ui)))


@app.command()
def audit(selection: Annotated[str, typer.Option("--selection", help="the selection whose arms to audit")],
          out: Annotated[str | None, typer.Option("--out", help="the JSON report; default "
                                                  "{lake}/_audit/{selection}.json")] = None,
          config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None, ui: UiOpt = False,
          overrides: Overrides = None) -> None:
    """What each arm holds: token share per language, code spans (zxx), evaluation words and pairs (audit.items)."""
    from pivot_spark.pipeline.audit import audit as job

    _run(lambda: _write("audit", job, _cfg(config, lake, run_id, overrides, ui=ui), selection, out))


@app.command()
def rebuild(input: Annotated[str | None, typer.Option("--input", "-i", help="corpus to ingest")] = None,
            config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None, ui: UiOpt = False,
            overrides: Overrides = None) -> None:
    """The whole chain, incremental and idempotent: ingest, annotate, cooccur, pivots, score, select."""
    from pivot_spark.pipeline.rebuild import rebuild as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides, [f"ingest.input={input}"] if input else [], ui=ui)))


@app.command()
def repair(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
           overrides: Overrides = None) -> None:
    """Remove repeated texts from `documents`: the first row per content hash stays (one commit; idempotent)."""
    from pivot_spark.pipeline.repair import repair as job

    _run(lambda: job(_cfg(config, lake, run_id, overrides)))


@app.command()
def vacuum(config: ConfigOpt = "local", lake: LakeOpt = None,
           retention_hours: Annotated[int, typer.Option(
               "--retention-hours", help="delete only files unreferenced, or removed, for longer than this")] = 168,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="list the files it would delete; delete "
                                                 "nothing")] = False,
           table: Annotated[list[str] | None, typer.Option("--table", help="vacuum this table only (repeatable); "
                                                          "default every table", show_default=False)] = None,
           keep: Annotated[list[str] | None, typer.Option("--keep", help="TABLE=VERSION whose files stay whatever "
                                                         "their age (repeatable), e.g. the train_set version a "
                                                         "training run reads", show_default=False)] = None,
           overrides: Overrides = None) -> None:
    """Delete files that no table version within the retention needs: orphans of killed jobs, removed files."""
    from pivot_spark.pipeline.vacuum import parse_keep
    from pivot_spark.pipeline.vacuum import vacuum as job

    _run(lambda: job(_cfg(config, lake, None, overrides), retention_hours=retention_hours, dry_run=dry_run,
                     tables=table, keep=parse_keep(keep or [])))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "allow_interspersed_args": False})
def submit(ctx: typer.Context,
           command: Annotated[str, typer.Argument(help="the pivot-spark command to run on the cluster")],
           master: Annotated[str | None, typer.Option("--master", help="spark://host:port, k8s://https://host, "
                                                      "yarn, local[N] (required)", show_default=False)] = None,
           deploy_mode: Annotated[str, typer.Option(help="client (the driver runs here) or cluster")] = "client",
           conf: Annotated[list[str] | None, typer.Option("--conf", help="Spark setting key=value (repeatable)",
                                                          show_default=False)] = None,
           python_from_image: Annotated[bool | None, typer.Option(
               "--python-from-image/--ship-env", help="executors use the image's Python, nothing is shipped "
               "(default for k8s:// masters) / ship this environment, packed with venv-pack (default otherwise)",
               show_default=False)] = None,
           env_archive: Annotated[Path | None, typer.Option(help="ship this environment archive (venv-pack "
                                                            "tar.gz) instead of packing this one",
                                                            show_default=False)] = None,
           python: Annotated[str | None, typer.Option(help="executors' interpreter, a path that exists on every "
                                                      "node (nothing shipped)", show_default=False)] = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="print the spark-submit command line "
                                                 "(secrets redacted) and run nothing")] = False) -> None:
    """Run a command through spark-submit: code zipped on --py-files, the environment shipped with --archives.

    After COMMAND come, in any order: the options above; the command's own options and section.key=value
    overrides (they go to the job); spark-submit options such as --executor-memory 8g, --num-executors 4,
    --packages, --files, --jars, --name, --queue, --properties-file (they go to spark-submit, before the entry
    file). Everything after a lone -- goes to the job as it is. See docs/operations.md.
    """
    from pivot_spark.submit import SubmitError, split_arguments
    from pivot_spark.submit import submit as do_submit

    def options(cmd: Any) -> dict[str, bool]:  # option name -> takes a value
        return {name: not p.is_flag for p in cmd.params if p.param_type_name == "option"
                for name in (*p.opts, *p.secondary_opts)}

    job_cmd = ctx.parent.command.get_command(ctx.parent, command) if ctx.parent else None  # type: ignore[attr-defined]
    try:
        if job_cmd is None or command == "submit":
            raise SubmitError(f"unknown command {command!r}: put the command first, `pivot-spark submit COMMAND "
                              "--master URL ...`")
        split = split_arguments(ctx.args, own={**options(ctx.command), "--help": False}, job=options(job_cmd))
        given = dict(ctx.params)
        if split.own:  # submit's options given after COMMAND: parsed as if given before it
            after = ctx.command.make_context(ctx.info_name, [*split.own, command], parent=ctx.parent)
            for name, value in after.params.items():
                if getattr(after.get_parameter_source(name), "name", "") == "COMMANDLINE":
                    given[name] = [*(given[name] or []), *value] if name == "conf" else value
        if not given["master"]:
            raise SubmitError("submit needs --master URL (spark://host:port, k8s://https://host, yarn, local[N])")
        rc = do_submit(command, split.job, master=given["master"], deploy_mode=given["deploy_mode"],
                       spark_args=split.spark, conf=given["conf"] or [], python=given["python"],
                       python_from_image=given["python_from_image"], env_archive=given["env_archive"],
                       dry_run=given["dry_run"])
    except (SubmitError, ConfigError, FileNotFoundError) as e:
        err.print(f"[red]error:[/] {e}", highlight=False)
        raise typer.Exit(2) from e
    raise typer.Exit(rc)


@app.command("show-pivots")
def show_pivots(config: ConfigOpt = "local", lake: LakeOpt = None,
                pivot_set: Annotated[str | None, typer.Option("--pivot-set", help="label; default the newest")] = None,
                top: Annotated[int, typer.Option(help="how many pivots to list")] = 50,
                markdown: Annotated[bool, typer.Option("--markdown", help="a Markdown table")] = False,
                overrides: Overrides = None) -> None:
    """The top pivots of a pivot set with their pieces, hub statistics and languages."""
    from pivot_spark.pipeline.status import print_pivots

    _run(lambda: print_pivots(_cfg(config, lake, None, overrides), pivot_set=pivot_set, top=top,
                              markdown=markdown))


@app.command()
def status(config: ConfigOpt = "local", lake: LakeOpt = None,
           runs: Annotated[int, typer.Option(help="how many recent runs to list")] = 10,
           as_json: Annotated[bool, typer.Option("--json", help="print the status as JSON")] = False,
           overrides: Overrides = None) -> None:
    """Every table with its version and row count, and the last runs (whole run ids, status, counts)."""
    from pivot_spark.pipeline.status import print_status

    _run(lambda: print_status(_cfg(config, lake, None, overrides), n_runs=runs, as_json=as_json))


config_app = typer.Typer(no_args_is_help=True, help="The effective config of the commands.")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(config: ConfigOpt = "local", lake: LakeOpt = None, run_id: RunIdOpt = None,
                overrides: Overrides = None) -> None:
    """Print the effective config (preset or file, then overrides) as YAML, secrets redacted."""
    _run(lambda: typer.echo(_cfg(config, lake, run_id, overrides).to_yaml(), nl=False))


def main(argv: list[str] | None = None, *, exit_process: bool | None = None) -> None:
    """The ``pivot-spark`` program. As a program (``argv`` None, or ``exit_process``: the console script and the
    jobs/ entry files) the process ends with the command's exit status (:func:`pivot_spark.process.finish`);
    called with ``argv`` it returns, or raises SystemExit with a non-zero status."""
    from pivot_spark.process import main_program

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def call() -> None:
        app(args=argv if argv is not None else sys.argv[1:], prog_name="pivot-spark", standalone_mode=True)

    if argv is None if exit_process is None else exit_process:
        main_program(call)
    try:
        call()
    except SystemExit as e:
        if e.code not in (0, None):
            raise


if __name__ == "__main__":
    main()
