"""annotate_batch: documents batch -> doc_lang + doc_tokens rows matching the schemas, bad rows counted."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pivot_spark.artifacts import file_hash
from pivot_spark.config import LangIdConfig, TokenizerConfig
from pivot_spark.schemas import DOC_LANG, DOC_TOKENS
from pivot_spark.steps.annotate import annotate_batch
from pivot_spark.steps.langid import get_lid_model, identify_batch
from pivot_spark.steps.tokenize import encode_with_langs, get_sp, train_sentencepiece

FR = ("La commande ls affiche le contenu des répertoires. Les entrées sont triées alphabétiquement si "
      "aucune option de tri n'est indiquée.")
EN = "The following command lists all files, including hidden ones, in long format and sorts them by time."
ZH = "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。"
CODE_SWITCHED = f"EXEMPLES\n       {FR}\n\n       {EN}\n\n              ls -lat /usr/share/doc\n"

GOOD = {"fr": FR, "en": EN, "zh": ZH, "mixed": CODE_SWITCHED}
BAD = {
    "empty": "", "blank": " \n\t\n ", "emoji": "😀🎉👍🏽", "control": "\x00\x01\x07\x1b[0;31\x7f",
    "huge_line": "données " * 150_000, "replacement": "\ufffd" * 10, "separators": "a\u2028b\u2029c\x85d\r\n",
}


@pytest.fixture(scope="module")
def sp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_sentencepiece([FR, EN, ZH, CODE_SWITCHED] * 3, tmp_path_factory.mktemp("tok") / "t",
                               TokenizerConfig(vocab_size=400))


def _batch(rows: dict[str, str | None], snapshot: str | None = "s1") -> pa.RecordBatch:
    return pa.record_batch({
        "doc_id": pa.array(list(rows), pa.string()),
        "text": pa.array(list(rows.values()), pa.large_string()),
        "snapshot": pa.array([snapshot] * len(rows), pa.string()),
        "source": pa.array(["test"] * len(rows), pa.string()),  # other documents columns are ignored
    })


def test_rows_match_schemas_and_models(sp_path: Path) -> None:
    cfg = LangIdConfig()
    langs, tokens, counts = annotate_batch(_batch(GOOD), lid_path=None, sp_path=sp_path, cfg=cfg)
    assert langs.schema.equals(DOC_LANG) and tokens.schema.equals(DOC_TOKENS)
    langs.validate(full=True)
    tokens.validate(full=True)
    assert langs.column("doc_id").to_pylist() == list(GOOD) == tokens.column("doc_id").to_pylist()
    assert langs.column("lang").to_pylist() == ["fr", "en", "zh", "fr"]
    model_id = get_lid_model().model_id
    assert set(langs.column("lid_model").to_pylist()) == {model_id} == set(tokens.column("lid_model").to_pylist())
    assert set(tokens.column("tokenizer").to_pylist()) == {file_hash(sp_path)}
    assert set(langs.column("snapshot").to_pylist()) == {"s1"}

    sp = get_sp(sp_path)
    docs = identify_batch(list(GOOD.values()), cfg)
    for row, text, doc in zip(tokens.to_pylist(), GOOD.values(), docs, strict=True):
        ids, token_langs = encode_with_langs(text, doc.spans, sp)
        assert row["token_ids"] == ids.tolist() == sp.encode(text)
        assert row["token_langs"] == token_langs and row["n_tokens"] == len(ids)
    mixed = tokens.to_pylist()[3]
    assert {"fr", "en"} <= set(mixed["token_langs"])
    spans = langs.to_pylist()[3]["spans"]
    assert spans[0]["start"] == 0 and spans[-1]["end"] == len(CODE_SWITCHED)

    assert counts["docs"] == counts["docs_annotated"] == 4
    assert counts["docs.lang.fr"] == 2 and counts["docs.lang.en"] == 1 and counts["docs.lang.zh"] == 1
    assert counts["tokens"] == sum(tokens.column("n_tokens").to_pylist())
    assert sum(v for k, v in counts.items() if k.startswith("tokens.lang.")) == counts["tokens"]


def test_bad_rows_are_annotated_or_counted_never_raised(sp_path: Path) -> None:
    rows: dict[str | None, str | None] = {**BAD, "null_text": None, "ok": FR}
    batch = pa.record_batch({
        "doc_id": pa.array([*rows, None], pa.string()),
        "text": pa.array([*rows.values(), FR], pa.large_string()),
        "snapshot": pa.array(["s1"] * (len(rows) + 1), pa.string()),
    })
    langs, tokens, counts = annotate_batch(batch, lid_path=None, sp_path=sp_path, cfg=LangIdConfig())
    langs.validate(full=True)
    tokens.validate(full=True)
    by_id = {r["doc_id"]: r for r in langs.to_pylist()}
    assert set(by_id) == set(rows)  # every keyed row annotated, the row without doc_id counted
    assert counts["skipped.missing_doc_id_or_snapshot"] == 1
    assert counts["docs"] == len(rows) + 1 and counts["docs_annotated"] == len(rows)
    assert counts["docs_null_text"] == 1 and counts["docs_empty"] == 3  # "", blank, null
    assert counts["docs_no_letters"] == 3  # emoji, control, replacement characters
    for key in ("empty", "blank", "null_text", "emoji", "control", "replacement"):
        assert by_id[key]["lang"] == "und", key
    assert by_id["huge_line"]["lang"] == "fr" and by_id["ok"]["lang"] == "fr"
    tok = {r["doc_id"]: r for r in tokens.to_pylist()}
    assert tok["empty"]["n_tokens"] == 0 and tok["null_text"]["token_ids"] == []
    assert tok["huge_line"]["n_tokens"] > 150_000
    assert all(r["n_tokens"] == len(r["token_ids"]) == len(r["token_langs"]) for r in tok.values())


def test_language_only_when_no_tokenizer() -> None:
    langs, tokens, counts = annotate_batch(_batch(GOOD), lid_path=None, sp_path=None, cfg=LangIdConfig())
    assert langs.num_rows == 4 and tokens.num_rows == 0 and tokens.schema.equals(DOC_TOKENS)
    assert "tokens" not in counts


def test_empty_batch(sp_path: Path) -> None:
    langs, tokens, counts = annotate_batch(_batch({}), lid_path=None, sp_path=sp_path, cfg=LangIdConfig())
    assert (langs.num_rows, tokens.num_rows) == (0, 0)
    assert langs.schema.equals(DOC_LANG) and tokens.schema.equals(DOC_TOKENS)
    assert counts == {"docs": 0}


def test_explicit_tokenizer_hash_and_paragraph_spans(sp_path: Path) -> None:
    cfg = LangIdConfig(span_unit="paragraph")
    langs, tokens, _ = annotate_batch(_batch(GOOD), lid_path=get_lid_model().path, sp_path=str(sp_path),
                                      tok_hash="abc123", cfg=cfg)
    assert set(tokens.column("tokenizer").to_pylist()) == {"abc123"}
    assert {s["lang"] for s in langs.to_pylist()[3]["spans"]} == {"fr", "en", "zxx"}  # code paragraphs: zxx
