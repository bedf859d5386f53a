"""Llama-family causal LMs built from a named preset (:mod:`training.presets`; never downloaded), and their FLOP
count for MFU."""

from __future__ import annotations

from dataclasses import asdict

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from training.presets import PRESETS


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
