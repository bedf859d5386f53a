"""SentencePiece BPE: training, per-worker loading, encoding with per-token languages (pure; no pyspark).

The model is trained so that transformers' ``LlamaTokenizer`` reproduces its ids exactly, because the trainer
and the evaluator encode prompts with transformers while ``doc_tokens`` is written with SentencePiece. Each
training option below exists for that or for the corpus (man pages: indentation, option names, numbers):

* ``model_type="bpe"``: the ``tokenizers`` BPE model that ``LlamaTokenizer`` builds replays SentencePiece's BPE
  merges; it does not reproduce a unigram model.
* ``normalization_rule_name="identity"``: the converted tokenizer has no normalizer, so SentencePiece must not
  normalize either (the default ``nmt_nfkc`` rewrites full-width forms, ligatures and odd spaces).
* ``remove_extra_whitespaces=False``: keep runs of spaces and leading/trailing spaces as they are; ``tokenizers``
  never collapses them.
* ``add_dummy_prefix=False`` (with ``add_prefix_space=False`` on the transformers side): ``tokenizers``'
  Metaspace adds the ``▁`` prefix only when the text does not already start with a space, SentencePiece always
  does, so any text starting with a space or a newline would differ. Without the prefix both agree everywhere;
  the cost is that a document's first word uses its no-space piece.
* ``allow_whitespace_only_pieces=True``: runs of spaces (indentation in manual pages) become single pieces.
* ``split_digits=True``: numbers are split into digits (as Llama does), so no number piece crowds the vocabulary.
* ``byte_fallback=True``: characters outside the vocabulary (rare CJK, emoji, control characters, ``\\n``)
  become ``<0x..>`` byte pieces instead of ``<unk>``; newlines are always byte pieces because training sentences
  are lines.
* ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, no pad piece (Llama's layout). Stored ids have no BOS/EOS; the trainer
  adds ``</s>`` between packed documents.

The transformers side is :func:`hf_tokenizer`; ``split_special_tokens=True`` there makes a literal ``<s>`` in a
document text encode as characters, as SentencePiece does.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from pivot_spark.config import TokenizerConfig
from pivot_spark.steps.langcodes import UNDETERMINED
from pivot_spark.steps.langid import Span

TRAINER_OPTIONS: dict[str, Any] = {
    "normalization_rule_name": "identity",
    "remove_extra_whitespaces": False,
    "add_dummy_prefix": False,
    "allow_whitespace_only_pieces": True,
    "split_digits": True,
    "split_by_whitespace": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
}
# transformers kwargs that make LlamaTokenizer give SentencePiece's ids (checked in tests/unit/test_tokenize.py)
HF_TOKENIZER_KWARGS: dict[str, Any] = {
    "add_bos_token": False,
    "add_eos_token": False,
    "add_prefix_space": False,
    "split_special_tokens": True,
}


def training_sentences(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Non-blank lines of the texts, each at most ``max_bytes`` UTF-8 bytes (longer lines are cut at a character
    boundary rather than dropped, which is what SentencePiece would do with them)."""
    for text in texts:
        for line in text.split("\n"):
            if not line.strip():
                continue
            if len(line) * 4 > max_bytes and len(line.encode("utf-8")) > max_bytes:
                line = line.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
            yield line


def train_sentencepiece(texts: Iterable[str], out_prefix: str | Path, cfg: TokenizerConfig, *,
                        num_threads: int = 1) -> Path:
    """Train a BPE model from an in-memory iterator of documents; write ``{out_prefix}.model``; return its path.

    Deterministic: the same texts, config and ``num_threads`` give a byte-identical file (so the same content hash
    in the lake). The model is written through ``model_writer``, so the output path is not recorded inside it.
    """
    sentences = training_sentences(texts, cfg.max_sentence_length)
    first = next(sentences, None)
    if first is None:
        raise ValueError("no text to train the tokenizer on: the sample of `documents` is empty or blank")
    buf = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=_chain(first, sentences),
        model_writer=buf,
        model_type=cfg.model_type,
        vocab_size=cfg.vocab_size,
        character_coverage=cfg.character_coverage,
        byte_fallback=cfg.byte_fallback,
        max_sentence_length=cfg.max_sentence_length,
        num_threads=num_threads,
        minloglevel=1,
        **TRAINER_OPTIONS,
    )
    out = Path(f"{out_prefix}.model")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".model.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return out


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


_SP: dict[str, spm.SentencePieceProcessor] = {}
_LOCK = threading.Lock()


def get_sp(path: str | Path) -> spm.SentencePieceProcessor:
    """The SentencePiece model at ``path``, loaded once per Python process (cache keyed by resolved path)."""
    key = str(Path(path).resolve())
    with _LOCK:
        if key not in _SP:
            if not Path(key).is_file():
                raise FileNotFoundError(f"SentencePiece model {path} not found: run `pivot-spark train-tokenizer` "
                                        "or ship the model file with the job")
            _SP[key] = spm.SentencePieceProcessor(model_file=key)
        return _SP[key]


def encode_with_langs(text: str, spans: Sequence[Span], sp: spm.SentencePieceProcessor
                      ) -> tuple[np.ndarray, list[str]]:
    """Token ids (int32, no BOS/EOS) of ``text`` and, per token, the language of the span its first character
    falls in (``und`` outside every span).

    The whole text is encoded at once (so ids equal ``LlamaTokenizer``'s on the same text) and tokens are then
    assigned to spans by their character offset (Python ``str`` index, i.e. code points, not UTF-8 bytes).
    Offsets come from the pieces' lengths (:func:`_piece_lengths`): with identity normalization a piece covers
    exactly its own characters, and the byte pieces of one character share that character's offset. Where that
    does not add up to the text (a model with ``<unk>`` output or another normalization), SentencePiece's own
    ``offset_mapping`` is used, which is about twice as slow.
    """
    ids = np.asarray(sp.encode(text, return_type="numpy"), dtype=np.int32)
    if len({s.lang for s in spans}) <= 1 and _covers(spans, len(text)):
        return ids, [spans[0].lang if spans else UNDETERMINED] * len(ids)
    lengths, continuation = _piece_lengths(sp)
    n = lengths[ids]
    if n.min(initial=0) >= 0 and int(n.sum()) == len(text):
        begins = np.cumsum(n) - n - continuation[ids]
    else:
        offsets = sp.encode(text, return_type="offset_mapping")["offsets"]
        begins = np.fromiter((o[0] for o in offsets), dtype=np.int64, count=len(ids))
    return ids, token_langs_at(begins, spans)


@lru_cache(maxsize=8)
def _piece_lengths(sp: spm.SentencePieceProcessor) -> tuple[np.ndarray, np.ndarray]:
    """Per id: characters the piece covers (-1 for ``<unk>``/control pieces, whose surface is unknown), and 1
    for byte pieces that continue a UTF-8 character (these count 0 characters; the character's lead byte counts 1).
    """
    lengths = np.zeros(sp.get_piece_size(), dtype=np.int64)
    continuation = np.zeros(sp.get_piece_size(), dtype=np.int64)
    for i in range(sp.get_piece_size()):
        if sp.is_byte(i):
            continuation[i] = 0x80 <= int(sp.id_to_piece(i)[3:5], 16) < 0xC0
            lengths[i] = 1 - continuation[i]
        elif sp.is_unknown(i) or sp.is_control(i):
            lengths[i] = -1
        else:
            lengths[i] = len(sp.id_to_piece(i))
    return lengths, continuation


def _covers(spans: Sequence[Span], n: int) -> bool:
    return not spans or (spans[0].start <= 0 and spans[-1].end >= n and all(
        a.end >= b.start for a, b in zip(spans, spans[1:], strict=False)))


def token_langs_at(begins: np.ndarray, spans: Sequence[Span]) -> list[str]:
    """Language of the span holding each character offset in ``begins`` (spans sorted, non-overlapping)."""
    if not spans:
        return [UNDETERMINED] * len(begins)
    starts = np.fromiter((s.start for s in spans), dtype=np.int64, count=len(spans))
    ends = np.fromiter((s.end for s in spans), dtype=np.int64, count=len(spans))
    idx = np.searchsorted(starts, begins, side="right") - 1
    inside = (idx >= 0) & (begins < ends[np.maximum(idx, 0)])
    names = np.array([s.lang for s in spans] + [UNDETERMINED], dtype=object)
    return names[np.where(inside, idx, len(spans))].tolist()


def content_mask(sp: spm.SentencePieceProcessor) -> np.ndarray:
    """Per vocabulary id: True for content pieces, those with a letter or combining mark (any script).

    False for ``<unk>``/``<s>``/``</s>``, byte-fallback ``<0x..>`` pieces, and pieces made only of whitespace
    (``▁``), digits, punctuation or symbols (emoji included): they carry no meaning that could pivot between
    languages, so the co-occurrence step does not count them.
    """
    mask = np.zeros(sp.get_piece_size(), dtype=bool)
    for i in range(len(mask)):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i):
            continue
        mask[i] = any(unicodedata.category(c)[0] in "LM" for c in sp.id_to_piece(i).replace("\u2581", ""))
    return mask


_MASKS: dict[tuple[str, str | None], tuple[np.ndarray, list[int]]] = {}
_PIECES: dict[str, np.ndarray] = {}


def content_and_stops(sp_path: str, stop_list: str | None) -> tuple[np.ndarray, list[int]]:
    """The :func:`content_mask` of the model at ``sp_path`` and the ids of the pieces listed in ``stop_list`` (a
    file, one piece a line; pieces the model does not know are left out), computed once per Python process."""
    key = (sp_path, stop_list)
    if key not in _MASKS:
        sp = get_sp(sp_path)
        _MASKS[key] = (content_mask(sp), _stop_ids(sp, stop_list))
    return _MASKS[key]


def _stop_ids(sp: spm.SentencePieceProcessor, stop_list: str | None) -> list[int]:
    if not stop_list:
        return []
    pieces = [p.strip() for p in Path(stop_list).read_text(encoding="utf-8").splitlines() if p.strip()]
    ids = [sp.piece_to_id(p) for p in pieces]
    return [i for i in ids if i != sp.unk_id()]


def vocab_pieces(sp_path: str) -> np.ndarray:
    """Every piece of the vocabulary of the model at ``sp_path``, indexed by id (an object array), computed once
    per Python process."""
    if sp_path not in _PIECES:
        sp = get_sp(sp_path)
        _PIECES[sp_path] = np.array([sp.id_to_piece(i) for i in range(sp.get_piece_size())], dtype=object)
    return _PIECES[sp_path]


def hf_tokenizer(sp_path: str | Path, *, add_bos_token: bool = False) -> Any:
    """transformers' ``LlamaTokenizer`` for a model trained here, configured to give SentencePiece's ids
    (``add_bos_token``: with BOS in front, as the trainer packs documents).

    ``from_pretrained`` on a folder holding ``tokenizer.model`` converts the SentencePiece model (constructing
    ``LlamaTokenizer(vocab_file=...)`` directly does not: it yields an empty vocabulary in transformers 5).
    ``save_pretrained`` on the result writes ``tokenizer.json`` and ``tokenizer_config.json`` (these kwargs
    included), which ``AutoTokenizer.from_pretrained`` loads back with the same ids.
    """
    import tempfile

    from transformers import LlamaTokenizer

    src = Path(sp_path).resolve()
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "tokenizer.model").symlink_to(src)
        return LlamaTokenizer.from_pretrained(d, **{**HF_TOKENIZER_KWARGS, "add_bos_token": add_bos_token})
