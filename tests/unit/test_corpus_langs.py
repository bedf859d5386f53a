"""Language code normalization across the sources' spellings."""

from __future__ import annotations

import pytest

from pivot_spark.corpus.langs import normalize_lang, pick_variant


@pytest.mark.parametrize(("raw", "norm"), [
    ("en-US", "en"), ("C", "en"), ("zh_CN", "zh"), ("zh-cn", "zh"), ("zh-Hans", "zh"), ("zh_TW", "zh-hant"),
    ("zh-Hant", "zh-hant"), ("pt-BR", "pt"), ("pt_BR", "pt"), ("de-1996", "de"), ("ja-JP", "ja"),
    ("sr@latin", "sr"), ("cmn", "zh"), ("fra", "fr"),
])
def test_normalize_lang(raw: str, norm: str) -> None:
    assert normalize_lang(raw) == norm


def test_normalize_lang_rejects_empty() -> None:
    with pytest.raises(ValueError):
        normalize_lang(" ")


def test_pick_variant_prefers_listed_spelling() -> None:
    dirs = ["C", "fr", "pt", "pt_BR", "zh_CN", "zh_TW", "sr", "sr@latin"]
    assert pick_variant(dirs, "en") == "C"
    assert pick_variant(dirs, "pt") == "pt_BR"
    assert pick_variant(dirs, "zh") == "zh_CN"
    assert pick_variant(dirs, "zh-hant") == "zh_TW"
    assert pick_variant(dirs, "sr") == "sr"
    assert pick_variant(dirs, "ja") is None
    assert pick_variant(["en-US", "fr-FR", "ja-JP"], "ja") == "ja-JP"
