"""Windowed token co-occurrence counts over ``doc_tokens`` batches, pre-aggregated per batch (numpy only).

Definitions (also in docs/pivots.md):

- **Window** ``W``: positions ``i < j`` of one document co-occur when ``j - i < W``, i.e. both fit in one span of
  ``W`` consecutive tokens of the ORIGINAL token sequence (the paper's window is over tokens). Non-content tokens
  (punctuation, digits, whitespace, byte-fallback, control, the stop list) occupy positions but are never counted.
- **Pair**: both positions hold content tokens with different ids (a token with itself is skipped). The pair is
  stored ordered, ``token_a < token_b``, each side with the language of the span its position sits in, so
  ``(a, en, b, fr)`` and ``(a, fr, b, en)`` are different rows.
- ``count``: number of co-occurring position pairs; ``doc_count``: number of documents holding at least one.

Both columns are additive over disjoint sets of documents (a document lives in one batch), so per-partition
outputs can be summed by key, per snapshot and across snapshots. Pruning by a minimum count must happen only
after that global sum, never inside a batch.

Vectorization: all documents of a chunk are concatenated; position ``p`` of document ``d`` gets the global
coordinate ``p + d * W`` so that positions of different documents are never within ``W``. Content positions are
compressed out, and for each offset ``m = 1..W-1`` in that compressed sequence the pairs ``(k, k + m)`` whose
coordinates differ by less than ``W`` are taken at once. Each pair becomes one int64 key (token ids and language
ids packed), the document index is packed into the low bits, and one sort of the packed values yields ``count``
and ``doc_count`` together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

UNDETERMINED = "und"
# pairs materialised per chunk; bounds memory at about 16 bytes per pair (key and document index)
DEFAULT_PAIR_BUDGET = 8_000_000

PAIR_COUNTS = pa.schema(
    [
        pa.field("token_a", pa.int32(), nullable=False),
        pa.field("token_b", pa.int32(), nullable=False),
        pa.field("lang_a", pa.string(), nullable=False),
        pa.field("lang_b", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
    ]
)
TOKEN_COUNTS = pa.schema(
    [
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
    ]
)
PAIR_WINDOW_COUNTS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("window", pa.int32(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
    ]
)


@dataclass(frozen=True)
class TokenBatch:
    """Documents concatenated into flat arrays: the vectorized form every counter here works on.

    ``langs`` holds indexes into ``lang_names``; document ``d`` spans ``tokens[offsets[d]:offsets[d + 1]]``.
    """

    tokens: np.ndarray  # int32 [N]
    langs: np.ndarray  # int16 [N]
    offsets: np.ndarray  # int64 [n_docs + 1]
    lang_names: tuple[str, ...]

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc_index(self) -> np.ndarray:
        """Document number of every flat position."""
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), self.lengths)

    @classmethod
    def from_arrow(cls, data: pa.Table | pa.RecordBatch) -> TokenBatch:
        """From ``doc_tokens`` rows (``token_ids``, ``token_langs``); a null list is an empty document and a
        null language is ``und``. Raises ValueError naming the documents whose two lists differ in length."""
        ids_col = _combined(data.column("token_ids"))
        langs_col = _combined(data.column("token_langs"))
        n_ids = pc.list_value_length(ids_col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        n_langs = pc.list_value_length(langs_col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        bad = np.flatnonzero(n_ids != n_langs)
        if len(bad):
            names = _doc_names(data, bad)
            raise ValueError(
                f"token_langs and token_ids differ in length for {len(bad)} document(s): {names}"
            )
        tokens = ids_col.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        lang_values = langs_col.flatten().fill_null(UNDETERMINED)
        encoded = pc.dictionary_encode(lang_values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        lang_names = tuple(encoded.dictionary.to_pylist())
        langs = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int16, copy=False)
        offsets = np.concatenate([[0], np.cumsum(n_ids)]).astype(np.int64)
        return cls(tokens, langs, offsets, lang_names)

    @classmethod
    def from_docs(
        cls,
        docs: Iterable[tuple[Sequence[int] | np.ndarray, Sequence[str] | np.ndarray]],
        lang_names: Sequence[str] | None = None,
    ) -> TokenBatch:
        """From ``(token_ids, langs)`` pairs. ``langs`` are language codes, or integer indexes into
        ``lang_names`` when that is given."""
        tokens: list[np.ndarray] = []
        langs: list[np.ndarray] = []
        names = list(lang_names) if lang_names is not None else []
        index = {name: i for i, name in enumerate(names)}
        for n, (ids, doc_langs) in enumerate(docs):
            ids_arr = np.asarray(ids, dtype=np.int32)
            if len(ids_arr) != len(doc_langs):
                raise ValueError(f"document {n}: {len(ids_arr)} token ids but {len(doc_langs)} languages")
            if lang_names is not None:
                lang_arr = np.asarray(doc_langs, dtype=np.int16)
            else:
                lang_arr = np.array(
                    [index.setdefault(code, len(index)) for code in doc_langs], dtype=np.int16
                )
            tokens.append(ids_arr)
            langs.append(lang_arr)
        if lang_names is None:
            names = list(index)
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        return cls(
            np.concatenate(tokens) if tokens else np.zeros(0, np.int32),
            np.concatenate(langs) if langs else np.zeros(0, np.int16),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            tuple(names),
        )

    def with_lang_names(self, lang_names: Sequence[str]) -> TokenBatch:
        """The same documents with language codes indexing ``lang_names`` (a table shared by many batches);
        raises ValueError naming the languages the table lacks."""
        names = tuple(lang_names)
        if names == self.lang_names:
            return self
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.lang_names if n not in index]
        if missing:
            raise ValueError(f"languages {missing} are not in the language table {list(names)}")
        remap = np.array([index[n] for n in self.lang_names], dtype=np.int16)
        langs = remap[self.langs] if len(remap) else self.langs
        return TokenBatch(self.tokens, langs, self.offsets, names)

    def truncate(self, max_doc_tokens: int | None) -> TokenBatch:
        """Keep the first ``max_doc_tokens`` tokens of each document (bounds the work on huge documents)."""
        if max_doc_tokens is None or self.n_docs == 0 or self.lengths.max(initial=0) <= max_doc_tokens:
            return self
        within = np.arange(len(self.tokens)) - np.repeat(self.offsets[:-1], self.lengths)
        keep = within < max_doc_tokens
        new_lengths = np.minimum(self.lengths, max_doc_tokens)
        offsets = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
        return TokenBatch(self.tokens[keep], self.langs[keep], offsets, self.lang_names)

    def slice_docs(self, start: int, stop: int) -> TokenBatch:
        lo, hi = self.offsets[start], self.offsets[stop]
        return TokenBatch(
            self.tokens[lo:hi], self.langs[lo:hi], self.offsets[start : stop + 1] - lo, self.lang_names
        )

    def chunks(self, max_tokens: int, max_docs: int) -> Iterator[TokenBatch]:
        """Consecutive runs of whole documents with at most ``max_tokens`` tokens (a longer document is a
        chunk of its own) and at most ``max_docs`` documents."""
        start = 0
        while start < self.n_docs:
            limit = self.offsets[start] + max_tokens
            stop = int(np.searchsorted(self.offsets, limit, side="right")) - 1
            stop = min(max(stop, start + 1), start + max_docs, self.n_docs)
            yield self.slice_docs(start, stop)
            start = stop


DocsLike: TypeAlias = TokenBatch | pa.Table | pa.RecordBatch | Iterable[tuple[Sequence[int], Sequence[str]]]


def as_token_batch(docs: DocsLike, lang_names: Sequence[str] | None = None) -> TokenBatch:
    if isinstance(docs, TokenBatch):
        return docs
    if isinstance(docs, pa.Table | pa.RecordBatch):
        return TokenBatch.from_arrow(docs)
    return TokenBatch.from_docs(docs, lang_names)


def invalid_reasons(data: pa.Table | pa.RecordBatch, vocab_size: int) -> list[str | None]:
    """Per ``doc_tokens`` row: why it cannot be counted (None when it can), so a job can quarantine the row
    instead of failing on it: ``token_langs`` of another length, or a token id outside the vocabulary."""
    ids_col = _combined(data.column("token_ids"))
    n_ids = pc.list_value_length(ids_col).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    n_langs = pc.list_value_length(_combined(data.column("token_langs"))).fill_null(0)
    n_langs_np = n_langs.to_numpy(zero_copy_only=False).astype(np.int64)
    flat = ids_col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    out_of_range = (flat < 0) | (flat >= vocab_size)
    doc = np.repeat(np.arange(len(n_ids)), n_ids)
    bad_ids = np.bincount(doc[out_of_range], minlength=len(n_ids)) > 0
    reasons: list[str | None] = [None] * len(n_ids)
    for i in np.flatnonzero(bad_ids):
        reasons[i] = f"token id outside the vocabulary [0, {vocab_size})"
    for i in np.flatnonzero(n_ids != n_langs_np):
        reasons[i] = f"token_langs has {n_langs_np[i]} entries for {n_ids[i]} token ids"
    return reasons


def keep_mask(content: np.ndarray, stop_ids: Iterable[int] | None = None) -> np.ndarray:
    """Boolean mask over the vocabulary of the tokens that count: content tokens not on the stop list."""
    keep = np.asarray(content, dtype=bool).copy()
    if stop_ids is not None:
        stops = np.fromiter(stop_ids, dtype=np.int64)
        keep[stops[(stops >= 0) & (stops < len(keep))]] = False
    return keep


def count_pairs(
    docs: DocsLike,
    *,
    window: int,
    content: np.ndarray,
    stop_ids: Iterable[int] | None = None,
    max_doc_tokens: int | None = None,
    lang_names: Sequence[str] | None = None,
    pair_budget: int = DEFAULT_PAIR_BUDGET,
) -> pa.Table:
    """Co-occurrence counts of a batch of documents (see the module docstring), schema :data:`PAIR_COUNTS`,
    sorted by ``(token_a, lang_a, token_b, lang_b)`` codes. ``content`` is the boolean content mask over the
    vocabulary; its length is the vocabulary size."""
    batch = as_token_batch(docs, lang_names).truncate(max_doc_tokens)
    keep = keep_mask(content, stop_ids)
    keys, count, doc_count = pair_key_counts(batch, window=window, keep=keep, pair_budget=pair_budget)
    token_a, token_b, lang_a, lang_b = decode_pair_keys(keys, len(keep), batch.lang_names)
    return pa.table([token_a, token_b, lang_a, lang_b, pa.array(count), pa.array(doc_count)], schema=PAIR_COUNTS)


def pair_key_counts(
    batch: TokenBatch, *, window: int, keep: np.ndarray, pair_budget: int = DEFAULT_PAIR_BUDGET
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packed form of :func:`count_pairs` (no truncation, no stop list: ``keep`` is the final mask):
    ascending int64 pair keys ``(token_a * L + lang_a) * V * L + token_b * L + lang_b`` (``V`` = ``len(keep)``,
    ``L`` = ``len(batch.lang_names)``, language codes are indexes into ``batch.lang_names``), with ``count`` and
    ``doc_count``. Batches remapped to one language table (:meth:`TokenBatch.with_lang_names`) give keys that
    can be summed across batches and tasks as plain integers."""
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    vocab, n_langs = len(keep), max(len(batch.lang_names), 1)
    _check_ids(batch, vocab)
    key_space = pair_key_space(vocab, n_langs)
    doc_bits = 63 - max(key_space - 1, 1).bit_length()
    if doc_bits < 1:
        raise ValueError(f"vocabulary {vocab} x {n_langs} languages does not fit a 63-bit pair key")
    max_tokens = max(pair_budget // (window - 1), 1)
    parts = [
        _pair_aggregate(chunk, window, keep, vocab, n_langs, doc_bits)
        for chunk in batch.chunks(max_tokens, 1 << doc_bits)
    ]
    return merge_key_counts(parts)


def pair_key_space(vocab: int, n_langs: int) -> int:
    """Number of distinct pair keys of :func:`pair_key_counts` (keys are below it)."""
    return vocab * vocab * max(n_langs, 1) ** 2


def decode_pair_keys(
    keys: np.ndarray, vocab: int, lang_names: Sequence[str]
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """``token_a``, ``token_b`` (int32) and ``lang_a``, ``lang_b`` (string) of packed pair keys."""
    names = tuple(lang_names) or (UNDETERMINED,)
    n_langs = len(names)
    node_a, node_b = np.divmod(np.asarray(keys, dtype=np.int64), vocab * n_langs)
    token_a, lang_a = np.divmod(node_a, n_langs)
    token_b, lang_b = np.divmod(node_b, n_langs)
    return (pa.array(token_a.astype(np.int32)), pa.array(token_b.astype(np.int32)),
            _decode_langs(lang_a, names), _decode_langs(lang_b, names))


def token_stats(
    docs: DocsLike,
    *,
    content: np.ndarray,
    stop_ids: Iterable[int] | None = None,
    max_doc_tokens: int | None = None,
    lang_names: Sequence[str] | None = None,
) -> pa.Table:
    """Per (token, language): occurrences and documents, over the same positions :func:`count_pairs` counts
    (content tokens, not stop-listed, after truncation). Schema :data:`TOKEN_COUNTS`; additive like the pairs."""
    batch = as_token_batch(docs, lang_names).truncate(max_doc_tokens)
    keep = keep_mask(content, stop_ids)
    keys, count, doc_count = token_key_counts(batch, keep=keep)
    token, lang = decode_token_keys(keys, batch.lang_names)
    return pa.table([token, lang, pa.array(count), pa.array(doc_count)], schema=TOKEN_COUNTS)


def token_key_counts(batch: TokenBatch, *, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packed form of :func:`token_stats`: ascending keys ``token * L + lang`` with ``count`` and
    ``doc_count`` (see :func:`pair_key_counts` for ``L`` and the language codes)."""
    vocab, n_langs = len(keep), max(len(batch.lang_names), 1)
    _check_ids(batch, vocab)
    doc_bits = 63 - max(vocab * n_langs - 1, 1).bit_length()
    pos = np.flatnonzero(keep[batch.tokens])
    keys = batch.tokens[pos].astype(np.int64) * n_langs + batch.langs[pos]
    return _aggregate(keys, batch.doc_index()[pos], doc_bits)


def decode_token_keys(keys: np.ndarray, lang_names: Sequence[str]) -> tuple[pa.Array, pa.Array]:
    names = tuple(lang_names) or (UNDETERMINED,)
    token, lang = np.divmod(np.asarray(keys, dtype=np.int64), len(names))
    return pa.array(token.astype(np.int32)), _decode_langs(lang, names)


def merge_key_counts(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``(keys, count, doc_count)`` aggregates by key into one, keys ascending: the aggregates of disjoint
    sets of documents (chunks of a batch, batches of a task), so document counts add up."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if len(parts) == 1:
        return parts[0]
    keys = np.concatenate([p[0] for p in parts])
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    count = np.concatenate([p[1] for p in parts])[order]
    doc_count = np.concatenate([p[2] for p in parts])[order]
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    return keys[first], np.add.reduceat(count, first), np.add.reduceat(doc_count, first)


def sum_counts(tables: Sequence[pa.Table], keys: Sequence[str]) -> pa.Table:
    """Sum ``count`` and ``doc_count`` of partial aggregates by ``keys``, sorted by ``keys``: what a Spark
    groupBy-sum does, in one process (the pivots job sums the graph it reads on the driver this way)."""
    table = pa.concat_tables(tables)
    summed = table.group_by(list(keys)).aggregate([("count", "sum"), ("doc_count", "sum")])
    return summed.rename_columns([*keys, "count", "doc_count"]).sort_by([(k, "ascending") for k in keys])


def pair_cooccurrence(
    docs: DocsLike,
    pairs: Sequence[tuple[str, str, Sequence[int], str, Sequence[int]]],
    *,
    window: int | Sequence[int],
    match_langs: bool = False,
    lang_names: Sequence[str] | None = None,
) -> pa.Table:
    """Co-occurrence of word pairs, each word a token sequence, schema :data:`PAIR_WINDOW_COUNTS`.

    ``pairs`` rows are ``(pair_id, lang_a, ids_a, lang_b, ids_b)``; ids are the word's tokens as they appear in
    running text (with SentencePiece's word-start marker). An occurrence of a word is an exact match of its
    token sequence inside one document (no word-boundary check after the last token). Two occurrences, one of
    each word, co-occur in window ``W`` when their spans do not overlap and both fit in one span of ``W``
    consecutive tokens: ``max(end_a, end_b) - min(start_a, start_b) <= W`` (for one-token words this is the
    ``j - i < W`` of :func:`count_pairs`). ``count`` is the number of such occurrence pairs (unordered when both
    words are the same), ``doc_count`` the number of documents holding at least one. With ``match_langs`` an
    occurrence counts only when its first token's language is the word's language. Every pair and window gets a
    row, zeros included, so the output is additive over batches.
    """
    windows = [window] if isinstance(window, int) else list(window)
    if not windows or min(windows) < 1:
        raise ValueError(f"windows must be positive, got {windows}")
    batch = as_token_batch(docs, lang_names)
    gap = max(windows)
    doc = batch.doc_index()
    order = np.argsort(batch.tokens, kind="stable")
    sorted_tokens = batch.tokens[order]
    lang_code = {name: i for i, name in enumerate(batch.lang_names)}
    cache: dict[tuple[tuple[int, ...], int | None], tuple[np.ndarray, np.ndarray]] = {}

    def occurrences(ids: Sequence[int], lang: str) -> tuple[np.ndarray, np.ndarray]:
        """Start coordinates (position + document * gap, ascending) and documents of a word's occurrences."""
        code = lang_code.get(lang, -1) if match_langs else None
        key = (tuple(int(t) for t in ids), code)
        if key not in cache:
            cache[key] = _occurrences(key[0], code, batch, doc, order, sorted_tokens, gap)
        return cache[key]

    pair_ids: list[str] = []
    out_windows: list[int] = []
    counts: list[int] = []
    doc_counts: list[int] = []
    for pair_id, lang_a, ids_a, lang_b, ids_b in pairs:
        if len(ids_a) == 0 or len(ids_b) == 0:
            raise ValueError(f"pair {pair_id}: a word has no tokens")
        start_a, doc_a = occurrences(ids_a, lang_a)
        start_b, _ = occurrences(ids_b, lang_b)
        same_word = tuple(ids_a) == tuple(ids_b) and (not match_langs or lang_a == lang_b)
        for w in windows:
            per_occ = _window_matches(start_a, len(ids_a), start_b, len(ids_b), w)
            total = int(per_occ.sum())
            pair_ids.append(str(pair_id))
            out_windows.append(w)
            counts.append(total // 2 if same_word else total)
            doc_counts.append(len(np.unique(doc_a[per_occ > 0])))
    return pa.table(
        [
            pa.array(pair_ids, pa.string()),
            pa.array(out_windows, pa.int32()),
            pa.array(counts, pa.int64()),
            pa.array(doc_counts, pa.int64()),
        ],
        schema=PAIR_WINDOW_COUNTS,
    )


WORD_COUNTS = pa.schema(
    [
        pa.field("word_id", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
        pa.field("doc_count", pa.int64(), nullable=False),
    ]
)


def word_occurrences(docs: DocsLike, words: Sequence[tuple[str, Sequence[int]]],
                     lang_names: Sequence[str] | None = None) -> pa.Table:
    """Occurrences of words, each a token sequence (an exact match inside one document, as in
    :func:`pair_cooccurrence`), schema :data:`WORD_COUNTS`: ``count`` occurrences, ``doc_count`` documents
    holding one; every word gets a row, zeros included, so the output is additive over batches."""
    batch = as_token_batch(docs, lang_names)
    doc = batch.doc_index()
    order = np.argsort(batch.tokens, kind="stable")
    sorted_tokens = batch.tokens[order]
    counts, doc_counts = [], []
    for word_id, ids in words:
        if len(ids) == 0:
            raise ValueError(f"word {word_id}: no tokens")
        _, docs_of = _occurrences(tuple(int(t) for t in ids), None, batch, doc, order, sorted_tokens, 1)
        counts.append(len(docs_of))
        doc_counts.append(len(np.unique(docs_of)))
    return pa.table([pa.array([str(w) for w, _ in words], pa.string()), pa.array(counts, pa.int64()),
                     pa.array(doc_counts, pa.int64())], schema=WORD_COUNTS)


def _occurrences(
    ids: tuple[int, ...],
    lang: int | None,
    batch: TokenBatch,
    doc: np.ndarray,
    order: np.ndarray,
    sorted_tokens: np.ndarray,
    gap: int,
) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.searchsorted(sorted_tokens, ids[0], "left"), np.searchsorted(sorted_tokens, ids[0], "right")
    pos = order[lo:hi].astype(np.int64)  # ascending: the sort is stable
    for k, token in enumerate(ids[1:], start=1):
        pos = pos[pos + k < len(batch.tokens)]
        pos = pos[(batch.tokens[pos + k] == token) & (doc[pos + k] == doc[pos])]
    if lang is not None:
        pos = pos[batch.langs[pos] == lang]
    return pos + doc[pos] * gap, doc[pos]


def _window_matches(
    start_a: np.ndarray, len_a: int, start_b: np.ndarray, len_b: int, window: int
) -> np.ndarray:
    """For each occurrence of a: the occurrences of b it co-occurs with (disjoint, both inside ``window``).
    Coordinates of different documents are at least ``window`` apart, so no pair crosses documents."""
    if len(start_a) == 0 or len(start_b) == 0:
        return np.zeros(len(start_a), dtype=np.int64)

    def in_range(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        n = np.searchsorted(start_b, hi, "right") - np.searchsorted(start_b, lo, "left")
        return np.maximum(n, 0)

    after = in_range(start_a + len_a, start_a + window - len_b)  # b starts after a ends
    before = in_range(start_a + len_a - window, start_a - len_b)  # b ends before a starts
    return after + before


def _pair_aggregate(
    batch: TokenBatch, window: int, keep: np.ndarray, vocab: int, n_langs: int, doc_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.flatnonzero(keep[batch.tokens])
    doc = batch.doc_index()[pos]
    coord = pos + doc * window  # documents never come within one window of each other
    tokens = batch.tokens[pos]
    # a node is (token, language); ordering nodes orders tokens, because equal tokens are never paired
    nodes = tokens.astype(np.int64) * n_langs + batch.langs[pos]
    node_space = vocab * n_langs
    keys: list[np.ndarray] = []
    docs: list[np.ndarray] = []
    for m in range(1, window):
        near = (coord[m:] - coord[:-m]) < window
        if not near.any():  # coordinates increase, so no larger offset can be near either
            break
        valid = near & (tokens[:-m] != tokens[m:])
        first, second = nodes[:-m][valid], nodes[m:][valid]
        keys.append(np.minimum(first, second) * node_space + np.maximum(first, second))
        docs.append(doc[:-m][valid])
    if not keys:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return _aggregate(np.concatenate(keys), np.concatenate(docs), doc_bits)


def _aggregate(
    keys: np.ndarray, docs: np.ndarray, doc_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct keys with occurrence counts and distinct-document counts, from one sort of ``key << doc_bits |
    doc`` (documents renumbered from 0 inside the batch, so they fit ``doc_bits``)."""
    if len(keys) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    if int(docs.max()) >= 1 << doc_bits:
        raise ValueError("too many documents in one chunk for the packed key")
    packed = np.sort((keys << doc_bits) | docs)
    starts = np.flatnonzero(np.concatenate([[True], packed[1:] != packed[:-1]]))
    per_doc = np.diff(np.append(starts, len(packed)))  # occurrences per distinct (key, doc)
    key_of = packed[starts] >> doc_bits
    first = np.flatnonzero(np.concatenate([[True], key_of[1:] != key_of[:-1]]))
    count = np.add.reduceat(per_doc, first)
    doc_count = np.diff(np.append(first, len(key_of)))
    return key_of[first], count.astype(np.int64), doc_count.astype(np.int64)


def _check_ids(batch: TokenBatch, vocab: int) -> None:
    if len(batch.tokens) and (batch.tokens.min() < 0 or batch.tokens.max() >= vocab):
        raise ValueError(
            f"token ids outside the vocabulary [0, {vocab}) (the content mask's length): "
            f"min {batch.tokens.min()}, max {batch.tokens.max()}; quarantine such rows with invalid_reasons()"
        )


def _decode_langs(codes: np.ndarray, names: Sequence[str]) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names), pa.string())).dictionary_decode()


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _doc_names(data: pa.Table | pa.RecordBatch, rows: np.ndarray, limit: int = 5) -> list[str]:
    if "doc_id" in data.column_names:
        ids = data.column("doc_id").to_pylist()
        return [str(ids[i]) for i in rows[:limit]]
    return [f"row {i}" for i in rows[:limit]]
