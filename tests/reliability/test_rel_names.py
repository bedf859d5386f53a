"""Run ids and labels cannot leave the lake or rewrite other rows: checked names, quoted predicates."""

from __future__ import annotations

import pytest

from pivot_spark.cli import main
from pivot_spark.config import ConfigError, load_config
from pivot_spark.lake import Lake
from pivot_spark.names import check_name, equals_predicate, name_problem, sql_string
from pivot_spark.pipeline.runner import run_job
from tests.support.reliability import pivot_rows

INJECTION = "x' OR '1'='1"


@pytest.mark.parametrize("key", ["run.run_id", "run.snapshot", "ingest.snapshot", "pivots.pivot_set",
                                 "score.pivot_set", "select.selection"])
@pytest.mark.parametrize("value", [INJECTION, "../../x", "a/b", ".hidden", "a..b", "", "x" * 129, "a b", "é"])
def test_every_run_id_and_label_is_checked_when_the_config_loads(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config("smoke", [f"{key}={value}" if value else f"{key}=''"])


@pytest.mark.parametrize("value", ["nightly-2024.05.01", "ps-3f2a", "r1", "X.train-tokenizer", "a" * 128])
def test_safe_names_pass(value):
    assert name_problem(value) is None and check_name("--run-id", value) == value


def test_a_run_id_cannot_put_its_intent_file_outside_the_lake(tmp_path):
    lake = tmp_path / "deep" / "lake"
    cfg = load_config("smoke", [f"lake.uri={lake}"])
    cfg.run.run_id = "../../escaped"  # as a program that builds its config in code would
    with pytest.raises(ValueError, match="not a valid name"):
        run_job(cfg, "demo", lambda ctx: {})
    assert not list(tmp_path.rglob("escaped*"))


def test_the_command_line_refuses_a_path_as_run_id_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["repair", "--config", "smoke", "--lake", str(tmp_path / "lake"), "--run-id", "../../x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "run.run_id '../../x' is not a valid name" in err
    assert not list(tmp_path.rglob("x.json"))


def test_a_quoted_label_replaces_only_its_own_rows(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    for label in ("a", "b", "x'y"):
        lake.write_arrow("pivots", pivot_rows(label), mode="append", app_id=f"setup/{label}")
    lake.write_arrow("pivots", pivot_rows(INJECTION, 1), mode="overwrite", replace_where={"pivot_set": INJECTION},
                     app_id="attack")
    lake.write_arrow("pivots", pivot_rows("x'y", 1), mode="overwrite", replace_where={"pivot_set": "x'y"},
                     app_id="quote")
    got = sorted((r["pivot_set"], r["token_id"]) for r in lake.read_arrow("pivots").to_pylist())
    assert got == [("a", 0), ("a", 1), ("b", 0), ("b", 1), (INJECTION, 0), ("x'y", 0)]


def test_predicates_quote_values_and_refuse_odd_columns():
    assert sql_string("it's") == "'it''s'"
    assert equals_predicate({"pivot_set": INJECTION, "tokenizer": "t"}) == \
        "pivot_set = 'x'' OR ''1''=''1' AND tokenizer = 't'"
    with pytest.raises(ValueError, match="column name"):
        equals_predicate({"pivot_set = 'a' OR 1=1 --": "x"})
