"""``cooccur``, ``pair-cooccur``, ``pivots``, ``score`` and ``select``: from tokens to a training selection.

- cooccur: per snapshot not yet counted for the current tokenizer and windows, each task counts its documents'
  windowed pairs with the vectorized :func:`~pivot_spark.steps.cooccur.count_pairs` and merges its batches'
  partial counts before anything is shuffled; Spark sums the partials by key and prunes by ``min_count``.
  Counts are additive: each snapshot's rows are its own, so an incremental rebuild counts only new documents.
- pivots: the hub tokens of the cross-lingual graph of one window (counts summed over snapshots).
- score: each document's pivot proportion for a pivot set.
- select: arms filled to one token budget from per-document metadata; rows joined back to ``doc_tokens``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pivot_spark import models
from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.annotate import _ship, _shipped, current_tokenizer
from pivot_spark.pipeline.runner import RunContext, ok_runs, run_job
from pivot_spark.schemas import COOCCURRENCE, DOC_PIVOT, PAIR_COOCCURRENCE, TOKEN_STATS

# cooccur's task output: pair rows and token rows in one pass over the data (kind tells them apart).
PARTIAL = pa.schema([
    pa.field("kind", pa.string()), pa.field("snapshot", pa.string()), pa.field("window", pa.int32()),
    pa.field("token_a", pa.int32()), pa.field("token_b", pa.int32()),
    pa.field("lang_a", pa.string()), pa.field("lang_b", pa.string()),
    pa.field("count", pa.int64()), pa.field("doc_count", pa.int64()), pa.field("piece", pa.string()),
])
MERGE_ROWS = 4_000_000  # partial rows a task holds before merging them (bounds task memory)


def _need_tokenizer(lake: Lake, cfg: PivotConfig) -> str:
    tok = current_tokenizer(lake, cfg)
    if tok is None:
        raise FileNotFoundError("no tokenizer in this lake: run `pivot-spark train-tokenizer` and `annotate` first")
    return tok


def _stop_ids(sp: Any, stop_list: str | None) -> list[int]:
    if not stop_list:
        return []
    pieces = [p.strip() for p in Path(stop_list).read_text(encoding="utf-8").splitlines() if p.strip()]
    ids = [sp.piece_to_id(p) for p in pieces]
    return [i for i in ids if i != sp.unk_id()]


_KEEP: dict[tuple[str, str | None], tuple[np.ndarray, list[int]]] = {}


def content_and_stops(sp_path: str, stop_list: str | None) -> tuple[np.ndarray, list[int]]:
    """The content mask and stop ids of a tokenizer, computed once per Python worker."""
    from pivot_spark.steps.tokenize import content_mask, get_sp

    key = (sp_path, stop_list)
    if key not in _KEEP:
        sp = get_sp(sp_path)
        _KEEP[key] = (content_mask(sp), _stop_ids(sp, stop_list))
    return _KEEP[key]


def counted_snapshots(lake: Lake, tok: str) -> set[tuple[str, int]]:
    """(snapshot, window) pairs already counted with tokenizer ``tok`` (from the runs of cooccur)."""
    done: set[tuple[str, int]] = set()
    for r in ok_runs(lake, "cooccur"):
        c = json.loads(r["counts"])
        if c.get("tokenizer") == tok:
            done |= {(s, int(w)) for s, ws in c.get("counted", {}).items() for w in ws}
    return done


def _merge_partials(parts: list[pa.Table]) -> pa.Table:
    t = pa.concat_tables(parts)
    keys = ["kind", "snapshot", "window", "token_a", "token_b", "lang_a", "lang_b", "piece"]
    g = t.group_by(keys, use_threads=False).aggregate([("count", "sum"), ("doc_count", "sum")])
    return g.rename_columns([*keys, "count", "doc_count"]).select(PARTIAL.names).cast(PARTIAL)


def cooccur(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    windows = sorted(set(cfg.cooccur.windows))
    done = counted_snapshots(lake, tok)

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.cooccur import count_pairs, token_stats
        from pivot_spark.steps.tokenize import get_sp

        cc = cfg.cooccur
        docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
        snaps = sorted(r["snapshot"] for r in docs.select("snapshot").distinct().collect())
        todo = {s: [w for w in windows if (s, w) not in done] for s in snaps}
        todo = {s: ws for s, ws in todo.items() if ws}
        if not todo:
            return {"tokenizer": tok, "counted": {}, "note": "every snapshot is already counted"}
        docs = docs.filter(F.col("snapshot").isin(list(todo))).select("token_ids", "token_langs", "snapshot")
        n_parts = cc.partitions or ctx.spark.sparkContext.defaultParallelism * 4
        docs = docs.repartition(n_parts)
        sp_name = _ship(ctx, str(models.tokenizer_path(ctx.lake.uri, tok)))
        stop_list = cc.stop_list
        if stop_list:
            ctx.spark.sparkContext.addFile(stop_list)
            stop_list = Path(stop_list).name
        max_doc_tokens = cc.max_doc_tokens
        todo_b = todo

        def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            sp_path = _shipped(sp_name)
            content, stops = content_and_stops(sp_path, _shipped(stop_list) if stop_list else None)
            sp = get_sp(sp_path)
            pending: list[pa.Table] = []
            rows = 0
            for b in batches:
                t = pa.Table.from_batches([b])
                for snap in pc.unique(t["snapshot"]).to_pylist():
                    part = t.filter(pc.equal(t["snapshot"], snap))
                    ts = token_stats(part, content=content, stop_ids=stops, max_doc_tokens=max_doc_tokens)
                    pieces = pa.array([sp.id_to_piece(int(i)) for i in ts["token_id"].to_numpy()], pa.string())
                    n = ts.num_rows
                    pending.append(pa.table({
                        "kind": pa.array(["token"] * n), "snapshot": pa.array([snap] * n),
                        "window": pa.array(np.zeros(n, np.int32)), "token_a": ts["token_id"],
                        "token_b": pa.array(np.full(n, -1, np.int32)), "lang_a": ts["lang"],
                        "lang_b": pa.array([""] * n), "count": ts["count"], "doc_count": ts["doc_count"],
                        "piece": pieces}, schema=PARTIAL))
                    rows += n
                    for w in todo_b[snap]:
                        pr = count_pairs(part, window=w, content=content, stop_ids=stops,
                                         max_doc_tokens=max_doc_tokens)
                        m = pr.num_rows
                        pending.append(pa.table({
                            "kind": pa.array(["pair"] * m), "snapshot": pa.array([snap] * m),
                            "window": pa.array(np.full(m, w, np.int32)), "token_a": pr["token_a"],
                            "token_b": pr["token_b"], "lang_a": pr["lang_a"], "lang_b": pr["lang_b"],
                            "count": pr["count"], "doc_count": pr["doc_count"],
                            "piece": pa.nulls(m, pa.string())}, schema=PARTIAL))
                        rows += m
                if rows >= MERGE_ROWS:  # pre-aggregate inside the partition before the shuffle
                    merged = _merge_partials(pending)
                    pending, rows = [merged], merged.num_rows
                    if rows >= MERGE_ROWS:
                        yield from merged.to_batches(max_chunksize=200_000)
                        pending, rows = [], 0
            if pending:
                yield from _merge_partials(pending).to_batches(max_chunksize=200_000)

        partial = docs.mapInArrow(count, from_arrow_schema(PARTIAL))
        # piece is a function of token_a (null on pair rows): a grouping key, so the plan stays a HashAggregate.
        keys = ["kind", "snapshot", "window", "token_a", "token_b", "lang_a", "lang_b", "piece"]
        summed = (partial.groupBy(*keys)
                  .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count"))
                  .persist(StorageLevel.MEMORY_AND_DISK))
        pairs = (summed.filter((F.col("kind") == "pair") & (F.col("count") >= cc.min_count))
                 .withColumn("tokenizer", F.lit(tok)).select(*COOCCURRENCE.names))
        stats = (summed.filter(F.col("kind") == "token")
                 .withColumnRenamed("token_a", "token_id").withColumnRenamed("lang_a", "lang")
                 .withColumn("tokenizer", F.lit(tok)).select(*TOKEN_STATS.names))
        agg = {(r["kind"], r["window"]): (r["rows"], r["kept"], r["total"]) for r in summed.groupBy("kind", "window")
               .agg(F.count("*").alias("rows"), F.sum(F.when(F.col("count") >= cc.min_count, 1).otherwise(0))
                    .alias("kept"), F.sum("count").alias("total")).collect()}
        n_pairs = ctx.write(pairs, "cooccurrence")
        # token_stats is per snapshot and window-independent: (re)write the snapshots counted now.
        ctx.write(stats, "token_stats", mode="overwrite", partition_filters=[("snapshot", "in", sorted(todo))])
        summed.unpersist()
        return {
            "tokenizer": tok, "counted": todo, "cooccurrence_rows": n_pairs,
            "pair_occurrences": {str(w): int(agg.get(("pair", w), (0, 0, 0))[2]) for w in windows},
            "distinct_pairs": {str(w): int(agg.get(("pair", w), (0, 0, 0))[0]) for w in windows},
            "kept_pairs": {str(w): int(agg.get(("pair", w), (0, 0, 0))[1]) for w in windows},
            "token_rows": int(agg.get(("token", 0), (0, 0, 0))[0]),
        }

    return run_job(cfg, "cooccur", body, input_tables=("doc_tokens",),
                   identity={"tokenizer": tok, "windows": windows}, quiet=quiet)


def pair_cooccur(cfg: PivotConfig, pairs_file: str, *, quiet: bool = False) -> dict[str, Any]:
    """Windowed co-occurrence of word pairs (each word a token sequence) over all of ``doc_tokens``."""
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    raw = [json.loads(line) for line in Path(pairs_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, r in enumerate(raw):
        missing = {"pair_id", "lang_a", "word_a", "lang_b", "word_b"} - set(r)
        if missing:
            raise ValueError(f"{pairs_file} line {i + 1}: missing {sorted(missing)}")
    windows = sorted(set(cfg.cooccur.windows))
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.cooccur import PAIR_WINDOW_COUNTS
        from pivot_spark.steps.cooccur import pair_cooccurrence as count_word_pairs
        from pivot_spark.steps.tokenize import get_sp

        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        sp = get_sp(sp_path)
        # A word as it appears in running text: with SentencePiece's word-start marker (no marker for zh/ja,
        # whose words follow other characters directly, so both spellings are searched).
        specs = []
        for r in raw:
            for a_variant, ids_a in _word_variants(sp, r["word_a"], r["lang_a"]):
                for b_variant, ids_b in _word_variants(sp, r["word_b"], r["lang_b"]):
                    specs.append((f"{r['pair_id']}|{a_variant}{b_variant}", r["lang_a"], ids_a, r["lang_b"],
                                  ids_b))
        docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select("token_ids", "token_langs")
        docs = docs.repartition(ctx.spark.sparkContext.defaultParallelism * 4)
        specs_b = ctx.spark.sparkContext.broadcast(specs)  # a small list of ids, not a model

        def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for b in batches:
                yield from count_word_pairs(b, specs_b.value, window=windows).to_batches()

        counts = (docs.mapInArrow(count, from_arrow_schema(PAIR_WINDOW_COUNTS))
                  .withColumn("pair_id", F.split("pair_id", r"\|").getItem(0))
                  .groupBy("pair_id", "window").agg(F.sum("count").alias("count"),
                                                    F.sum("doc_count").alias("doc_count")))
        meta = ctx.spark.createDataFrame([(r["pair_id"], r["lang_a"], r["word_a"], r["lang_b"], r["word_b"])
                                          for r in raw], "pair_id string, lang_a string, word_a string, "
                                          "lang_b string, word_b string")
        grid = meta.crossJoin(ctx.spark.createDataFrame([(w,) for w in windows], "window int"))
        rows = (grid.join(counts, ["pair_id", "window"], "left").fillna(0, ["count", "doc_count"])
                .withColumn("tokenizer", F.lit(tok)).select(*PAIR_COOCCURRENCE.names))
        n = ctx.write(rows, "pair_cooccurrence", mode="overwrite")
        nonzero = rows.filter(F.col("count") > 0).count()
        return {"pairs": len(raw), "windows": windows, "rows": n, "pairs_with_cooccurrence": nonzero,
                "pairs_file_sha": digest, "tokenizer": tok}

    return run_job(cfg, "pair-cooccur", body, input_tables=("doc_tokens",),
                   identity={"pairs": digest, "tokenizer": tok}, quiet=quiet)


def _word_variants(sp: Any, word: str, lang: str) -> list[tuple[str, list[int]]]:
    marked = sp.encode(" " + word.strip()) if not word.startswith(" ") else sp.encode(word)
    marked = [i for i in marked if sp.id_to_piece(i) != "\u2581"] if lang in ("zh", "ja") else marked
    bare = sp.encode(word.strip())
    if bare and sp.id_to_piece(bare[0]).startswith("\u2581"):
        first = sp.id_to_piece(bare[0])[1:]
        bare = ([sp.piece_to_id(first)] if first and sp.piece_to_id(first) != sp.unk_id() else []) + bare[1:]
    out = [("m", list(marked))]
    if bare and bare != marked:
        out.append(("b", list(bare)))
    return [(k, v) for k, v in out if v]


def current_pivot_set(lake: Lake) -> str | None:
    runs = ok_runs(lake, "pivots")
    return json.loads(runs[-1]["counts"])["pivot_set"] if runs else None


def pivots(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    pc_ = cfg.pivots
    pins = {t: lake.version(t) for t in ("cooccurrence", "token_stats", "doc_tokens")}
    label = pc_.pivot_set or "ps-" + hashlib.sha256(
        json.dumps({"cfg": pc_.model_dump(mode="json"), "pins": pins, "tok": tok}, sort_keys=True).encode()
    ).hexdigest()[:12]

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F

        from pivot_spark.steps.pivots import build_pivots
        from pivot_spark.steps.tokenize import get_sp

        sp_path = str(models.tokenizer_path(ctx.lake.uri, tok))
        sp = get_sp(sp_path)
        content, stops = content_and_stops(sp_path, cfg.cooccur.stop_list)
        cooc = (ctx.read("cooccurrence").filter((F.col("tokenizer") == tok) & (F.col("window") == pc_.window))
                .groupBy("token_a", "token_b", "lang_a", "lang_b")
                .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count")))
        stats = (ctx.read("token_stats").filter(F.col("tokenizer") == tok).groupBy("token_id", "lang")
                 .agg(F.sum("count").alias("count"), F.sum("doc_count").alias("doc_count")))
        n_docs = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).count()
        # The pruned graph of one window comes to the driver as Arrow (pivot discovery is a global ranking).
        # Sorted, so float sums run in one order whatever the partitioning: a cluster and local mode give
        # bit-identical scores.
        cooc_pd = (cooc.toArrow().to_pandas().sort_values(["token_a", "token_b", "lang_a", "lang_b"])
                   .reset_index(drop=True))
        stats_pd = stats.toArrow().to_pandas().sort_values(["token_id", "lang"]).reset_index(drop=True)
        if cooc_pd.empty:
            raise ValueError(f"no co-occurrence counts for window {pc_.window}: run `pivot-spark cooccur` with "
                             f"cooccur.windows including {pc_.window}")
        pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        res = build_pivots(cooc_pd, stats_pd, n_docs=n_docs, pieces=pieces, content=content, cfg=pc_,
                           pivot_set=label, tokenizer=tok, stop_ids=stops)
        table = pa.Table.from_pandas(res.pivots, preserve_index=False)
        ctx.write_arrow(table, "pivots", mode="overwrite", predicate=f"pivot_set = '{label}'")
        top = res.pivots.head(20)
        return {"pivot_set": label, "tokenizer": tok, "window": pc_.window, "pivots": len(res.pivots),
                "graph_edges": len(cooc_pd), "documents": n_docs, "dropped": res.dropped(),
                "top20": " ".join(top["piece"].tolist())}

    return run_job(cfg, "pivots", body, input_tables=("cooccurrence", "token_stats", "doc_tokens"),
                   identity={"pivot_set": label}, quiet=quiet)


def _need_pivot_set(lake: Lake, cfg: PivotConfig, then: str) -> str:
    label = cfg.score.pivot_set or current_pivot_set(lake)
    if label is None:
        raise FileNotFoundError(f"no pivot set in this lake: run `pivot-spark pivots` {then}")
    return label


def score(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    label = _need_pivot_set(lake, cfg, "first")

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema

        from pivot_spark.steps.score import score_docs

        piv = ctx.read_arrow("pivots", partition_filters=[("pivot_set", "=", label)], columns=["token_id"])
        if piv.num_rows == 0:
            raise ValueError(f"pivot set {label} is empty or absent from `pivots`")
        pivot_ids = piv["token_id"].to_numpy()
        sp_name = _ship(ctx, str(models.tokenizer_path(ctx.lake.uri, tok)))
        stop_list = cfg.cooccur.stop_list
        docs = (ctx.read("doc_tokens").filter(F.col("tokenizer") == tok)
                .select("doc_id", "token_ids", "token_langs")
                .repartition(ctx.spark.sparkContext.defaultParallelism * 4))

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            content, stops = content_and_stops(_shipped(sp_name), stop_list)
            for b in batches:
                yield from score_docs(b, pivot_ids=pivot_ids, content=content, pivot_set=label,
                                      stop_ids=stops).to_batches()

        scored = docs.mapInArrow(run, from_arrow_schema(DOC_PIVOT))
        n = ctx.write(scored, "doc_pivot", mode="overwrite", partition_filters=[("pivot_set", "=", label)])
        return {"pivot_set": label, "documents": n, "pivot_tokens": len(pivot_ids)}

    return run_job(cfg, "score", body, input_tables=("doc_tokens", "pivots"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)


def select(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = _need_tokenizer(lake, cfg)
    label = _need_pivot_set(lake, cfg, "and `score` first")
    sc = cfg.select

    def body(ctx: RunContext) -> dict[str, Any]:
        import pandas as pd
        from pyspark.sql import functions as F

        from pivot_spark.steps.select import assign_shards, lang_mix, select_arm

        meta: pd.DataFrame = (ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)])
                .filter(F.col("n_tokens") >= sc.min_tokens)
                .select("doc_id", "n_tokens", "pivot_proportion", "lang").toPandas())
        if meta.empty:
            raise ValueError(f"no scored documents for pivot set {label}: run `pivot-spark score`")
        meta = meta.sort_values("doc_id", kind="stable").reset_index(drop=True)
        chosen: dict[str, list[str]] = {}
        report: dict[str, Any] = {}
        for arm in sc.arms:
            ref = lang_mix(meta, chosen["pivot"]) if arm == "langmatch" and "pivot" in chosen else None
            if arm == "langmatch" and ref is None:
                ref_ids = select_arm(meta, "pivot", token_budget=sc.token_budget, seed=sc.seed,
                                     pivot_random_share=sc.pivot_random_share)
                ref = lang_mix(meta, ref_ids)
            ids = select_arm(meta, arm, token_budget=sc.token_budget, seed=sc.seed,  # type: ignore[arg-type]
                             pivot_random_share=sc.pivot_random_share,
                             reference_lang_mix=_as_mix(ref) if ref is not None else None)
            chosen[arm] = ids
            mix = lang_mix(meta, ids)
            sub = meta.set_index("doc_id").loc[ids]
            report[arm] = {"documents": len(ids), "tokens": int(sub["n_tokens"].sum()),
                           "mean_pivot_proportion": round(float(sub["pivot_proportion"].mean()), 4),
                           "lang_mix": _mix_summary(mix)}
        rows = []
        for arm, ids in chosen.items():
            shards = assign_shards(ids, sc.n_shards, sc.seed)
            rows.append(pd.DataFrame({"arm": arm, "doc_id": ids, "shard": shards.astype("int32")}))
        picks = ctx.spark.createDataFrame(pd.concat(rows, ignore_index=True))
        toks = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select("doc_id", "token_ids", "n_tokens")
        lang = ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)]).select("doc_id", "lang")
        out = (picks.join(toks, "doc_id").join(lang, "doc_id", "left")
               .withColumn("selection", F.lit(sc.selection)).withColumn("tokenizer", F.lit(tok)))
        n = ctx.write(out, "train_set", mode="overwrite", partition_filters=[("selection", "=", sc.selection)])
        if not quiet:
            for arm, r in report.items():
                print(f"arm {arm:10s} docs {r['documents']:8,d}  tokens {r['tokens']:12,d}  "
                      f"pivot proportion {r['mean_pivot_proportion']:.3f}  languages {r['lang_mix']}")
        return {"selection": sc.selection, "pivot_set": label, "rows": n, "token_budget": sc.token_budget,
                "arms": report, "tokenizer": tok}

    return run_job(cfg, "select", body, input_tables=("doc_pivot", "doc_tokens"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)


def _as_mix(mix: Any) -> dict[str, float]:
    if isinstance(mix, dict):
        return mix
    df = mix
    col = "token_share" if "token_share" in df.columns else df.columns[-1]
    return {str(k): float(v) for k, v in zip(df["lang"], df[col], strict=True)}


def _mix_summary(mix: Any) -> str:
    m = _as_mix(mix)
    top = sorted(m.items(), key=lambda kv: -kv[1])[:6]
    return " ".join(f"{k}:{v:.2f}" for k, v in top)
