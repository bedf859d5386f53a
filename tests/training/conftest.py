"""A real train_set for the trainer tests: Debian text -> SentencePiece BPE -> token ids -> Delta (no Spark)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.support.textset import build_demo_lake

# Two busy cores: one thread per process keeps CPU training fast and its timing stable.
torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("lake")
    build_demo_lake(str(root), text_bytes=600_000, vocab_size=800, selection="demo", arms=("pivot", "random"),
                    n_shards=4, rows_per_group=16)
    return str(root)


@pytest.fixture(scope="session")
def sp_model(lake: str) -> Path:
    return next((Path(lake) / "_models" / "tokenizer").glob("*.model"))
