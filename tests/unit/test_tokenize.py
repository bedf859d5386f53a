"""SentencePiece BPE training and encoding, and transformers' LlamaTokenizer reproducing its ids."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from pivot_spark.config import REPO_ROOT, TokenizerConfig
from pivot_spark.corpus.udhr import udhr_labelled
from pivot_spark.steps.langid import Span
from pivot_spark.steps.tokenize import (
    content_mask,
    encode_with_langs,
    get_sp,
    hf_tokenizer,
    token_langs_at,
    train_sentencepiece,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# UDHR article 1 in six languages (real text, kept inline so that the offline tests need no download).
ARTICLE_1 = {
    "en": "All human beings are born free and equal in dignity and rights. They are endowed with reason and "
          "conscience and should act towards one another in a spirit of brotherhood.",
    "fr": "Tous les êtres humains naissent libres et égaux en dignité et en droits. Ils sont doués de raison et "
          "de conscience et doivent agir les uns envers les autres dans un esprit de fraternité.",
    "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren. Sie sind mit Vernunft und Gewissen "
          "begabt und sollen einander im Geist der Brüderlichkeit begegnen.",
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены разумом и "
          "совестью и должны поступать в отношении друг друга в духе братства.",
    "zh": "人人生而自由，在尊严和权利上一律平等。他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "ja": "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。人間は、理性と良心と"
          "を授けられており、互いに同胞の精神をもって行動しなければならない。",
}
MAN_PAGE = ("NOM\n       ls - Afficher le contenu de répertoires\n\nDESCRIPTION\n       Afficher les "
            "informations des FICHIERs (du répertoire courant par défaut).\n\n       The following command lists "
            "all files in long format:\n\n              ls -lat /usr/share/doc   2>&1 | head -n 20\n")
# What byte fallback, whitespace handling and special-token look-alikes must survive.
EDGE_CASES = [
    "", " ", "\n", "  two  spaces   and\ttabs\t\there  ", "\n\nstarts with newlines", " leading space",
    "trailing spaces   ", "line\r\nwindows\x00nul\x07bell\x1b[0m", "digits 1234567890 3.14159 2024-11-26",
    "emoji 😀🎉👍🏽 and 𝕏 𓂀", "中文测试，２０２４年１０月３日。繁體中文測試", "日本語のテキスト：東京都　全角スペース",
    "ﬁ ligature, e\u0301 combining, \u00a0nbsp, \u200bzwsp, \ufeffbom", "a <s> b </s> c <unk> <0x41> <pad>",
    "\u2028line sep\u2029para sep\x85nel", "x" * 3000, "▁ literal lower one eighth block ▁▁",
]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [*ARTICLE_1.values(), MAN_PAGE] * 3
    return train_sentencepiece(texts, tmp_path_factory.mktemp("tok") / "small", TokenizerConfig(vocab_size=600))


@pytest.fixture(scope="module")
def udhr_texts() -> list[str]:
    langs = ["en", "fr", "de", "es", "ru", "zh", "zh-hant", "ja", "ko", "ar", "hi", "th", "el", "pl", "vi"]
    return [text for _, text in udhr_labelled(REPO_ROOT / ".cache", langs)]


@pytest.fixture(scope="module")
def udhr_model(udhr_texts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_sentencepiece(udhr_texts, tmp_path_factory.mktemp("tok") / "udhr", TokenizerConfig(vocab_size=4000))


def _assert_llama_matches(model: Path, texts: list[str]) -> None:
    sp, tok = get_sp(model), hf_tokenizer(model)
    for text in texts:
        ids = sp.encode(text)
        assert tok.encode(text, add_special_tokens=False) == ids, text[:80]
        assert tok(text)["input_ids"] == ids, text[:80]  # no BOS/EOS added by default either


@pytest.mark.network
def test_llama_tokenizer_reproduces_ids_on_udhr(udhr_model: Path, udhr_texts: list[str]) -> None:
    """Acceptance: transformers' LlamaTokenizer gives SentencePiece's ids (15 languages + edge cases)."""
    _assert_llama_matches(udhr_model, udhr_texts + EDGE_CASES + [MAN_PAGE])
    sp = get_sp(udhr_model)
    byte_pieces = [p for t in EDGE_CASES for p in sp.encode(t, out_type=str) if p.startswith("<0x")]
    assert "<0x0A>" in byte_pieces and len(byte_pieces) > 20  # byte fallback really was exercised


def test_llama_tokenizer_reproduces_ids_offline(small_model: Path) -> None:
    _assert_llama_matches(small_model, [*ARTICLE_1.values(), MAN_PAGE, *EDGE_CASES])


def test_saved_hf_tokenizer_reloads_with_same_ids(small_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    hf_tokenizer(small_model).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    sp = get_sp(small_model)
    for text in [MAN_PAGE, *EDGE_CASES]:
        assert tok(text)["input_ids"] == sp.encode(text)


def test_training_is_deterministic_and_path_independent(tmp_path: Path) -> None:
    texts = [*ARTICLE_1.values(), MAN_PAGE]
    cfg = TokenizerConfig(vocab_size=500)
    a = train_sentencepiece(texts, tmp_path / "a" / "one", cfg)
    b = train_sentencepiece(iter(texts), tmp_path / "b" / "two", cfg)
    assert a.name == "one.model" and a.read_bytes() == b.read_bytes()
    c = train_sentencepiece(texts, tmp_path / "c", cfg.model_copy(update={"vocab_size": 520}))
    assert c.read_bytes() != a.read_bytes()


def test_model_layout(small_model: Path) -> None:
    sp = get_sp(small_model)
    assert get_sp(str(small_model)) is sp  # loaded once per process
    assert sp.get_piece_size() == 600
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"] and sp.pad_id() == -1
    assert sp.encode("2020", out_type=str) == ["2", "0", "2", "0"]  # split_digits
    assert sp.decode(sp.encode(MAN_PAGE)) == MAN_PAGE  # identity normalization, spaces kept


def test_empty_training_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no text"):
        train_sentencepiece(["", "  \n \n"], tmp_path / "x", TokenizerConfig(vocab_size=300))
    with pytest.raises(FileNotFoundError, match="train-tokenizer"):
        get_sp(tmp_path / "missing.model")


def _expected_langs(sp, ids: list[int], text: str, spans: list[Span]) -> list[str]:
    """Token languages computed independently of SentencePiece's offsets: walk the UTF-8 bytes of the pieces."""
    byte_to_char = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8")]
    out, pos = [], 0
    for i in ids:
        piece = sp.id_to_piece(i)
        n = 1 if sp.is_byte(i) else len(piece.replace("\u2581", " ").encode("utf-8"))
        char = byte_to_char[pos]
        out.append(next((s.lang for s in spans if s.start <= char < s.end), "und"))
        pos += n
    assert pos == len(text.encode("utf-8"))
    return out


def test_token_langs_follow_spans_with_byte_fallback(small_model: Path) -> None:
    sp = get_sp(small_model)
    # byte-fallback characters (emoji, hieroglyph) end the first two spans: their continuation bytes must stay
    text = "Bonjour 😀 le monde😀中文測試\n𓂀hello world, spaces   here ﬁ 42"
    cut1, cut2 = text.index("中"), text.index("hello")
    spans = [Span(0, cut1, "fr", 0.9), Span(cut1, cut2, "zh", 0.8), Span(cut2, len(text), "en", 0.7)]
    ids, langs = encode_with_langs(text, spans, sp)
    assert ids.dtype == np.int32 and ids.tolist() == sp.encode(text)
    assert 1 not in ids and 2 not in ids  # no BOS/EOS stored
    assert any(sp.is_byte(int(i)) for i in ids)
    assert langs == _expected_langs(sp, ids.tolist(), text, spans)
    assert set(langs) == {"fr", "zh", "en"}


def test_token_langs_with_unk_pieces_fall_back_to_sentencepiece_offsets(tmp_path: Path) -> None:
    """Without byte fallback, ``<unk>`` covers an unknown number of characters: offsets come from SentencePiece."""
    cfg = TokenizerConfig(vocab_size=300, byte_fallback=False)
    sp = get_sp(train_sentencepiece([ARTICLE_1["fr"], ARTICLE_1["en"]], tmp_path / "nobf", cfg))
    text = "Tous les êtres 😀😀 humains\nAll human beings 𓂀 are born free"
    cut = text.index("\n") + 1
    spans = [Span(0, cut, "fr", 1.0), Span(cut, len(text), "en", 1.0)]
    ids, langs = encode_with_langs(text, spans, sp)
    assert sp.unk_id() in ids.tolist()
    proto = sp.encode(text, out_type="proto")
    byte_to_char = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8")]
    assert langs == ["fr" if byte_to_char[p.begin] < cut else "en" for p in proto.pieces]
    assert langs[0] == "fr" and langs[-1] == "en"


def test_token_langs_single_span_and_no_span(small_model: Path) -> None:
    sp = get_sp(small_model)
    ids, langs = encode_with_langs(ARTICLE_1["fr"], [Span(0, len(ARTICLE_1["fr"]), "fr", 0.99)], sp)
    assert langs == ["fr"] * len(ids) and ids.tolist() == sp.encode(ARTICLE_1["fr"])
    ids, langs = encode_with_langs("😀", [], sp)
    assert len(ids) == 4 and langs == ["und"] * 4
    ids, langs = encode_with_langs("", [], sp)
    assert len(ids) == 0 and langs == []


def test_token_langs_at_gaps_and_edges() -> None:
    spans = [Span(2, 5, "fr", 1.0), Span(7, 9, "en", 1.0)]
    assert token_langs_at(np.array([0, 2, 4, 5, 7, 8, 9, 100]), spans) == \
        ["und", "fr", "fr", "und", "en", "en", "und", "und"]


def test_content_mask(small_model: Path) -> None:
    sp = get_sp(small_model)
    mask = content_mask(sp)
    assert mask.dtype == bool and mask.shape == (sp.get_piece_size(),)
    for i in range(sp.get_piece_size()):
        special = sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i)
        text = sp.id_to_piece(i).strip("\u2581")
        if special or all(unicodedata.category(c)[0] in "NPSZ" for c in text):  # all() is True for ""
            assert not mask[i], sp.id_to_piece(i)
    pieces = {sp.id_to_piece(i): bool(mask[i]) for i in range(sp.get_piece_size())}
    assert pieces["<0x41>"] is False and pieces["1"] is False and pieces["\u2581"] is False
    assert pieces["人"] is True and any(m for p, m in pieces.items() if p.startswith("\u2581") and p[1:].isalpha())
    assert 0.3 < mask.mean() < 0.9
