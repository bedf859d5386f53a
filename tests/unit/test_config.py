"""Typed config: presets, YAML files with a base, overrides, clear errors."""

from __future__ import annotations

import pytest
import yaml

from pivot_spark.config import (
    ConfigError,
    PivotConfig,
    config_keys,
    load_config,
    override_target,
    preset_names,
    redacted,
)


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


def test_free_form_maps_take_dotted_keys_and_string_values():
    cfg = load_config("smoke", ["spark.conf.spark.ui.enabled=true",
                                "spark.conf.spark.sql.execution.arrow.maxRecordsPerBatch=500",
                                "spark.conf.spark.x=5e6",
                                "lake.storage_options.AWS_ALLOW_HTTP=true",
                                "lake.storage_options.AWS_ENDPOINT_URL=http://127.0.0.1:9000"])
    assert cfg.spark.conf == {"spark.ui.enabled": "true", "spark.sql.execution.arrow.maxRecordsPerBatch": "500",
                              "spark.x": "5e6"}
    assert cfg.lake.storage_options == {"AWS_ALLOW_HTTP": "true", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    # a whole map at once, and a later override of one of its entries
    cfg = load_config("smoke", ['spark.conf={"spark.a.b": 1, c: yes}', "spark.conf.spark.a.b=2"])
    assert cfg.spark.conf == {"spark.a.b": "2", "c": "yes"}
    with pytest.raises(ConfigError, match="key in spark.conf is missing"):
        load_config("smoke", ["spark.conf.=1"])


def test_values_are_yaml_typed_for_their_field():
    cfg = load_config("smoke", ["select.token_budget=5e6", "ingest.max_text_bytes=5_000_000",
                                "cooccur.windows=[10,50]", "select.heldout_shard=false", "pivots.min_assoc=1e-3",
                                "corpus.languages=[en, no, on]", "ingest.snapshot=2024-05-01", "spark.master=null",
                                "spark.driver_memory=8g", "select.selection=1e3"])
    assert cfg.select.token_budget == 5_000_000 and type(cfg.select.token_budget) is int
    assert cfg.ingest.max_text_bytes == 5_000_000 and cfg.cooccur.windows == [10, 50]
    assert cfg.select.heldout_shard is False and cfg.pivots.min_assoc == pytest.approx(0.001)
    # strings are taken as written where YAML 1.1 would read a bool, a date or a number
    assert cfg.corpus.languages == ["en", "no", "on"] and cfg.ingest.snapshot == "2024-05-01"
    assert cfg.select.selection == "1e3" and cfg.spark.master is None and cfg.spark.driver_memory == "8g"
    assert load_config("smoke", ['spark.app_name="quoted # not a comment"']).spark.app_name == \
        "quoted # not a comment"
    with pytest.raises(ConfigError, match="fractional part"):
        load_config("smoke", ["select.token_budget=5.5"])
    with pytest.raises(ConfigError, match="valid integer"):
        load_config("smoke", ["select.token_budget=[1]"])


def test_files_are_typed_the_same_way(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("base: smoke\nselect:\n  token_budget: 2.5e7\nlake:\n  storage_options:\n    AWS_ALLOW_HTTP: true\n"
                 "corpus:\n  languages: [en, no]\nspark:\n  conf:\n    spark.executor.cores: 4\n")
    cfg = load_config(str(f))
    assert cfg.select.token_budget == 25_000_000 and cfg.lake.storage_options == {"AWS_ALLOW_HTTP": "true"}
    assert cfg.corpus.languages == ["en", "no"] and cfg.spark.conf == {"spark.executor.cores": "4"}


def test_unknown_keys_are_named_with_close_matches():
    with pytest.raises(ConfigError, match=r"select has no 'budget'.*select\.token_budget"):
        load_config("smoke", ["select.budget=1"])
    with pytest.raises(ConfigError, match="annotate has no 'batch_size'"):
        load_config("smoke", ["annotate.batch_size=64"])
    with pytest.raises(ConfigError, match="cooccur.windows is a setting, not a section"):
        load_config("smoke", ["cooccur.windows.x=1"])
    assert "spark.conf" in config_keys() and "ingest.fields.uri" in config_keys()
    assert override_target("lake.storage_options.AWS_REGION").map_key == "AWS_REGION"
    assert override_target("select.token_budget").map_key is None


SECRETS = ["lake.storage_options.AWS_SECRET_ACCESS_KEY=lake-secret-1",
           "ingest.storage_options.AWS_SESSION_TOKEN=ingest-token-2",
           "spark.conf.spark.hadoop.fs.s3a.secret.key=s3a-secret-3",
           "spark.conf.spark.jdbc.url=jdbc:postgresql://user:uri-password-4@db:5432/x",
           "lake.uri=s3://AKIA:uri-secret-5@bucket/lake"]


def test_printed_and_stored_config_hide_secrets():
    cfg = load_config("smoke", [*SECRETS, "spark.conf.spark.ssl.keyStore=/etc/ks.jks",
                                "spark.conf.spark.security.credentials.hive.enabled=false"])
    assert cfg.lake.storage_options["AWS_SECRET_ACCESS_KEY"] == "lake-secret-1"  # the jobs get the values
    for text in (cfg.to_yaml(), cfg.to_json()):
        for secret in ("lake-secret-1", "ingest-token-2", "s3a-secret-3", "uri-password-4", "uri-secret-5"):
            assert secret not in text
        assert "/etc/ks.jks" in text and "s3://***@bucket/lake" in text and "hive.enabled" in text
    shown = redacted(cfg)
    assert shown["spark"]["conf"]["spark.security.credentials.hive.enabled"] == "false"
    assert shown["lake"]["storage_options"]["AWS_SECRET_ACCESS_KEY"] == "***"


def test_config_show_prints_the_effective_config_redacted(tmp_path):
    from typer.testing import CliRunner

    from pivot_spark.cli import app

    res = CliRunner().invoke(app, ["config", "show", "--config", "smoke", "--lake", str(tmp_path / "lk"),
                                   "select.token_budget=5e6", *SECRETS[:3]])
    assert res.exit_code == 0, res.output
    shown = yaml.safe_load(res.stdout)
    assert shown["select"]["token_budget"] == 5_000_000 and shown["lake"]["uri"] == str(tmp_path / "lk")
    assert shown["lake"]["storage_options"] == {"AWS_SECRET_ACCESS_KEY": "***"}
    assert "secret-" not in res.stdout and "token-2" not in res.stdout
    assert PivotConfig.model_validate({**shown, "lake": {**shown["lake"], "storage_options": {}},
                                       "spark": {**shown["spark"], "conf": {}},
                                       "ingest": {**shown["ingest"], "storage_options": {}}}) is not None
    bad = CliRunner().invoke(app, ["config", "show", "--config", "smoke", "annotate.batch_size=64"])
    assert bad.exit_code == 2 and "batch_size" in bad.output
