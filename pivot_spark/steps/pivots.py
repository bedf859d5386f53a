"""The semantic pivot set from the aggregated co-occurrence graph of one window (pandas/numpy only).

In the paper, semantic pivots are hub tokens of the token co-occurrence graph: tokens that co-occur strongly
with many tokens. What "strongly" and "hub" mean is decided here (docs/pivots.md explains the choices):

- Nodes are (token, language) pairs, as counted by :func:`pivot_spark.steps.cooccur.count_pairs`; with
  ``cross_lingual_only`` only edges between different languages are used.
- **Language only**: edges and token statistics count only positions whose span language is one of
  ``languages`` (the corpus's languages): code and markup (``zxx``), undetermined text and stray labels that
  fastText gives to code lines (``ceb``, ``sh``) never count (:func:`language_rows`). Filtering the summed
  tables keeps the counts additive and lets the list change without counting again.
- **Word pieces**: a pivot must be a piece that can be a word: word-initial (``▁``) and alphabetic, or made of
  CJK characters (Han, kana, Hangul), which have no word-start marker (:func:`can_be_word`); continuation
  pieces (``ing``, ``tion``, ``int`` after punctuation) are dropped as ``not_word``.
- **Association** corrects raw counts for background frequency so that frequent tokens do not win by volume:
  ``ppmi`` is positive pointwise mutual information of window pair counts against what independent positions
  predict, ``max(0, log(c(a,b) / E(a,b)))`` with ``E(a,b) = c_a c_b 2 (W - 1) / T`` (``c`` a node's occurrences
  in ``token_stats``, ``T`` all counted occurrences: each occurrence of ``a`` has ``2 (W - 1)`` neighbours);
  ``lift`` is document-level log-lift, ``log(d(a,b) N / (df_a df_b))``, with document frequencies from
  ``token_stats`` and ``N`` documents.
- **Function words** of any language are dropped before ranking: a token found in more than
  ``max_lang_doc_freq`` of the documents of one language (languages with at least ``min_lang_docs``
  documents) is that language's ``▁the``/``▁de``/``的``, whatever its share of the whole corpus.
- An edge is **strong** when ``count >= min_pair_count`` and association ``>= min_assoc`` and both tokens pass
  the token filters (no content, too short, no letters, too rare, too frequent).
- **Hub score** of a token = strength x log(1 + effective languages): strength is the sum of association over
  its strong edges (weighted degree: how many tokens it associates with, and how far above chance); effective
  languages is exp(entropy) of the share of that strength carried by each language, counting both ends of each
  edge, so a stray edge in one more language barely moves it while a token spread evenly over k languages gets k.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pivot_spark.config import PivotsConfig
from pivot_spark.steps.langcodes import NO_LINGUISTIC_CONTENT, UNDETERMINED

WORD_START = "\u2581"  # SentencePiece's word-start marker
# Han, kana (with the prolonged sound mark), Hangul: words of these scripts carry no word-start marker
_CJK_PIECE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                        r"\U00020000-\U0002fa1f]+")

PIVOT_COLUMNS = ["token_id", "piece", "score", "degree", "n_langs", "rank", "pivot_set", "tokenizer"]
PAIR_KEYS = ["token_a", "token_b", "lang_a", "lang_b"]
HALF_COLUMNS = ["token_id", "lang", "partner", "partner_lang", "assoc"]
# The token_stats column each association takes its marginals from.
MARGINAL = {"ppmi": "count", "lift": "doc_count"}


@dataclass(frozen=True)
class PivotResult:
    """``pivots`` matches the ``pivots`` table (schemas.PIVOTS); ``tokens`` is the audit trail: every token
    of ``token_stats`` with its hub statistics and why it was dropped (``reason`` is None for the pivots)."""

    pivots: pd.DataFrame
    tokens: pd.DataFrame

    def dropped(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.tokens["reason"].value_counts().items()}


def piece_width(piece: str) -> int:
    """Characters of a piece without the word-start marker; East Asian wide characters count 2, since one
    CJK character is a word or morpheme where one Latin letter is not."""
    text = piece.replace(WORD_START, "")
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def has_letters(piece: str) -> bool:
    return any(ch.isalpha() for ch in piece.replace(WORD_START, ""))


def can_be_word(piece: str) -> bool:
    """Whether a piece can be a word: word-initial (``▁``) and alphabetic (``▁noyau``, ``▁Linux``, ``▁文字``), or
    CJK characters with or without the marker (``説明``, ``ファイル``); not a continuation (``ing``, ``int``
    glued to the punctuation before it) nor a piece with digits or symbols."""
    text = piece.removeprefix(WORD_START)
    if not text:
        return False
    if _CJK_PIECE.fullmatch(text):
        return True
    return piece.startswith(WORD_START) and text.isalpha()


def counted_languages(languages: Iterable[str]) -> list[str]:
    """The span languages whose positions count for pivots: ``languages`` less ``zxx`` and ``und``."""
    return sorted({str(x) for x in languages} - {NO_LINGUISTIC_CONTENT, UNDETERMINED})


def language_rows(cooc: pd.DataFrame | None, stats: pd.DataFrame | None, languages: Iterable[str]
                  ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``cooccurrence`` rows with both ends in :func:`counted_languages` and ``token_stats`` rows in them."""
    keep = counted_languages(languages)
    if cooc is not None:
        cooc = cooc[cooc["lang_a"].isin(keep) & cooc["lang_b"].isin(keep)]
    if stats is not None:
        stats = stats[stats["lang"].isin(keep)]
    return cooc, stats


def token_filter(
    stats: pd.DataFrame,
    *,
    n_docs: int,
    pieces: Sequence[str] | Mapping[int, str],
    content: np.ndarray,
    cfg: PivotsConfig,
    stop_ids: Iterable[int] | None = None,
    docs_by_lang: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Per token of ``token_stats`` (summed over languages): ``token_id, piece, count, doc_count, doc_freq,
    lang_doc_freq, reason`` where ``reason`` names the first filter that drops it (None: kept).
    ``lang_doc_freq`` is the largest share of one language's documents (``docs_by_lang``: documents per
    language, languages with at least ``cfg.min_lang_docs``) that hold the token in that language; without
    ``docs_by_lang`` it is 0 and the ``function_word`` filter is off.

    ``doc_count`` summed over languages counts a document once per language the token appears in there, so
    ``doc_freq`` is an upper bound; it only feeds the function-word filter, where erring high is harmless."""
    if n_docs <= 0:
        raise ValueError("n_docs must be positive")
    per_token = stats.groupby("token_id", as_index=False)[["count", "doc_count"]].sum()
    ids = per_token["token_id"].to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= len(content)):
        raise ValueError(f"token_stats has token ids outside the content mask's vocabulary of {len(content)}")
    per_token["piece"] = [str(pieces[int(t)]) for t in ids]
    per_token["doc_freq"] = np.minimum(per_token["doc_count"].to_numpy() / n_docs, 1.0)
    per_token["lang_doc_freq"] = _lang_doc_freq(stats, docs_by_lang or {}, cfg.min_lang_docs).reindex(
        per_token["token_id"]).fillna(0.0).to_numpy()
    checks = [
        *piece_checks(ids, pieces, content, stop_ids, cfg.min_piece_chars),
        ("rare", per_token["count"].to_numpy() < cfg.min_token_count),
        ("too_frequent", per_token["doc_freq"].to_numpy() > cfg.max_doc_freq),
        ("function_word", per_token["lang_doc_freq"].to_numpy() > cfg.max_lang_doc_freq),
    ]
    per_token["reason"] = first_reason(checks, len(per_token))
    return per_token


def piece_checks(
    ids: np.ndarray,
    pieces: Sequence[str] | Mapping[int, str],
    content: np.ndarray,
    stop_ids: Iterable[int] | None,
    min_piece_chars: int,
) -> list[tuple[str, np.ndarray]]:
    """The filters that look at the piece only (``not_content``, ``no_letters``, ``not_word``,
    ``piece_too_short``, in this order), one boolean mask each over ``ids``: they depend on the vocabulary, not on
    the counts."""
    stops = set(int(t) for t in stop_ids or ())
    texts = [str(pieces[int(t)]) for t in ids]
    return [
        ("not_content", np.array([not content[t] or int(t) in stops for t in ids], dtype=bool)),
        ("no_letters", np.array([not has_letters(p) for p in texts], dtype=bool)),
        ("not_word", np.array([not can_be_word(p) for p in texts], dtype=bool)),
        ("piece_too_short", np.array([piece_width(p) < min_piece_chars for p in texts], dtype=bool)),
    ]


def piece_table(
    pieces: Sequence[str],
    content: np.ndarray,
    stop_ids: Iterable[int] | None,
    min_piece_chars: int,
) -> pd.DataFrame:
    """The whole vocabulary with its piece-level drop reason: ``token_id, piece, piece_reason`` (None where the
    piece passes :func:`piece_checks`); the same for every count, so it is computed once per vocabulary."""
    ids = np.arange(len(pieces), dtype=np.int64)
    checks = piece_checks(ids, pieces, content, stop_ids, min_piece_chars)
    return pd.DataFrame({"token_id": ids.astype(np.int32), "piece": [str(p) for p in pieces],
                         "piece_reason": first_reason(checks, len(ids))})


def first_reason(checks: Sequence[tuple[str, np.ndarray]], n: int) -> np.ndarray:
    """Per row, the name of the first check whose mask is True (None where none is): the drop ``reason``."""
    reason = np.full(n, None, dtype=object)
    for name, hit in reversed(checks):  # the first failing check wins
        reason[hit] = name
    return reason


def _lang_doc_freq(stats: pd.DataFrame, docs_by_lang: Mapping[str, int], min_docs: int) -> pd.Series:
    """Per token: the largest ``doc_count(token, lang) / docs_by_lang[lang]`` over languages with enough
    documents (a span language's count over the documents whose main language it is: an approximation that
    code-switched documents push slightly up)."""
    big = {lang: n for lang, n in docs_by_lang.items() if n >= max(min_docs, 1)}
    per = stats.groupby(["token_id", "lang"], as_index=False)["doc_count"].sum()
    per = per[per["lang"].isin(list(big))]
    if per.empty:
        return pd.Series(dtype=float)
    share = np.minimum(per["doc_count"].to_numpy() / per["lang"].map(big).to_numpy(dtype=float), 1.0)
    return pd.Series(share, index=per["token_id"].to_numpy()).groupby(level=0).max()


def associations(
    cooc: pd.DataFrame,
    stats: pd.DataFrame,
    *,
    n_docs: int,
    association: str,
    cross_lingual_only: bool,
    window: int | None = None,
) -> pd.DataFrame:
    """``cooc`` rows (one window ``window``) with an ``assoc`` column: PPMI or log-lift (module docstring).
    With ``cross_lingual_only`` the rows with ``lang_a == lang_b`` are left out. Both measures take their
    marginals from ``token_stats`` (all occurrences), not from the ``min_count``-pruned pair table: row sums of
    a pruned table shrink most for rare tokens, which would inflate every frequent token's PPMI with them."""
    edges = cooc[cooc["lang_a"] != cooc["lang_b"]] if cross_lingual_only else cooc
    edges = edges[[*PAIR_KEYS, "count", "doc_count"]].reset_index(drop=True)
    if edges.empty:
        return edges.assign(assoc=pd.Series(dtype=float))
    check_association(association, window)
    marginal = stats.groupby(["token_id", "lang"])[MARGINAL[association]].sum()
    m_a = _lookup(marginal, edges["token_a"], edges["lang_a"])
    m_b = _lookup(marginal, edges["token_b"], edges["lang_b"])
    _need_stats(m_a, m_b)
    assoc = association_values(association, edges["count"].to_numpy(), edges["doc_count"].to_numpy(), m_a, m_b,
                               window=window, total=float(stats["count"].sum()), n_docs=n_docs)
    return edges.assign(assoc=assoc)



def check_association(association: str, window: int | None) -> None:
    if association not in MARGINAL:
        raise ValueError(f"unknown association {association!r}: use 'ppmi' or 'lift'")
    if association == "ppmi" and (window is None or window < 2):
        raise ValueError("ppmi needs the window the counts were made with (>= 2)")


def association_values(
    association: str,
    count: np.ndarray,
    doc_count: np.ndarray,
    marginal_a: np.ndarray,
    marginal_b: np.ndarray,
    *,
    window: int | None,
    total: float,
    n_docs: int,
) -> np.ndarray:
    """Association per edge from its counts and its two nodes' marginals (``MARGINAL[association]`` of
    ``token_stats``, as float): PPMI against ``total`` counted occurrences, or log-lift over ``n_docs``
    documents (module docstring). Element-wise, so any split of the edges into batches gives the same values."""
    check_association(association, window)
    if association == "ppmi":
        assert window is not None
        expected = marginal_a * marginal_b * 2.0 * (window - 1) / total
        return np.maximum(np.log(count / expected), 0.0)
    return np.log(doc_count * float(n_docs) / (marginal_a * marginal_b))


def hub_scores(strong: pd.DataFrame) -> pd.DataFrame:
    """Per token with at least one strong edge: ``token_id, strength, degree, n_langs, eff_langs, score``
    (module docstring). ``degree`` counts distinct partner tokens, ``n_langs`` the languages at either end of
    its strong edges. The sums run over :func:`half_edges` in their canonical order, so the scores do not
    depend on the order of ``strong``."""
    return hub_stats(half_edges(strong))



def half_edges(strong: pd.DataFrame) -> pd.DataFrame:
    """Each edge once from each end (``HALF_COLUMNS``), in the canonical order the hub sums run in: per token,
    the edges where it is ``token_a`` (by ``token_b, lang_a, lang_b``), then those where it is ``token_b`` (by
    ``token_a, lang_a, lang_b``). Any set of rows holding all of a token's half edges in this relative order
    gives that token the same :func:`hub_stats`, to the last bit."""
    edges = strong.sort_values(PAIR_KEYS, kind="stable")
    return pd.concat(
        [
            edges[["token_a", "lang_a", "token_b", "lang_b", "assoc"]].set_axis(HALF_COLUMNS, axis=1),
            edges[["token_b", "lang_b", "token_a", "lang_a", "assoc"]].set_axis(HALF_COLUMNS, axis=1),
        ],
        ignore_index=True,
    )


def hub_stats(half: pd.DataFrame) -> pd.DataFrame:
    """:func:`hub_scores` from half edges (``HALF_COLUMNS``), summed per token in the order of ``half``."""
    per_token = half.groupby("token_id").agg(strength=("assoc", "sum"), degree=("partner", "nunique"))
    lang_weight = (
        pd.concat(
            [
                half[["token_id", "lang", "assoc"]],
                half[["token_id", "partner_lang", "assoc"]].rename(columns={"partner_lang": "lang"}),
            ]
        )
        .groupby(["token_id", "lang"])["assoc"]
        .sum()
    )
    share = lang_weight / lang_weight.groupby(level="token_id").transform("sum")
    entropy = (-share * np.log(share.where(share > 0, 1.0))).groupby(level="token_id").sum()
    per_token["n_langs"] = lang_weight.groupby(level="token_id").size()
    per_token["eff_langs"] = np.exp(entropy)
    per_token["score"] = per_token["strength"] * np.log1p(per_token["eff_langs"])
    return per_token.reset_index()


def build_pivots(
    cooc: pd.DataFrame,
    stats: pd.DataFrame,
    *,
    n_docs: int,
    pieces: Sequence[str] | Mapping[int, str],
    content: np.ndarray,
    cfg: PivotsConfig,
    pivot_set: str,
    tokenizer: str,
    stop_ids: Iterable[int] | None = None,
    docs_by_lang: Mapping[str, int] | None = None,
) -> PivotResult:
    """The top ``cfg.top_k`` hub tokens (module docstring) from ``cooc`` (aggregated ``cooccurrence`` rows of
    one window) and ``token_stats`` over ``n_docs`` documents, the positions of ``cfg.languages`` only; ranked by
    score, ties by token id."""
    cooc_l, stats_l = language_rows(cooc, stats, cfg.languages)
    assert cooc_l is not None and stats_l is not None
    cooc, stats = cooc_l, stats_l
    tokens = token_filter(stats, n_docs=n_docs, pieces=pieces, content=content, cfg=cfg, stop_ids=stop_ids,
                          docs_by_lang=docs_by_lang)
    kept = tokens.loc[tokens["reason"].isna(), "token_id"].to_numpy()
    edges = associations(
        cooc, stats, n_docs=n_docs, association=cfg.association, cross_lingual_only=cfg.cross_lingual_only,
        window=cfg.window,
    )
    strong = edges[
        (edges["count"] >= cfg.min_pair_count)
        & (edges["assoc"] >= cfg.min_assoc)
        & edges["token_a"].isin(kept)
        & edges["token_b"].isin(kept)
    ]
    hubs = hub_scores(strong)
    tokens = tokens.merge(hubs, on="token_id", how="left")
    tokens["degree"] = tokens["degree"].fillna(0).astype(np.int64)
    tokens["n_langs"] = tokens["n_langs"].fillna(0).astype(np.int32)
    tokens["score"] = tokens["score"].fillna(0.0)
    undecided = tokens["reason"].isna()
    tokens.loc[undecided & (tokens["degree"] == 0), "reason"] = "no_strong_association"
    tokens.loc[tokens["reason"].isna() & (tokens["n_langs"] < cfg.min_langs), "reason"] = "few_langs"
    tokens = tokens.sort_values(["score", "token_id"], ascending=[False, True], kind="stable")
    candidates = tokens["reason"].isna()
    beyond_top_k = candidates & (candidates.cumsum() > cfg.top_k)
    tokens.loc[beyond_top_k, "reason"] = "below_top_k"
    pivots = tokens[tokens["reason"].isna()].copy()
    pivots["rank"] = np.arange(1, len(pivots) + 1, dtype=np.int32)
    pivots["token_id"] = pivots["token_id"].astype(np.int32)
    pivots["score"] = pivots["score"].astype(np.float64)
    pivots["pivot_set"] = pivot_set
    pivots["tokenizer"] = tokenizer
    return PivotResult(pivots[PIVOT_COLUMNS].reset_index(drop=True), tokens.reset_index(drop=True))


@dataclass(frozen=True)
class PivotCandidateIndex:
    """What :func:`pair_pivot_candidates` needs from the graph, computed once for many word pairs: per token,
    its co-occurring tokens with document counts (languages summed, sorted by the word token so that one word's
    rows are a slice), and every token's document frequency."""

    word_token: np.ndarray
    partner: np.ndarray
    doc_count: np.ndarray
    df: pd.Series

    @classmethod
    def build(cls, cooc: pd.DataFrame, stats: pd.DataFrame, languages: Iterable[str] | None = None
              ) -> PivotCandidateIndex:
        """From ``cooccurrence`` and ``token_stats`` rows (of one window); with ``languages``, the positions of
        those languages only (:func:`language_rows`)."""
        if languages is not None:
            cooc_l, stats_l = language_rows(cooc, stats, languages)
            assert cooc_l is not None and stats_l is not None
            cooc, stats = cooc_l, stats_l
        df = stats.groupby("token_id")["doc_count"].sum()
        pair_dc = cooc.groupby(["token_a", "token_b"], as_index=False)["doc_count"].sum()
        word = np.concatenate([pair_dc["token_a"].to_numpy(), pair_dc["token_b"].to_numpy()]).astype(np.int64)
        partner = np.concatenate([pair_dc["token_b"].to_numpy(), pair_dc["token_a"].to_numpy()]).astype(np.int64)
        dc = np.concatenate([pair_dc["doc_count"].to_numpy(), pair_dc["doc_count"].to_numpy()]).astype(np.float64)
        order = np.argsort(word, kind="stable")
        return cls(word[order], partner[order], dc[order], df)

    def near(self, token: int) -> pd.Series:
        """Document counts of ``token`` with each partner token (indexed by partner)."""
        lo, hi = np.searchsorted(self.word_token, [token, token + 1])
        return pd.Series(self.doc_count[lo:hi], index=self.partner[lo:hi])


def pair_pivot_candidates(
    cooc: pd.DataFrame | None,
    stats: pd.DataFrame | None,
    ids_a: Sequence[int],
    ids_b: Sequence[int],
    *,
    n_docs: int,
    top_n: int = 100,
    keep: np.ndarray | None = None,
    index: PivotCandidateIndex | None = None,
    languages: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Pivot candidates of one word pair (the paper's pivots between a word and its translation): tokens that
    co-occur with both words more often than their background document frequency predicts, ranked by the
    smaller of the two excesses.

    Languages are summed over. A word's co-occurrence document count with token ``t`` is the minimum over the
    word's tokens that occur in the statistics (all of them must be near ``t``), its document frequency the
    minimum of its tokens' ones (an upper bound). ``excess_w(t) = d(t, w) - df(w) (df(t) / N)``: co-occurring
    documents beyond what independence predicts, so generally frequent tokens drop out. Tokens of either word,
    candidates outside ``keep`` (a mask over the vocabulary, e.g. :func:`word_piece_mask`) and tokens with no
    positive excess for both words are left out. Columns: ``token_id,
    doc_count_a, doc_count_b, excess_a, excess_b, score, rank``. With ``languages``, only positions in spans of
    those languages count (:func:`language_rows`). For many pairs over one graph, build the
    :class:`PivotCandidateIndex` once and pass it as ``index`` (``cooc``, ``stats`` and ``languages`` are then
    unused).
    """
    columns = ["token_id", "doc_count_a", "doc_count_b", "excess_a", "excess_b", "score", "rank"]
    if index is None:
        if cooc is None or stats is None:
            raise ValueError("pass cooc and stats, or an index")
        index = PivotCandidateIndex.build(cooc, stats, languages)
    df = index.df
    per_word = []
    for ids in (ids_a, ids_b):
        word = sorted({int(t) for t in ids} & set(df.index))
        if not word:
            return pd.DataFrame(
                {c: pd.Series(dtype="int64" if c in ("token_id", "rank") else float) for c in columns}
            )
        table = pd.concat([index.near(t).groupby(level=0).sum().rename(t) for t in word], axis=1)
        dc = table.reindex(columns=word).fillna(0).min(axis=1)
        per_word.append((dc, float(df.loc[word].min())))
    (dc_a, df_a), (dc_b, df_b) = per_word
    out = pd.DataFrame({"doc_count_a": dc_a, "doc_count_b": dc_b}).fillna(0)
    out.index.name = "token_id"
    out = out.reset_index()
    background = df.reindex(out["token_id"]).fillna(0).to_numpy() / n_docs
    out["excess_a"] = out["doc_count_a"] - df_a * background
    out["excess_b"] = out["doc_count_b"] - df_b * background
    out["score"] = np.minimum(out["excess_a"], out["excess_b"])
    drop = out["token_id"].isin({int(t) for t in (*ids_a, *ids_b)}) | (out["score"] <= 0)
    if keep is not None:
        drop |= ~keep[out["token_id"].to_numpy()]
    out = out[~drop].sort_values(["score", "token_id"], ascending=[False, True], kind="stable").head(top_n)
    out["rank"] = np.arange(1, len(out) + 1)
    out["token_id"] = out["token_id"].astype(np.int64)
    return out[columns].reset_index(drop=True)


def word_piece_mask(pieces: Sequence[str], min_piece_chars: int) -> np.ndarray:
    """Over the vocabulary: the pieces a pivot may be (letters, :func:`can_be_word`, at least
    ``min_piece_chars`` wide), the piece filters of the pivot set less the content mask."""
    return np.array([has_letters(p) and can_be_word(p) and piece_width(p) >= min_piece_chars for p in pieces],
                    dtype=bool)


def _need_stats(a: np.ndarray, b: np.ndarray) -> None:
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(
            "co-occurrence rows whose (token, lang) is missing from token_stats: "
            "the two tables come from different inputs"
        )


def _lookup(series: pd.Series, tokens: pd.Series, langs: pd.Series) -> np.ndarray:
    index = pd.MultiIndex.from_arrays([tokens, langs])
    return series.reindex(index).to_numpy(dtype=float)
