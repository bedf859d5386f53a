"""One Arrow batch of ``documents`` -> its ``doc_lang`` and ``doc_tokens`` rows (pure; no pyspark).

The Spark ``annotate`` job calls :func:`annotate_batch` inside ``mapInArrow``; the plain benchmark loop calls the
same function, so both measure the same work. Models are loaded once per Python worker by
:func:`~pivot_spark.steps.langid.get_lid_model` and :func:`~pivot_spark.steps.tokenize.get_sp`.

Every row with a ``doc_id`` and a ``snapshot`` gets a ``doc_lang`` row (and a ``doc_tokens`` row when a tokenizer
is given), even when its text is empty or has no letters (``lang="und"``, no spans): an incremental run then
sees it as done instead of retrying it forever. Rows are never dropped silently: rows without a key and documents
whose annotation raised are left out and counted under ``skipped.<reason>``; nothing here raises on odd text.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from pivot_spark.artifacts import file_hash
from pivot_spark.config import LangIdConfig
from pivot_spark.schemas import DOC_LANG, DOC_TOKENS
from pivot_spark.steps.langcodes import UNDETERMINED
from pivot_spark.steps.langid import DocLang, LidModel, get_lid_model, identify_batch
from pivot_spark.steps.tokenize import encode_with_langs, get_sp


@lru_cache(maxsize=8)
def _tokenizer_hash(sp_path: str) -> str:
    return file_hash(sp_path)


def annotate_batch(batch: pa.RecordBatch, *, lid_path: str | Path | None, sp_path: str | Path | None,
                   tok_hash: str | None = None, cfg: LangIdConfig, templates: np.ndarray | None = None
                   ) -> tuple[pa.RecordBatch, pa.RecordBatch, dict[str, int]]:
    """Language-tag and tokenize a batch with columns ``doc_id``, ``text``, ``snapshot`` (others are ignored).

    ``lid_path`` None means the bundled ``lid.176.ftz``; ``sp_path`` None means language ID only (the tokenizer
    is trained on a language-balanced sample, which needs ``doc_lang`` first), giving an empty ``doc_tokens``
    batch. ``tok_hash`` defaults to the model file's content hash; ``templates``: the keys of template lines
    (:func:`~pivot_spark.steps.langid.identify_batch`). Returns rows matching
    :data:`~pivot_spark.schemas.DOC_LANG` and :data:`~pivot_spark.schemas.DOC_TOKENS`, and counts:
    ``docs``, ``docs_annotated``, ``docs_empty`` (blank text), ``docs_no_letters``, ``docs.lang.<code>``,
    ``tokens``, ``tokens.lang.<code>`` and ``skipped.<reason>``.
    """
    counts: Counter[str] = Counter(docs=batch.num_rows)
    model = get_lid_model(lid_path)
    sp = get_sp(sp_path) if sp_path is not None else None
    tokenizer = (tok_hash or _tokenizer_hash(str(sp_path))) if sp_path is not None else None

    doc_ids = batch.column("doc_id").to_pylist()
    snapshots = batch.column("snapshot").to_pylist()
    texts = batch.column("text").to_pylist()
    keep = []
    for i, (doc_id, snap) in enumerate(zip(doc_ids, snapshots, strict=True)):
        if doc_id is None or snap is None:
            counts["skipped.missing_doc_id_or_snapshot"] += 1
        else:
            keep.append(i)
    for i in keep:
        if texts[i] is None:
            counts["docs_null_text"] += 1
            texts[i] = ""

    kept_texts = [texts[i] for i in keep]
    labels = _identify_safely(kept_texts, cfg, model, counts, templates)

    lang_rows: dict[str, list] = {f.name: [] for f in DOC_LANG}
    tok_rows: dict[str, list] = {f.name: [] for f in DOC_TOKENS}
    for i, text, doc in zip(keep, kept_texts, labels, strict=True):
        if doc is None:
            continue
        ids: np.ndarray | None = None
        langs: list[str] = []
        if sp is not None:
            try:
                ids, langs = encode_with_langs(text, doc.spans, sp)
            except Exception as e:  # one odd document must not fail the job
                counts[f"skipped.tokenize_error.{type(e).__name__}"] += 1
                continue
        if not text.strip():
            counts["docs_empty"] += 1
        elif doc.lang == UNDETERMINED:
            counts["docs_no_letters"] += 1
        counts["docs_annotated"] += 1
        counts[f"docs.lang.{doc.lang}"] += 1
        _append(lang_rows, doc_id=doc_ids[i], lang=doc.lang, lang_score=doc.lang_score,
                top_langs=[{"lang": code, "score": p} for code, p in doc.top_langs],
                spans=[s._asdict() for s in doc.spans], lid_model=model.model_id, snapshot=snapshots[i])
        if ids is not None:
            counts["tokens"] += len(ids)
            for code, n in Counter(langs).items():
                counts[f"tokens.lang.{code}"] += n
            _append(tok_rows, doc_id=doc_ids[i], tokenizer=tokenizer, token_ids=ids, token_langs=langs,
                    n_tokens=len(ids), lid_model=model.model_id, snapshot=snapshots[i])
    return _doc_lang_batch(lang_rows), _doc_tokens_batch(tok_rows), dict(counts)


def _identify_safely(texts: list[str], cfg: LangIdConfig, model: LidModel, counts: Counter[str],
                     templates: np.ndarray | None) -> list[DocLang | None]:
    """One fastText call for the batch; if it raises, retry document by document to isolate the culprit."""
    try:
        return list(identify_batch(texts, cfg, model, templates))
    except Exception:
        out: list[DocLang | None] = []
        for text in texts:
            try:
                out.append(identify_batch([text], cfg, model, templates)[0])
            except Exception as e:
                counts[f"skipped.langid_error.{type(e).__name__}"] += 1
                out.append(None)
        return out


def _append(rows: dict[str, list], **values: object) -> None:
    for k, v in values.items():
        rows[k].append(v)


def _doc_lang_batch(rows: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(rows[f.name], type=f.type) for f in DOC_LANG], schema=DOC_LANG)


def _doc_tokens_batch(rows: dict[str, list]) -> pa.RecordBatch:
    ids = rows.pop("token_ids")
    langs = rows.pop("token_langs")
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum([len(x) for x in ids], out=offsets[1:])
    flat_ids = np.concatenate(ids).astype(np.int32, copy=False) if ids else np.zeros(0, np.int32)
    flat_langs = [code for per_doc in langs for code in per_doc]
    arrays = {
        "token_ids": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_ids, pa.int32())),
        "token_langs": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat_langs, pa.string())),
    }
    return pa.RecordBatch.from_arrays(
        [arrays[f.name] if f.name in arrays else pa.array(rows[f.name], type=f.type) for f in DOC_TOKENS],
        schema=DOC_TOKENS)
