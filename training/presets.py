"""Llama-family model sizes by name (pure data: the config validates names without importing torch).

Sizes follow the usual small-model ladder; the parameter counts below are for a 32k vocabulary with untied
embeddings (the vocabulary always comes from the selection's SentencePiece model).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    "20m": Preset(hidden=384, layers=8, heads=6, kv_heads=6, intermediate=1024, tie_embeddings=True),  # 20M at 16k
    "small": Preset(hidden=512, layers=8, heads=8, kv_heads=8, intermediate=1376),  # ~25M non-embedding
    "125m": Preset(hidden=768, layers=12, heads=12, kv_heads=12, intermediate=2048),  # 134M at 32k vocab
    "350m": Preset(hidden=1024, layers=24, heads=16, kv_heads=16, intermediate=2816),  # 374M at 32k vocab
    "1b": Preset(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632),  # TinyLlama shape, 1.1B
}
