"""Test and benchmark support: a real ``train_set`` without Spark (local text -> SentencePiece BPE -> token ids ->
Delta).

The Spark ``select`` job writes the production table; this module writes one with the same schema, partitioning
and tokenizer layout from text that is on any Debian machine (licenses, package copyright files and changelogs),
so the trainer's tests and benchmarks run on real token statistics on a machine with no JVM (a GPU node too). Not
part of the installed package: tests import it as ``tests.support.textset``, benchmarks with the repository root
on ``sys.path``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import sentencepiece as spm
from deltalake import DeltaTable, WriterProperties, write_deltalake

from pivot_spark.artifacts import store_tokenizer
from pivot_spark.schemas import TRAIN_SET

TEXT_ROOTS = ("/usr/share/common-licenses", "/usr/share/doc")


def local_texts(max_bytes: int, roots: Iterable[str] = TEXT_ROOTS) -> Iterator[str]:
    """Plain and gzip'd text files under ``roots``, in sorted order, up to ``max_bytes`` of text."""
    seen = 0
    for root in roots:
        for dirpath, dirnames, filenames in sorted(os.walk(root)):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if p.is_symlink() or not (name.endswith(".gz") or "." not in name or name.endswith((".txt", ".md"))):
                    continue
                try:
                    raw = gzip.decompress(p.read_bytes()) if name.endswith(".gz") else p.read_bytes()
                    text = raw.decode("utf-8")
                except (OSError, UnicodeDecodeError, gzip.BadGzipFile):
                    continue
                if text.strip():
                    yield text
                    seen += len(raw)
                    if seen >= max_bytes:
                        return


def documents(texts: Iterable[str], max_chars: int = 4000) -> list[str]:
    """Split texts into documents at blank lines, about ``max_chars`` each."""
    docs: list[str] = []
    for text in texts:
        cur: list[str] = []
        size = 0
        for para in text.split("\n\n"):
            cur.append(para)
            size += len(para)
            if size >= max_chars:
                docs.append("\n\n".join(cur))
                cur, size = [], 0
        if cur and size > 0:
            docs.append("\n\n".join(cur))
    return [d for d in docs if d.strip()]


def train_sentencepiece(docs: list[str], out_dir: str | os.PathLike[str], vocab_size: int) -> Path:
    """A BPE model trained exactly as ``pivot-spark train-tokenizer`` trains one (same options), so that
    ``pivot_spark.steps.tokenize.hf_tokenizer`` reproduces its ids."""
    from pivot_spark.config import TokenizerConfig
    from pivot_spark.steps.tokenize import train_sentencepiece as project_trainer

    cfg = TokenizerConfig(vocab_size=vocab_size)  # type: ignore[call-arg]
    return project_trainer(docs, Path(out_dir) / f"bpe{vocab_size}", cfg, num_threads=os.cpu_count() or 1)


def write_train_set(lake: str, docs: list[str], sp_model: str | os.PathLike[str], *, selection: str = "demo",
                    arm: str = "pivot", n_shards: int = 4, rows_per_group: int = 64, mode: Literal["append", "overwrite"] = "append") -> int:
    """Encode ``docs`` and write them as one selection/arm of ``{lake}/train_set``; return the new version.

    Shards are assigned by a hash of the doc id (as ``select`` does), so the last shard can be held out.
    """
    tok_hash = store_tokenizer(lake, sp_model)
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    ids = sp.encode(docs, num_threads=os.cpu_count() or 1)
    doc_ids = [hashlib.sha256(f"{selection}/{arm}/{i}/{d[:64]}".encode()).hexdigest()[:16] for i, d in enumerate(docs)]
    shard = [int(d[:8], 16) % n_shards for d in doc_ids]
    table = pa.table({
        "selection": pa.array([selection] * len(docs)),
        "arm": pa.array([arm] * len(docs)),
        "doc_id": pa.array(doc_ids),
        "token_ids": pa.array(ids, type=pa.list_(pa.int32())),
        "n_tokens": pa.array([len(x) for x in ids], type=pa.int32()),
        "shard": pa.array(shard, type=pa.int32()),
        "lang": pa.array(["en"] * len(docs)),
        "tokenizer": pa.array([tok_hash] * len(docs)),
    }, schema=TRAIN_SET)
    uri = f"{lake.rstrip('/')}/train_set"
    write_deltalake(uri, table, mode=mode, partition_by=["selection", "arm"],  # type: ignore[call-overload]
                    writer_properties=WriterProperties(max_row_group_size=rows_per_group, compression="ZSTD"))
    return DeltaTable(uri).version()


def build_demo_lake(lake: str, *, text_bytes: int = 2_000_000, vocab_size: int = 2000, selection: str = "demo",
                    arms: Iterable[str] = ("pivot",), n_shards: int = 4, rows_per_group: int = 64) -> int:
    """Text -> tokenizer -> train_set in one call, for tests, benchmarks and demos; returns the table version."""
    docs = documents(local_texts(text_bytes))
    with tempfile.TemporaryDirectory() as tmp:
        model = train_sentencepiece(docs, tmp, vocab_size)
        version = -1
        for k, arm in enumerate(arms):
            part = docs if k == 0 else list(np.random.default_rng(k).permutation(docs))
            version = write_train_set(lake, part, model, selection=selection, arm=arm, n_shards=n_shards,
                                      rows_per_group=rows_per_group)
    return version
