"""``pivot-spark select``: a named selection of training documents, one arm per selection strategy (``pivot``,
``random``, ``langmatch``: :mod:`pivot_spark.steps.select`), every arm filled to the same token budget from the
per-document metadata of ``doc_pivot``; the chosen documents' tokens are joined back from ``doc_tokens`` and
written to ``train_set`` (partitions ``selection`` and ``arm``, the selection rewritten on every run)."""

from __future__ import annotations

from typing import Any

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import CatalogEntry, require_pivot_set, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job


def select(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    label = require_pivot_set(lake, cfg, "and `score` first")
    sc = cfg.select

    def body(ctx: RunContext) -> dict[str, Any]:
        import pandas as pd
        from pyspark.sql import functions as F

        from pivot_spark.steps.select import assign_shards, lang_mix, select_arm

        ctx.catalog = CatalogEntry(tokenizer=tok, pivot_set=label)
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
