"""Loading a local causal LM and scoring continuations with it.

Any transformers causal LM directory works (``AutoModelForCausalLM`` / ``AutoTokenizer``, local files only:
nothing is fetched from a hub). The continuation of a prompt is found by tokenizing the prompt and
prompt + continuation and taking the tokens after their longest common prefix: SentencePiece turns the
continuation's leading space into the ``▁`` of its first piece, so tokenizing the continuation on its own
would give different ids than the model sees in context.

A model trained by ``pivot-train`` (its folder holds ``pivot_train.json``) saw every document as ``[bos] ...
[eos]``, so its prompts are encoded with BOS in front, also where its saved tokenizer predates saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    ids: tuple[int, ...]  # prompt + continuation
    start: int  # index of the first continuation token
    merged: bool  # the prompt's last token merged with the continuation (scored from the merge point)


def load_model(model_dir: str | Path, *, device: str | None = None, dtype: str = "auto") -> tuple[Any, Any, str]:
    """(model in eval mode, tokenizer, device). ``dtype`` auto: bfloat16 on CUDA, float32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir} is not a transformers model directory (no config.json)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if (model_dir / "pivot_train.json").exists() and tok.bos_token_id is not None and not starts_with_bos(tok):
        tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, add_bos_token=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch_dtype)
    model = model.to(torch.device(device)).eval()  # type: ignore[arg-type]  # transformers' decorated .to
    return model, tok, device


def starts_with_bos(tok: Any) -> bool:
    """Whether ``tok`` puts BOS in front of a text."""
    return list(tok("a")["input_ids"][:1]) == [tok.bos_token_id]


def fp32_logits(model: Any, ids: Any, mask: Any, pos: Any, keep: int) -> Any:
    """Logits of the last ``keep`` positions with the output head in fp32, whatever the weights' dtype: the
    trunk may run in bf16, but a bf16 head rounds logits to 2-3 significant digits, which is the size of the
    differences between candidates that the metrics rank. Models without a separable head (no ``get_decoder``)
    get their own logits upcast."""
    import torch.nn.functional as F

    head = model.get_output_embeddings()
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    if decoder is None or head is None or not hasattr(head, "weight"):
        return model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits.float()
    h = decoder(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).last_hidden_state
    bias = getattr(head, "bias", None)
    return F.linear(h[:, -keep:].float(), head.weight.float(), None if bias is None else bias.float())


def encode_pair(tok: Any, prompt: str, continuation: str) -> Encoded:
    full = list(tok(prompt + continuation)["input_ids"])
    head = list(tok(prompt)["input_ids"])
    lcp = 0
    for a, b in zip(head, full, strict=False):
        if a != b:
            break
        lcp += 1
    if lcp == len(full):
        raise ValueError(f"continuation {continuation!r} adds no tokens after the prompt")
    return Encoded(tuple(full), lcp, lcp < len(head))


def continuation_nll(model: Any, encoded: Sequence[Encoded], *, batch_size: int, device: str,
                     pad_id: int = 0) -> np.ndarray:
    """Mean negative log-likelihood of each request's continuation tokens (natural log, per token).

    Requests are sorted by length and left-padded so that every row's continuation sits at the end; explicit
    position ids make padding invisible to the model, and only the last ``max continuation + 1`` positions
    are projected to the vocabulary."""
    import torch

    out = np.zeros(len(encoded), dtype=np.float64)
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
    for b0 in range(0, len(order), batch_size):
        batch = [encoded[i] for i in order[b0:b0 + batch_size]]
        width = max(len(e.ids) for e in batch)
        keep = max(len(e.ids) - e.start for e in batch) + 1
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, e in enumerate(batch):
            ids[r, width - len(e.ids):] = torch.tensor(e.ids)
            mask[r, width - len(e.ids):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        # logits[:, j] predicts the token at absolute index width - keep + j + 1: the targets are the last
        # keep - 1 tokens of each row, and only each row's own continuation counts
        targets = ids[:, width - keep + 1:]
        n = torch.tensor([len(e.ids) - e.start for e in batch])
        counted = torch.arange(keep - 1)[None, :] >= (keep - 1 - n)[:, None]
        with torch.inference_mode():
            logits = fp32_logits(model, ids.to(device), mask.to(device), pos.to(device), keep)[:, :-1]
            logp = torch.log_softmax(logits, dim=-1).gather(2, targets.to(device)[:, :, None])[:, :, 0].cpu()
        nll = -(logp * counted).sum(1) / n
        for r in range(len(batch)):
            out[order[b0 + r]] = float(nll[r])
    return out
