"""The selection's SentencePiece model as a transformers tokenizer, saved beside the trained model."""

from __future__ import annotations

import os
from typing import Any


def hf_tokenizer_for(sp_model: str | os.PathLike[str], *, bos: bool) -> Any:
    """A transformers tokenizer reproducing the SentencePiece (BPE) ids (``pivot_spark.steps.tokenize``'s), with
    BOS in front of every text when ``bos``: a document then encodes to the ids the training stream packs for
    it, less the EOS that closes it there (:mod:`training.data`)."""
    from pivot_spark.steps.tokenize import hf_tokenizer

    return hf_tokenizer(str(sp_model), add_bos_token=bos)
