"""A tiny random Llama model with a real SentencePiece BPE tokenizer, and a sample of the real data set.

The tokenizer is trained in the test session on real words of the four main languages (wordfreq's lists) and
the sample items' own words, so every item tokenizes into real pieces (multi-token targets included).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE = FIXTURES / "items-sample.jsonl"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The test machine's cores are shared: several intra-op threads spin against each other (10x slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def sample_items():
    from evaluation.dataset import read_items

    return read_items(SAMPLE)


@pytest.fixture(scope="session")
def sp_model(tmp_path_factory, sample_items) -> Path:
    import sentencepiece as spm
    import wordfreq

    d = tmp_path_factory.mktemp("sp")
    lines = []
    for lang in ("en", "fr", "ja", "zh"):
        words = wordfreq.top_n_list(lang, 3000)
        lines += [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    for it in sample_items:
        lines.append(" ".join(it.words.values()))
        lines += [" ".join(ds) for ds in it.distractors.values()]
    lines += ["Please translate words from English to French.", "English: French: Japanese: Chinese:"]
    (d / "text.txt").write_text("\n".join(lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(d / "text.txt"), model_prefix=str(d / "sp"), vocab_size=3000,
                                   model_type="bpe", byte_fallback=True, character_coverage=0.98,
                                   num_threads=1, minloglevel=2)
    return d / "sp.model"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, sp_model) -> Path:
    """The trainer's ``tiny`` preset, randomly initialised (seeded), saved like pivot-train saves models."""
    import torch

    from pivot_spark.steps.tokenize import hf_tokenizer
    from training.model import build_model

    torch.manual_seed(0)
    tok = hf_tokenizer(sp_model)
    model = build_model("tiny", vocab_size=len(tok), seq_len=512, bos_id=tok.bos_token_id,
                        eos_id=tok.eos_token_id)
    d = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    shutil.copyfile(sp_model, d / "tokenizer.model")
    return d
