"""Logit lens over the translation prompt (the paper's layer-wise analysis of the translation task).

For each item and direction the 5-shot prompt (the first of the item's shot draws) is run with the answer
appended. At the position that predicts the first answer token (the ``:`` ending ``{L2}:``) the residual
stream after every layer goes through the final norm and the unembedding, then a softmax. transformers
returns the last layer's hidden state already normed, so the norm is applied to layers 1..L-1 only.

Per layer: the top-1 token and its probability, and the probability mass on the source word's tokens, the
target word's tokens (both as tokenized in the prompt) and the item's semantic pivot tokens (the word pair's
pivots from the lake's ``pair_pivots`` table, or computed from its co-occurrence tables with the same rule,
:func:`pivot_spark.steps.pivots.pair_pivot_candidates`).

The bare word-start piece: SentencePiece writes a Japanese or Chinese word after a space as ``▁`` + the word's
pieces (``"Japanese: 水"`` ends ``':', '▁', '水'``). That ``▁`` carries no meaning of the word, as the paper's
space token does not, so the lens reads the position that predicts the first real piece of the answer (the
``▁``'s position, with the ``▁`` already in the context) and the word's token sets leave the bare ``▁`` out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.clwtd import build_prompt, draw_shots
from evaluation.dataset import LANG_NAMES, Item
from evaluation.lexicon import CJK_LANGS
from evaluation.model_io import encode_pair

if TYPE_CHECKING:
    from pivot_spark.lake.reader import TableReader

log = logging.getLogger(__name__)


def final_norm(model: Any) -> Any:
    """The norm applied before the unembedding, for the model families transformers names consistently."""
    for path in ("model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.decoder.final_layer_norm"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    raise ValueError(f"do not know the final norm of {type(model).__name__}: add its attribute path here")


@dataclass(frozen=True)
class LensRequest:
    item: str
    direction: str
    ids: tuple[int, ...]
    position: int  # index of the token whose output predicts the first answer token
    source_ids: frozenset[int]
    target_ids: frozenset[int]
    pivot_ids: frozenset[int] | None
    source_corpus_ids: tuple[int, ...] = ()  # the words as in running text (co-occurrence look-ups)
    target_corpus_ids: tuple[int, ...] = ()


WORD_START = "\u2581"


def bare_space_id(tok: Any) -> int | None:
    """Id of the bare word-start piece ``▁``, None when the vocabulary has none."""
    i = tok.convert_tokens_to_ids(WORD_START)
    return None if i is None or i == tok.unk_token_id else int(i)


def leading_bare(tok: Any, ids: Sequence[int]) -> int:
    """How many bare ``▁`` pieces start ``ids`` (never all of them)."""
    bare = bare_space_id(tok)
    k = 0
    while bare is not None and k < len(ids) - 1 and ids[k] == bare:
        k += 1
    return k


def word_ids_in_context(tok: Any, prefix: str, word: str) -> list[int]:
    """Token ids of ``" " + word`` as the model sees them after ``prefix``, without a bare ``▁`` piece."""
    e = encode_pair(tok, prefix, " " + word)
    ids = list(e.ids[e.start:])
    bare = bare_space_id(tok)
    real = [i for i in ids if i != bare]
    return real or ids


def corpus_form_ids(tok: Any, word: str, lang: str) -> list[int]:
    """Ids of a word as it appears in running text of its language (for co-occurrence look-ups): after a space,
    i.e. with SentencePiece's word-start marker, for space-separated languages; without it for Japanese and
    Chinese, which have no spaces (a marker the tokenizer adds by itself is removed)."""
    if lang not in CJK_LANGS:
        return word_ids_in_context(tok, "a", word)
    pieces = tok.tokenize(word)
    if pieces and pieces[0] == "\u2581":
        pieces = pieces[1:]
    elif pieces and pieces[0].startswith("\u2581") and tok.convert_tokens_to_ids(pieces[0][1:]) != tok.unk_token_id:
        pieces = [pieces[0][1:], *pieces[1:]]
    return [int(i) for i in tok.convert_tokens_to_ids(pieces)]


def lens_requests(tok: Any, items: Sequence[Item], directions: Sequence[tuple[str, str]], *, seed: int,
                  pivots: dict[tuple[str, str, str], frozenset[int]] | None, max_items: int | None = None
                  ) -> list[LensRequest]:
    """One request per item and direction (the first ``max_items`` items of each; shots from all items)."""
    out = []
    for src, tgt in directions:
        idx = [i for i, it in enumerate(items) if src in it.words and tgt in it.words and src in it.distractors]
        for i in idx[:max_items]:
            it = items[i]
            shots = [(items[s].words[src], items[s].words[tgt]) for s in draw_shots(items, i, src, tgt, seed=seed)[0]]
            prompt = build_prompt(src, tgt, shots, it.words[src])
            e = encode_pair(tok, prompt, " " + it.words[tgt])
            skip = leading_bare(tok, e.ids[e.start:])  # the answer's bare "▁" is context, not the answer
            before_x = prompt[: prompt.rindex(f"{LANG_NAMES[src]}:") + len(LANG_NAMES[src]) + 1]
            piv = None if pivots is None else pivots.get((it.id, src, tgt), frozenset())
            out.append(LensRequest(it.id, f"{src}->{tgt}", e.ids, e.start - 1 + skip,
                                   frozenset(word_ids_in_context(tok, before_x, it.words[src])),
                                   frozenset(e.ids[e.start + skip:]), piv,
                                   tuple(corpus_form_ids(tok, it.words[src], src)),
                                   tuple(corpus_form_ids(tok, it.words[tgt], tgt))))
    return out


def run_lens(model: Any, tok: Any, requests: Sequence[LensRequest], *, batch_size: int, device: str
             ) -> list[dict[str, Any]]:
    """One record per request with per-layer ``top1_id, top1_token, top1_prob, p_source, p_target, p_pivot``."""
    import torch

    norm = final_norm(model)
    unembed = model.get_output_embeddings()
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    records: list[dict[str, Any]] = []
    for b0 in range(0, len(requests), batch_size):
        batch = requests[b0:b0 + batch_size]
        width = max(len(r.ids) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, r in enumerate(batch):
            ids[k, width - len(r.ids):] = torch.tensor(r.ids)
            mask[k, width - len(r.ids):] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        at = torch.tensor([width - len(r.ids) + r.position for r in batch])
        with torch.inference_mode():
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device),
                        output_hidden_states=True, logits_to_keep=1)
            hs = out.hidden_states[1:]  # after each layer; the last one is already normed
            rows = torch.arange(len(batch), device=hs[0].device)
            per_layer = []
            for li, h in enumerate(hs):
                v = h[rows, at.to(h.device)]
                if li < len(hs) - 1:
                    v = norm(v)
                logits = torch.nn.functional.linear(v.float(), unembed.weight.float())  # fp32 head
                per_layer.append(torch.softmax(logits, dim=-1).cpu())
        probs = torch.stack(per_layer, dim=1)  # batch x layers x vocab
        for k, r in enumerate(batch):
            p = probs[k]
            top_p, top_i = p.max(dim=-1)
            layers = []
            for li in range(p.shape[0]):
                rec = {"layer": li + 1, "top1_id": int(top_i[li]),
                       "top1_token": tok.convert_ids_to_tokens(int(top_i[li])),
                       "top1_prob": float(top_p[li]),
                       "p_source": float(p[li, sorted(r.source_ids)].sum()),
                       "p_target": float(p[li, sorted(r.target_ids)].sum())}
                if r.pivot_ids is not None:
                    rec["p_pivot"] = float(p[li, sorted(r.pivot_ids)].sum()) if r.pivot_ids else 0.0
                layers.append(rec)
            records.append({"id": r.item, "direction": r.direction, "source_ids": sorted(r.source_ids),
                            "target_ids": sorted(r.target_ids), "source_corpus_ids": list(r.source_corpus_ids),
                            "target_corpus_ids": list(r.target_corpus_ids),
                            "pivot_ids": None if r.pivot_ids is None else sorted(r.pivot_ids),
                            "layers": layers})
    return records


def lens_word_ids(tok: Any, items: Sequence[Item]) -> dict[tuple[str, str], list[int]]:
    """(item id, language) -> the word's corpus-form token ids: what :func:`pivot_sets` looks up in the lake's
    co-occurrence (an offline bundle exports the rows touching these ids)."""
    return {(it.id, lang): corpus_form_ids(tok, w, lang) for it in items for lang, w in it.words.items()}


def pivot_sets(reader: TableReader, tok: Any, items: Sequence[Item], directions: Sequence[tuple[str, str]], *,
               tokenizer: str | None, window: int | None, top_n: int) -> tuple[dict[tuple[str, str, str],
                                                                                    frozenset[int]], dict[str, Any]]:
    """Pivot token ids per (item, src, tgt), and what was used (source, window, the table versions read).

    From the lake's ``pair_pivots`` table (``pivot-spark pair-pivots``) when it holds rows of ``tokenizer`` (and
    ``window``, when given): the pair's pivots up to rank ``top_n``; a pair it lacks gets none. Otherwise computed
    here from ``cooccurrence`` and ``token_stats`` with the same rule
    (:func:`pivot_spark.steps.pivots.pair_pivot_candidates`, the default ``pivots.languages``, pieces that can be
    words)."""
    from evaluation.behaviours import pair_id

    table = _pair_pivot_rows(reader, tokenizer, window)
    if table is None:
        return _computed_pivot_sets(reader, tok, items, directions, tokenizer=tokenizer, window=window, top_n=top_n)
    kept = table[table["rank"] <= top_n]
    by_pair = {str(p): frozenset(int(t) for t in g["token_id"]) for p, g in kept.groupby("pair_id")}
    wanted = [(it, src, tgt) for src, tgt in directions for it in items if src in it.words and tgt in it.words]
    out = {(it.id, src, tgt): by_pair.get(pair_id(it.id, src, tgt), frozenset()) for it, src, tgt in wanted}
    info = {"source": "pair_pivots", "window": int(table["window"].iloc[0]) if len(table) else window,
            "top_n": min(top_n, int(table["rank"].max()) if len(table) else top_n), "tokenizer": tokenizer,
            "pairs_without_pivots": sum(1 for it, src, tgt in wanted if pair_id(it.id, src, tgt) not in by_pair),
            "rule": "pivot-spark pair-pivots (tokens co-occurring with both words beyond their document frequency, "
                    "ranked by the smaller excess; positions in natural-language spans only; pieces that can be "
                    "words)",
            "versions": reader.pinned()}
    return out, info


def _pair_pivot_rows(reader: TableReader, tokenizer: str | None, window: int | None) -> Any:
    """The ``pair_pivots`` rows of the tokenizer (and window) as a DataFrame; None when the lake (or bundle) has
    no such table or no such rows."""
    import pyarrow.compute as pc

    flt = pc.field("tokenizer") == tokenizer if tokenizer else None
    if window is not None:
        flt = pc.field("window") == window if flt is None else flt & (pc.field("window") == window)
    try:
        rows = reader.read("pair_pivots", ["pair_id", "token_id", "rank", "window", "tokenizer"], flt).to_pandas()
    except FileNotFoundError:
        return None
    return rows if len(rows) else None


def _computed_pivot_sets(reader: TableReader, tok: Any, items: Sequence[Item], directions: Sequence[tuple[str, str]],
                         *, tokenizer: str | None, window: int | None, top_n: int
                         ) -> tuple[dict[tuple[str, str, str], frozenset[int]], dict[str, Any]]:
    from evaluation import tables as lk
    from pivot_spark.config import PivotsConfig
    from pivot_spark.steps.pivots import PivotCandidateIndex, pair_pivot_candidates, word_piece_mask

    words = lens_word_ids(tok, items)
    all_ids = {i for ids in words.values() for i in ids}
    cooc, used_window = lk.cooccurrence_near(reader, all_ids, window=window, tokenizer=tokenizer)
    stats = lk.token_doc_counts(reader, tokenizer)
    n_docs = lk.n_documents(reader)
    defaults = PivotsConfig()
    keep = word_piece_mask([p or "" for p in tok.convert_ids_to_tokens(list(range(len(tok))))],
                           defaults.min_piece_chars)
    index = PivotCandidateIndex.build(cooc, stats, defaults.languages)  # once for all pairs
    out: dict[tuple[str, str, str], frozenset[int]] = {}
    for src, tgt in directions:
        for it in items:
            if src in it.words and tgt in it.words:
                cand = pair_pivot_candidates(None, None, words[(it.id, src)], words[(it.id, tgt)],
                                             n_docs=max(n_docs, 1), top_n=top_n, keep=keep, index=index)
                out[(it.id, src, tgt)] = frozenset(int(t) for t in cand["token_id"])
    info = {"source": "cooccurrence", "window": used_window, "n_docs": n_docs, "top_n": top_n,
            "tokenizer": tokenizer, "cooccurrence_rows": len(cooc),
            "rule": "pivot_spark.steps.pivots.pair_pivot_candidates (tokens co-occurring with both words beyond "
                    "their document frequency, ranked by the smaller excess; positions in spans of the default "
                    "pivots.languages only; pieces that can be words)",
            "versions": reader.pinned()}
    return out, info


def mean_curves(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per direction, the mean over items of each per-layer quantity."""
    out: dict[str, dict[str, list[float]]] = {}
    for d in sorted({r["direction"] for r in records}):
        rs = [r for r in records if r["direction"] == d]
        keys = [k for k in ("top1_prob", "p_source", "p_target", "p_pivot") if k in rs[0]["layers"][0]]
        out[d] = {k: [float(np.mean([r["layers"][li][k] for r in rs])) for li in range(len(rs[0]["layers"]))]
                  for k in keys}
        out[d]["n"] = [float(len(rs))]
    return out
