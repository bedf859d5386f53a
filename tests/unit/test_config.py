"""Typed config: presets, YAML files with a base, overrides, clear errors."""

from __future__ import annotations

import pytest

from pivot_spark.config import ConfigError, load_config, preset_names


def test_presets_load_and_extend_their_base():
    assert set(preset_names()) >= {"smoke", "local", "cluster"}
    smoke = load_config("smoke")
    assert smoke.preset == "smoke" and smoke.ingest.input == "tests/fixtures/corpus"
    assert smoke.spark.driver_memory == "2g" and smoke.cooccur.min_count == 2
    assert load_config("cluster").lake.uri.startswith("s3://")


def test_overrides_are_typed_and_validated(tmp_path):
    cfg = load_config("smoke", ["cooccur.windows=[5, 10]", "select.token_budget=1234", "lake.uri=/x"])
    assert cfg.cooccur.windows == [5, 10] and cfg.select.token_budget == 1234 and cfg.lake.uri == "/x"
    with pytest.raises(ConfigError, match="token_budget"):
        load_config("smoke", ["select.token_budget=lots"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config("smoke", ["nonsense"])
    with pytest.raises(ConfigError, match="neither a preset"):
        load_config("nope")
    f = tmp_path / "mine.yaml"
    f.write_text("base: smoke\npivots:\n  top_k: 7\n")
    mine = load_config(str(f))
    assert mine.preset == "mine" and mine.pivots.top_k == 7 and mine.lake.uri == "lake-smoke"
    f.write_text("pivots:\n  no_such_key: 1\n")
    with pytest.raises(ConfigError, match="no_such_key"):
        load_config(str(f))


def test_effective_config_round_trips():
    cfg = load_config("smoke")
    assert load_config("smoke").to_json() == cfg.to_json()
    assert "cooccur:" in cfg.to_yaml()
