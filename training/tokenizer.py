"""The selection's SentencePiece model as a transformers tokenizer, saved beside the trained model."""

from __future__ import annotations

import os
from typing import Any


def hf_tokenizer_for(sp_model: str | os.PathLike[str]) -> Any:
    """A transformers tokenizer reproducing the SentencePiece (BPE) ids: ``pivot_spark.steps.tokenize``'s."""
    from pivot_spark.steps.tokenize import hf_tokenizer

    return hf_tokenizer(str(sp_model))
