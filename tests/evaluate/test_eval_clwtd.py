"""The CLWTD score: the formula by hand, against an independent token-by-token computation, and at chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation import clwtd as C
from evaluation.model_io import encode_pair, load_model

MAIN = ("en", "fr", "ja", "zh")


def test_score_from_losses_by_hand():
    # correct source: losses over 5 draws average to 1.0; distractors to 2.0, 3.0 and 4.0 (9 rows, 3 distinct)
    correct = [0.5, 1.5, 1.0, 0.8, 1.2]
    rows = [correct] + [[2.0] * 5] * 3 + [[1.0, 5.0, 3.0, 3.0, 3.0]] * 3 + [[4.0] * 5] * 3
    s, pc, pd = C.score_from_losses(np.array(rows))
    assert pc == pytest.approx(math.exp(-1.0))
    assert pd.tolist() == pytest.approx([math.exp(-2.0)] * 3 + [math.exp(-3.0)] * 3 + [math.exp(-4.0)] * 3)
    assert s == pytest.approx(math.exp(-1.0) - (math.exp(-2.0) + math.exp(-3.0) + math.exp(-4.0)) / 3)
    # averaging at the loss level is not averaging probabilities
    assert pc != pytest.approx(np.mean(np.exp(-np.array(correct))))


def test_prompt_format():
    p = C.build_prompt("en", "fr", [("dog", "chien"), ("cat", "chat")], "house")
    assert p == ("Please translate words from English to French.\n\nEnglish: dog\nFrench: chien\n\n"
                 "English: cat\nFrench: chat\n\nEnglish: house\nFrench:")


@pytest.fixture(scope="module")
def model_and_tok(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def test_continuation_tokens_keep_the_leading_space(model_and_tok):
    _, tok, _ = model_and_tok
    e = encode_pair(tok, "English: dog\nFrench:", " chien")
    cont = tok.convert_ids_to_tokens(list(e.ids[e.start:]))
    assert cont[0].startswith("\u2581") and "".join(cont).replace("\u2581", " ") == " chien"
    assert list(e.ids[:e.start]) == list(tok("English: dog\nFrench:")["input_ids"]) and not e.merged


def _independent_score(model, tok, prompts_by_source, target):
    """Plain torch, one sequence at a time, one next-token step at a time."""
    import torch

    p_by_source = []
    for prompts in prompts_by_source:
        losses = []
        for prompt in prompts:
            full = tok(prompt + " " + target)["input_ids"]
            head = tok(prompt)["input_ids"]
            assert full[:len(head)] == head
            nll = []
            for i in range(len(head), len(full)):
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([full[:i]])).logits[0, -1].double()
                nll.append(-(logits.log_softmax(-1)[full[i]]).item())
            losses.append(sum(nll) / len(nll))
        p_by_source.append(math.exp(-sum(losses) / len(losses)))
    return p_by_source[0] - sum(p_by_source[1:]) / len(p_by_source[1:]), p_by_source, len(full) - len(head)


def test_batched_score_equals_token_by_token_computation(model_and_tok, sample_items):
    model, tok, device = model_and_tok
    items = sample_items[:12]
    src, tgt = "en", "zh"
    scores = C.score_direction(model, tok, items, src, tgt, seed=5, batch_size=7, device=device)
    multi = [k for k, s in enumerate(scores) if s.n_target_tokens >= 2]
    assert multi, "need an item whose target is several tokens"
    for k in multi[:1]:
        it = items[k]
        names = {"en": "English", "zh": "Chinese"}
        prompts_by_source = []
        for x in [it.words[src], *it.distractors[src]]:
            prompts = []
            for shot_ids in C.draw_shots(items, k, src, tgt, seed=5):
                blocks = "".join(f"English: {items[s].words['en']}\nChinese: {items[s].words['zh']}\n\n"
                                 for s in shot_ids)
                prompts.append(f"Please translate words from {names[src]} to {names[tgt]}.\n\n{blocks}"
                               f"English: {x}\nChinese:")
            assert len(prompts) == 5
            prompts_by_source.append(prompts)
        assert len(prompts_by_source) == 10
        s, ps, n_tokens = _independent_score(model, tok, prompts_by_source, it.words[tgt])
        assert scores[k].n_target_tokens == n_tokens
        assert scores[k].p_correct == pytest.approx(ps[0], rel=1e-4)
        assert list(scores[k].p_distractors) == pytest.approx(ps[1:], rel=1e-4)
        assert scores[k].score == pytest.approx(s, rel=1e-3, abs=1e-9)


def test_shot_draws_are_seeded_and_exclude_the_item(sample_items):
    a = C.draw_shots(sample_items, 3, "en", "fr", seed=1)
    assert a == C.draw_shots(sample_items, 3, "en", "fr", seed=1)
    assert a != C.draw_shots(sample_items, 3, "en", "fr", seed=2)
    assert len(a) == 5 and all(len(d) == 5 and 3 not in d and len(set(d)) == 5 for d in a)
    banned = {sample_items[3].words["en"], *sample_items[3].distractors["en"]}
    assert all(sample_items[s].words["en"] not in banned for d in a for s in d)


def test_random_model_scores_near_zero(model_and_tok, sample_items):
    model, tok, device = model_and_tok
    scores = []
    for src in MAIN:
        for tgt in MAIN:
            if src != tgt:
                scores += C.score_direction(model, tok, sample_items, src, tgt, seed=0, batch_size=64,
                                            device=device, max_items=6)
    summary = C.summarize(scores, list(MAIN))
    assert len(summary["directions"]) == 12
    assert all(v["n"] == 6 for v in summary["directions"].values())
    assert abs(summary["mean"]) < 0.02
    assert all(abs(v["mean"]) < 0.02 for v in summary["directions"].values())
    lo, hi = summary["mean_ci95"]
    assert lo <= summary["mean"] <= hi


def test_bootstrap_ci_covers_the_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.1, 400)
    lo, hi = C.bootstrap_ci(x)
    assert lo < 0.3 < hi and hi - lo < 0.05
