"""Llama-family causal LMs built from a named preset (never downloaded), and their FLOP count for MFU.

Sizes follow the usual small-model ladder; the parameter counts below are for a 32k vocabulary with untied
embeddings (the vocabulary always comes from the selection's SentencePiece model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM


@dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    tie_embeddings: bool = False


PRESETS: dict[str, Preset] = {
    "tiny": Preset(hidden=64, layers=2, heads=4, kv_heads=4, intermediate=176, tie_embeddings=True),  # CPU tests
    "small": Preset(hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1376),  # ~25M non-embedding
    "125m": Preset(hidden=768, layers=12, heads=12, kv_heads=12, intermediate=2048),  # 134M at 32k vocab
    "350m": Preset(hidden=1024, layers=24, heads=16, kv_heads=16, intermediate=2816),  # 374M at 32k vocab
    "1b": Preset(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632),  # TinyLlama shape, 1.1B
}


def llama_config(preset: str, *, vocab_size: int, seq_len: int, bos_id: int, eos_id: int,
                 pad_id: int | None = None) -> LlamaConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=p.hidden, num_hidden_layers=p.layers, num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads, intermediate_size=p.intermediate, max_position_embeddings=seq_len,
        tie_word_embeddings=p.tie_embeddings, bos_token_id=bos_id if bos_id >= 0 else None, eos_token_id=eos_id,
        pad_token_id=pad_id if pad_id is not None and pad_id >= 0 else None, initializer_range=0.02,
        use_cache=True)  # attention: transformers' default, SDPA (flash kernels on CUDA in bf16)


def build_model(preset: str, *, vocab_size: int, seq_len: int, bos_id: int, eos_id: int,
                pad_id: int | None = None) -> LlamaForCausalLM:
    cfg = llama_config(preset, vocab_size=vocab_size, seq_len=seq_len, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
    return LlamaForCausalLM(cfg)


def flops_per_token(cfg: LlamaConfig, seq_len: int) -> float:
    """Training FLOPs per token, PaLM/nanoGPT convention: ``6 N + 12 L d T``.

    ``N`` counts the matrices a token multiplies through (every parameter except the input embedding lookup, which
    is a gather; the output head counts even when tied); the second term is attention scores and values over the
    full ``T x T`` square, as that convention does.
    """
    d, layers, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    kv = d // cfg.num_attention_heads * (cfg.num_key_value_heads or cfg.num_attention_heads)
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * inter
    n = layers * per_layer + d * cfg.vocab_size
    return 6.0 * n + 12.0 * layers * d * seq_len


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(preset: str) -> dict[str, int | bool]:
    return asdict(PRESETS[preset])
