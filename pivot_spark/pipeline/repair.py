"""``pivot-spark repair``: one document per content hash in ``documents`` again.

Ingest keeps the first occurrence of every text, against its own input and the pinned ``documents``; a table
damaged by writers that bypassed the lake's writer lease (two ingests at once before the lease existed, or a
table written by other tools) can hold a text twice, which later jobs would annotate and count twice and which
``select`` refuses (``selection metadata has duplicate doc_id values``). Repair finds those rows and removes
them in one commit:

- **Which row stays**: the first occurrence per ``content_hash``, in commit order of the files (their
  ``modificationTime`` in the Delta log: when the bridge committed them, when Delta Spark wrote them), then by
  file path and row position within the file, the order ingest itself keeps.
- **How**: only the ``content_hash`` column of the pinned version is read (about 40 bytes a document, on the
  driver); each file holding a row to drop is rewritten without it, and one Delta commit removes those files and
  adds their rewrites (files without duplicates stay as they are).
- **Idempotent**: a repaired table has no duplicates, so a second repair commits nothing; a repair killed before
  its commit changed nothing (its rewritten files are orphans that ``pivot-spark vacuum`` removes).

Repair runs through the runner like every job (its ``runs`` row, the writer lease); its run id is derived from
the pinned ``documents`` version. It repairs ``documents`` only: if ``annotate`` already ran on the duplicates,
their annotations and counts are in ``doc_tokens`` and ``cooccurrence`` too (the summary says how many
``doc_tokens`` rows there are per document more than one).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake.transaction import RemoveAction

from pivot_spark.config import PivotConfig
from pivot_spark.lake.core import FileEntry
from pivot_spark.lake.spark import ROW_GROUP_ROWS, _stats, filesystem
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.schemas import TABLES

TABLE = "documents"


def duplicate_rows(hashes: list[pa.Array]) -> list[list[int]]:
    """For the ``content_hash`` column of each file, in commit order: the row positions to drop, per file (every
    row whose hash occurred earlier, in this file or an earlier one)."""
    n = [len(h) for h in hashes]
    if not sum(n):
        return [[] for _ in hashes]
    keys = pa.table({
        "h": pa.concat_arrays([h.cast(pa.string()) for h in hashes]),
        "file": pa.array([i for i, k in enumerate(n) for _ in range(k)], pa.int64()),
        "row": pa.array([r for k in n for r in range(k)], pa.int64()),
    })
    order = pc.add(pc.multiply(keys["file"], pa.scalar(1 << 32, pa.int64())), keys["row"])
    keys = keys.append_column("order", order)
    first = keys.group_by("h").aggregate([("order", "min")])
    keep = pc.is_in(keys["order"], value_set=first["order_min"])
    drop = keys.filter(pc.invert(keep))
    out: list[list[int]] = [[] for _ in hashes]
    for f, r in zip(drop["file"].to_pylist(), drop["row"].to_pylist(), strict=True):
        out[f].append(r)
    return out


def _doc_tokens_surplus(ctx: RunContext) -> int:
    """``doc_tokens`` rows beyond one per (document, tokenizer, language model) at the version now."""
    t = ctx.lake.read_arrow("doc_tokens", columns=["doc_id", "tokenizer", "lid_model"])
    if not t.num_rows:
        return 0
    return t.num_rows - t.group_by(["doc_id", "tokenizer", "lid_model"]).aggregate([]).num_rows


def repair(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    """Remove the rows of ``documents`` whose text an earlier row already holds (see the module)."""

    def body(ctx: RunContext) -> dict[str, Any]:
        version = ctx.pin(TABLE)
        dt = ctx.lake.delta(TABLE, version)
        if dt is None:
            return {"documents": 0, "duplicates": 0, "note": "no documents table"}
        acts = pa.table(dt.get_add_actions(flatten=True))
        pcols = [c for c in acts.column_names if c.startswith("partition.")]
        files = sorted(acts.select(["path", "size_bytes", "modification_time", *pcols]).to_pylist(),
                       key=lambda a: (a["modification_time"], a["path"]))
        fs, root = filesystem(ctx.lake.table_uri(TABLE), ctx.lake.storage_options)
        hashes = []
        for f in files:
            with fs.open_input_file(f"{root}/{f['path']}") as src:
                hashes.append(pq.read_table(src, columns=["content_hash"]).column(0).combine_chunks())
        drops = duplicate_rows(hashes)
        n_docs = sum(len(h) for h in hashes)
        n_dups = sum(len(d) for d in drops)
        counts: dict[str, Any] = {"documents": n_docs, "duplicates": n_dups, "kept": n_docs - n_dups,
                                  "files_rewritten": sum(1 for d in drops if d)}
        surplus = _doc_tokens_surplus(ctx)
        if surplus:
            counts["doc_tokens_surplus"] = surplus
        if not n_dups:
            return counts
        schema, partition_by = TABLES[TABLE]
        data_schema = pa.schema([f for f in schema if f.name not in partition_by])
        prefix = f"repair-{uuid.uuid4().hex[:12]}"
        adds: list[FileEntry] = []
        removes: list[RemoveAction] = []
        for i, (f, drop) in enumerate(zip(files, drops, strict=True)):
            if not drop:
                continue
            with fs.open_input_file(f"{root}/{f['path']}") as src:
                t = pq.read_table(src)
            mask = pc.invert(pc.is_in(pa.array(range(t.num_rows), pa.int64()), value_set=pa.array(drop, pa.int64())))
            kept = t.filter(mask).select(data_schema.names).cast(data_schema)
            pv = {c.removeprefix("partition."): (None if f[c] is None else str(f[c])) for c in pcols}
            removes.append(RemoveAction(f["path"], True, int(time.time() * 1000), f["size_bytes"], pv))
            if not kept.num_rows:
                continue
            folder = f["path"].rsplit("/", 1)[0] + "/" if "/" in f["path"] else ""
            rel = f"{folder}{prefix}-{i:05d}.parquet"
            with fs.open_output_stream(f"{root}/{rel}") as sink:
                pq.write_table(kept, sink, row_group_size=ROW_GROUP_ROWS[TABLE], compression="zstd")
            adds.append(FileEntry(rel, fs.get_file_info(f"{root}/{rel}").size, pv, kept.num_rows, _stats(kept)))
        ctx.stage_files(TABLE, adds, mode="append", removes=removes)
        return counts

    # The pinned version is part of the run id (documents is not declared an output): a repair of the repaired
    # version is a run of its own, which finds nothing to remove.
    return run_job(cfg, "repair", body, input_tables=(TABLE,), quiet=quiet)
