"""The logit lens on CJK targets: the bare word-start piece is context, not the answer, and it is no shared token."""

from __future__ import annotations

import pytest

from evaluation.behaviours import label
from evaluation.dataset import Item
from evaluation.logit_lens import WORD_START, lens_requests

JA = ["犬", "水", "猫", "山", "川", "空", "花", "木"]
ZH = ["狗", "水", "猫", "山", "河", "天", "花", "树"]
EN = ["dog", "water", "cat", "mountain", "river", "sky", "flower", "tree"]


@pytest.fixture(scope="module")
def cjk_tok(tmp_path_factory):
    """A SentencePiece BPE trained the way the lake's is: on running text, Japanese and Chinese without spaces,
    so a CJK word after a space is ``▁`` + its pieces."""
    import sentencepiece as spm

    from pivot_spark.steps.tokenize import hf_tokenizer

    d = tmp_path_factory.mktemp("sp-cjk")
    lines = ["Please translate words from English to Japanese. English: Japanese: Chinese:"] * 20
    # CJK words never after a space or at a line start: "▁" + a CJK character never becomes a piece
    lines += ["dog。" + "".join(JA) + "です。" + "".join(ZH) + "的。", "the dog and the cat drink water"] * 30
    (d / "text.txt").write_text("\n".join(lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "sp"), vocab_size=400,
                                   model_type="bpe", byte_fallback=True, character_coverage=1.0, num_threads=1,
                                   minloglevel=2)
    return hf_tokenizer(d / "sp.model")


def _items() -> list[Item]:
    distractors = {"en": ["stone", "fire"], "ja": ["石", "火"], "zh": ["石", "火"]}
    return [Item(f"{EN[k]}.n", k + 1, "n", {"en": EN[k], "ja": JA[k], "zh": ZH[k]}, {}, {}, distractors)
            for k in range(len(EN))]


def test_cjk_answer_is_read_after_the_bare_word_start_piece(cjk_tok):
    tok = cjk_tok
    assert tok.convert_ids_to_tokens(tok("Japanese: 犬")["input_ids"])[-2:] == [WORD_START, "犬"]
    reqs = {(r.item, r.direction): r for r in lens_requests(tok, _items(), [("zh", "ja"), ("en", "ja")], seed=0,
                                                             pivots=None)}
    bare = tok.convert_tokens_to_ids(WORD_START)
    r = reqs[("dog.n", "zh->ja")]
    # the prompt ends "Japanese:" then the answer " 犬" = "▁", "犬": the lens reads the position of "▁"
    assert tok.convert_ids_to_tokens([r.ids[r.position], r.ids[r.position + 1]]) == [WORD_START, "犬"]
    assert bare not in r.target_ids and bare not in r.source_ids
    assert r.target_ids == {tok.convert_tokens_to_ids("犬")} and r.source_ids == {tok.convert_tokens_to_ids("狗")}
    # an English source: the answer position is the same piece "▁" in front of the Japanese word
    e = reqs[("dog.n", "en->ja")]
    assert e.ids[e.position] == bare and e.target_ids == r.target_ids


def test_shared_token_exclusion_only_for_real_shared_pieces(cjk_tok):
    reqs = {(r.item, r.direction): r for r in lens_requests(cjk_tok, _items(), [("zh", "ja")], seed=0, pivots=None)}
    layers = [{"layer": 1, "top1_id": 5, "top1_prob": 0.2, "top1_token": "x"}]

    def rec(key: tuple[str, str]) -> dict:
        r = reqs[key]
        return {"id": r.item, "direction": r.direction, "source_ids": sorted(r.source_ids),
                "target_ids": sorted(r.target_ids), "layers": layers}

    assert label(rec(("dog.n", "zh->ja"))) != "excluded"  # 狗 / 犬: only the bare "▁" was common
    assert label(rec(("water.n", "zh->ja"))) == "excluded"  # 水 / 水: a real shared piece
    assert label(rec(("dog.n", "zh->ja")), solved=set()) == "unsolved"
