"""pivot-train's settings: one typed model (training.config) behind the options, a --config file, key=value
arguments and the experiment recipe's `train` section, with its defaults in one place."""

from __future__ import annotations

import pytest

from experiment.recipe import TrainSpec
from training.cli import parse_args
from training.config import TrainConfig, TrainSettings

RUN = ["--lake", "/l", "--selection", "s", "--arm", "a", "--out", "o"]


def test_file_then_key_value_then_options(tmp_path):
    f = tmp_path / "run.yaml"
    f.write_text("lake: /l\nselection: s\narm: a\nout: o\nmax_steps: 5\nlr: 0.1\nseq_len: 64\nwarmup: 7\n")
    cfg = parse_args(["--config", str(f), "lr=0.2", "seq_len=128", "--seq-len", "256", "--compile"])
    assert (cfg.max_steps, cfg.warmup, cfg.lr, cfg.seq_len, cfg.compile) == (5, 7, 0.2, 256, True)
    assert cfg.batch_size == TrainSettings.model_fields["batch_size"].default == 8  # untouched: the default


def test_options_as_the_trainer_always_took_them():
    cfg = parse_args([*RUN, "--max-tokens", "1000", "--eval-shard", "none", "--resume", "--table-version", "3"])
    assert cfg == TrainConfig(lake="/l", selection="s", arm="a", out="o", max_tokens=1000, eval_shard=None,
                              resume=True, table_version=3)
    assert parse_args([*RUN, "--max-steps", "1", "--eval-shard", "2"]).eval_shard == 2
    assert parse_args([*RUN, "--max-steps", "1"]).eval_shard == "last"


def test_key_value_items_are_typed_like_pivot_spark_overrides():
    cfg = parse_args([*RUN, "max_tokens=5e6", "lr=3e-4", "warmup=1_000"])
    assert (cfg.max_tokens, cfg.lr, cfg.warmup) == (5_000_000, 3e-4, 1000)
    assert isinstance(cfg.max_tokens, int) and isinstance(cfg.warmup, int)


@pytest.mark.parametrize(("argv", "message"), [
    (["--lake", "/l", "--max-steps", "1"], "selection: Field required"),
    ([*RUN], "exactly one of max_steps and max_tokens"),
    ([*RUN, "--max-steps", "1", "--preset", "huge"], "unknown preset 'huge'"),
    ([*RUN, "--max-steps", "1", "bogus=1"], "bogus: Extra inputs are not permitted"),
])
def test_bad_settings_exit_2_naming_the_setting(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        parse_args(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_help_lists_every_option_with_its_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for flag in ("--seq-len", "--eval-shard", "--compile", "--resume", "--config"):
        assert flag in out
    assert "[default: 1024]" in out and "[default: last]" in out


def test_the_recipe_trains_with_the_trainers_defaults():
    spec = TrainSpec(max_steps=1)
    assert spec.model_dump(exclude={"seeds"}) == TrainSettings(max_steps=1).model_dump()
    assert set(TrainSettings.model_fields) < set(TrainConfig.model_fields)
