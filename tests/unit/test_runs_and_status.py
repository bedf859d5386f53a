"""Failed runs in `runs`, summaries (drop reasons, language mixes, warnings) and `pivot-spark status`, without
Spark: job bodies here do no Spark work, so no session starts."""

from __future__ import annotations

import io
import json
import re

import pyarrow as pa
import pytest
from rich.console import Console

from pivot_spark.cli import main
from pivot_spark.config import load_config
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import latest_tokenizer
from pivot_spark.pipeline.rebuild import rebuild
from pivot_spark.pipeline.report import count_rows, format_value, lang_shares, lang_warnings
from pivot_spark.pipeline.runner import MAX_MESSAGE_CHARS, CatalogEntry, RunContext, run_job
from pivot_spark.pipeline.status import lake_status, print_status
from pivot_spark.schemas import PIVOTS

SELECT_COUNTS = {"selection": "main", "rows": 225, "arms": {
    "pivot": {"documents": 137, "tokens": 59990, "mean_pivot_proportion": 0.2605, "lang_mix": "ja:0.81 zh:0.17 en:0.02"},
    "random": {"documents": 88, "tokens": 59988, "mean_pivot_proportion": 0.0716,
               "lang_mix": {"de": 0.36, "en": 0.34, "ru": 0.3}}}}


def _cfg(lake, *extra):
    return load_config("smoke", [f"lake.uri={lake}", *extra])


def _pivots_row() -> pa.Table:
    return pa.Table.from_pylist([{"pivot_set": "ps-1", "token_id": 5, "piece": "▁x", "score": 1.0, "degree": 3,
                                  "n_langs": 2, "rank": 1, "tokenizer": "tok"}], schema=PIVOTS)


def _table_versions(lake: Lake) -> dict[str, int | None]:
    return {t: lake.version(t) for t in lake.tables() if t != "runs"}


# ---- summaries ---------------------------------------------------------------------------------------------

def test_language_mixes_parse_from_text_and_mappings():
    assert lang_shares("ja:0.81 zh:0.17 en:0.02") == {"ja": 0.81, "zh": 0.17, "en": 0.02}
    assert list(lang_shares({"en": 0.2, "de": 0.7})) == ["de", "en"]  # largest first
    assert lang_shares(None) == {}


def test_an_arm_dominated_by_one_language_is_warned_about_above_the_threshold():
    warnings = lang_warnings("select", SELECT_COUNTS, 0.6)
    assert len(warnings) == 1
    assert "arm pivot of selection main: 81% of its tokens are ja" in warnings[0]
    assert "report.max_lang_share=0.6" in warnings[0]
    assert lang_warnings("select", SELECT_COUNTS, 0.9) == []  # the threshold is the config's
    assert len(lang_warnings("select", SELECT_COUNTS, 0.3)) == 2
    assert lang_warnings("annotate", SELECT_COUNTS, 0.1) == []


def test_summary_rows_show_reasons_languages_and_each_arm():
    rows = dict(count_rows({"dropped": {"function_word": 292, "no_strong_association": 984}, "documents": 1156,
                            "quarantine_reasons": {}, **SELECT_COUNTS}))
    assert rows["dropped"] == "no_strong_association=984, function_word=292"
    assert rows["documents"] == "1,156" and rows["quarantine_reasons"] == "none"
    assert rows["arm pivot"] == ("137 docs, 59,990 tokens, pivot proportion 0.2605; languages ja 0.81 zh 0.17 "
                                 "en 0.02")
    assert "arms" not in rows
    many = {f"l{i}": i for i in range(12)}
    assert format_value(many).endswith(", +4 more") and format_value(many).startswith("l11=11, l10=10")


def test_the_threshold_is_a_documented_setting_outside_the_run_identity(tmp_path):
    cfg = _cfg(tmp_path / "lake")
    assert cfg.report.max_lang_share == 0.6
    body = lambda ctx: {"n": 1}  # noqa: E731
    a = run_job(cfg, "probe", body, quiet=True)
    b = run_job(_cfg(tmp_path / "lake", "report.max_lang_share=0.9"), "probe", body, quiet=True)
    assert b["run_id"] == a["run_id"] and b["status"] == "already-committed"


# ---- failed runs -------------------------------------------------------------------------------------------

def test_a_failed_run_is_recorded_and_a_later_run_with_its_id_still_commits(tmp_path, capsys):
    lake_dir = tmp_path / "lake"
    cfg = _cfg(lake_dir, "run.run_id=probe-1")
    lake = Lake(str(lake_dir))
    lake.write_arrow("pivots", _pivots_row(), mode="append", app_id="setup")
    before = _table_versions(lake)

    def failing(ctx: RunContext) -> dict:
        ctx.counts["seen"] = 3
        ctx.catalog = CatalogEntry(tokenizer="tok-from-a-failed-run")
        raise RuntimeError("disk on fire " + "x" * (2 * MAX_MESSAGE_CHARS) + " because of the cause")

    for _ in range(2):  # two failed attempts: two rows, neither in the other's way
        with pytest.raises(RuntimeError, match="disk on fire"):
            run_job(cfg, "train-tokenizer", failing)
    assert "failed; recorded in runs (status failed): RuntimeError: disk on fire" in capsys.readouterr().err
    runs = lake.read_arrow("runs").to_pylist()
    assert [r["status"] for r in runs] == ["failed", "failed"]
    row = runs[0]
    assert row["run_id"] == "probe-1" and row["job"] == "train-tokenizer"
    assert row["message"].startswith("RuntimeError: disk on fire xxx") and "x ... (truncated) ... x" in row["message"]
    assert row["message"].endswith("xx because of the cause")
    assert len(row["message"]) == MAX_MESSAGE_CHARS
    assert json.loads(row["counts"])["seen"] == 3
    assert row["tokenizer"] is None and latest_tokenizer(lake) is None  # no catalog facts from a failure
    assert _table_versions(lake) == before  # only runs was written

    ok = run_job(cfg, "train-tokenizer", lambda ctx: {"done": True}, quiet=True)
    assert ok["status"] == "ok" and ok["run_id"] == "probe-1"
    again = run_job(cfg, "train-tokenizer", failing, quiet=True)  # the ok row counts: the body is not run
    assert again["status"] == "already-committed" and again["counts"]["done"] is True
    assert sorted(r["status"] for r in lake.read_arrow("runs").to_pylist()) == ["failed", "failed", "ok"]


def test_a_run_id_shared_by_two_jobs_runs_both(tmp_path):
    cfg = _cfg(tmp_path / "lake", "run.run_id=shared")
    assert run_job(cfg, "job-a", lambda ctx: {}, quiet=True)["status"] == "ok"
    assert run_job(cfg, "job-b", lambda ctx: {}, quiet=True)["status"] == "ok"


def test_a_failed_rebuild_is_recorded_prints_its_config_once_and_redacts_secrets(tmp_path, capsys):
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    cfg = _cfg(lake_dir, f"ingest.input={tmp_path / 'missing'}", "ingest.storage_options.AWS_SECRET_ACCESS_KEY=s3cr3t")
    with pytest.raises(FileNotFoundError):
        rebuild(cfg)
    out = capsys.readouterr()
    assert out.err.count("effective config:") == 1 and "[dim]" not in out.err
    assert "s3cr3t" not in out.err + out.out and "AWS_SECRET_ACCESS_KEY: '***'" in out.err
    assert "failed" in out.out and "ingest" in out.out
    (row,) = Lake(str(lake_dir)).read_arrow("runs").to_pylist()
    assert row["job"] == "rebuild" and row["status"] == "failed" and row["message"].startswith("stage ingest: ")


def test_a_single_command_prints_its_config_without_markup_tags(tmp_path, capsys):
    run_job(_cfg(tmp_path / "lake"), "probe", lambda ctx: dict(SELECT_COUNTS))
    out = capsys.readouterr()
    assert "effective config:" in out.err and "[dim]" not in out.err
    table = " ".join(re.sub(r"[│┃]", " ", out.out).split())
    assert "arm pivot" in table and "languages ja 0.81" in table


def test_select_summaries_warn_about_a_dominant_language(tmp_path, capsys):
    run_job(_cfg(tmp_path / "lake"), "select", lambda ctx: dict(SELECT_COUNTS))
    out = capsys.readouterr().out
    assert "warning:" in out and "81% of its tokens are ja" in out


# ---- status ------------------------------------------------------------------------------------------------

def _lake_with_runs(tmp_path) -> tuple[str, list[str]]:
    lake = tmp_path / "lake"
    ids = []
    for job in ("select", "annotate"):
        ids.append(run_job(_cfg(lake, f"run.run_id={job}-0123456789abcdef0123456789"), job,
                           lambda ctx: dict(SELECT_COUNTS), quiet=True)["run_id"])
    def failing(ctx: RunContext) -> dict:
        raise ValueError("no pivot set")

    with pytest.raises(ValueError):
        run_job(_cfg(lake, "run.run_id=score-feedfacefeedfacefeedface"), "score", failing, quiet=True)
    return str(lake), [*ids, "score-feedfacefeedfacefeedface"]


def test_status_json_has_tables_and_whole_runs(tmp_path, capsys):
    lake, ids = _lake_with_runs(tmp_path)
    main(["status", "--json", "--config", "smoke", "--lake", lake])
    status = json.loads(capsys.readouterr().out)
    assert status["tables"]["runs"]["version"] == 2 and status["tables"]["runs"]["rows"] == 3
    assert status["tables"]["documents"] == {"version": None, "rows": None, "files": None,
                                             "partitioned_by": ["snapshot"]}
    runs = {r["run_id"]: r for r in status["runs"]}
    assert set(runs) == set(ids)
    assert runs[ids[2]]["status"] == "failed" and runs[ids[2]]["message"] == "ValueError: no pivot set"
    assert runs[ids[0]]["counts"]["arms"]["pivot"]["documents"] == 137
    assert status["warnings"] and "arm pivot" in status["warnings"][0]


def test_status_takes_overrides(tmp_path, capsys):
    lake, _ = _lake_with_runs(tmp_path)
    main(["status", "--json", "--config", "smoke", "--lake", lake, "report.max_lang_share=0.95"])
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_status_never_cuts_run_ids_in_80_columns(tmp_path):
    lake, ids = _lake_with_runs(tmp_path)
    con = Console(width=80, record=True, file=io.StringIO())
    print_status(_cfg(lake), console=con)
    text = con.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert all(line.endswith(("│", "┃", "┓", "┩", "┘", "┐", "┤", "┫")) for line in text.splitlines()
               if line.startswith(("│", "┃", "┏", "┡", "└", "┌")))  # no column cut off at the edge
    joined = re.sub(r"[│┃\s]", "", text)  # folded cells joined back
    for run_id in ids:
        assert run_id in joined


@pytest.mark.parametrize("make", ["missing", "file"])
def test_status_of_a_path_that_is_no_lake_exits_2_naming_it(tmp_path, capsys, make):
    path = tmp_path / "lakee"
    if make == "file":
        path.write_text("not a lake")
    with pytest.raises(SystemExit) as e:
        main(["status", "--config", "smoke", "--lake", str(path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert ("no lake at" if make == "missing" else "is a file, not a lake") in err
    with pytest.raises(FileNotFoundError):
        lake_status(_cfg(path))
