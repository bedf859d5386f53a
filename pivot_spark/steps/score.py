"""Per-document pivot proportion, vectorized over a ``doc_tokens`` batch: the paper's measure of how much of a
document is made of semantic pivots, by which documents are ranked for the pivot arm of a selection.

``pivot_proportion = n_pivot_tokens / n_content_tokens``: content tokens (the same mask and stop list the
co-occurrence counts use) are the denominator, so punctuation-heavy documents are not penalised for tokens that
can never be pivots; a document without content tokens scores 0. A pivot token outside the content mask is not
counted, which keeps the proportion within [0, 1]. With ``languages`` (``pivots.languages``, as pivot discovery
counts), both counts take only positions in spans of those languages: code and markup (``zxx``) neither dilute
nor raise a document's proportion, so how much code a document quotes does not decide whether the pivot arm
takes it. The document's language is the majority language of those positions (of all its tokens when it has
none; token-weighted; ties go to the alphabetically first code).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from pivot_spark.schemas import DOC_PIVOT
from pivot_spark.steps.cooccur import TokenBatch, keep_mask
from pivot_spark.steps.pivots import counted_languages


def score_docs(
    batch: pa.Table | pa.RecordBatch,
    *,
    pivot_ids: np.ndarray,
    content: np.ndarray,
    pivot_set: str,
    stop_ids: Iterable[int] | None = None,
    languages: Sequence[str] | None = None,
) -> pa.Table:
    """``doc_pivot`` rows (schemas.DOC_PIVOT) for ``doc_tokens`` rows; ``n_tokens`` is the length of
    ``token_ids``; with ``languages``, content and pivot tokens are counted in spans of those languages only
    (module docstring). Token ids outside the content mask's vocabulary raise ValueError (quarantine them first
    with :func:`pivot_spark.steps.cooccur.invalid_reasons`)."""
    tokens = TokenBatch.from_arrow(batch)
    keep = keep_mask(content, stop_ids)
    if len(tokens.tokens) and (tokens.tokens.min() < 0 or tokens.tokens.max() >= len(keep)):
        raise ValueError(f"token ids outside the vocabulary [0, {len(keep)}) of the content mask")
    is_pivot = np.zeros(len(keep), dtype=bool)
    pivots = np.asarray(pivot_ids, dtype=np.int64)
    is_pivot[pivots[(pivots >= 0) & (pivots < len(keep))]] = True
    is_pivot &= keep
    doc = tokens.doc_index()
    n_docs = tokens.n_docs
    counted = np.ones(len(tokens.tokens), dtype=bool)
    if languages is not None:
        listed = np.isin(np.array(tokens.lang_names, dtype=object), counted_languages(languages))
        counted = listed[tokens.langs] if len(listed) else counted
    n_content = np.bincount(doc, weights=keep[tokens.tokens] & counted, minlength=n_docs).astype(np.int32)
    n_pivot = np.bincount(doc, weights=is_pivot[tokens.tokens] & counted, minlength=n_docs).astype(np.int32)
    proportion = np.divide(n_pivot, n_content, out=np.zeros(n_docs), where=n_content > 0)
    return pa.table(
        {
            "doc_id": batch.column("doc_id"),
            "n_tokens": pa.array(tokens.lengths.astype(np.int32)),
            "n_content_tokens": pa.array(n_content),
            "n_pivot_tokens": pa.array(n_pivot),
            "pivot_proportion": pa.array(proportion),
            "lang": majority_lang(tokens, counted),
            "pivot_set": pa.array([pivot_set] * n_docs, pa.string()),
        },
        schema=DOC_PIVOT,
    )


def majority_lang(tokens: TokenBatch, counted: np.ndarray | None = None) -> pa.Array:
    """Most frequent token language per document (None for an empty document), over the positions where
    ``counted`` is True (all of a document's positions when none of them is); ties go to the smallest code in
    alphabetical order so the answer does not depend on the batch's language numbering."""
    n_langs = len(tokens.lang_names)
    result = np.full(tokens.n_docs, -1, dtype=np.int64)
    if n_langs:
        alpha_rank = np.argsort(np.argsort(np.array(tokens.lang_names, dtype=object)))
        doc = tokens.doc_index()
        if counted is not None:
            has = np.bincount(doc, weights=counted, minlength=tokens.n_docs) > 0
            use = counted | ~has[doc]
            doc, langs = doc[use], tokens.langs[use]
        else:
            langs = tokens.langs
        keys, counts = np.unique(doc * n_langs + alpha_rank[langs], return_counts=True)
        key_doc, key_rank = np.divmod(keys, n_langs)
        # best first: per document, highest count, then smallest alphabetical rank
        order = np.lexsort((key_rank, -counts, key_doc))
        first = order[np.concatenate([[True], key_doc[order][1:] != key_doc[order][:-1]])]
        by_rank = np.argsort(alpha_rank)
        result[key_doc[first]] = by_rank[key_rank[first]]
    names = np.array([*tokens.lang_names, None], dtype=object)
    return pa.array(names[result], pa.string())
