"""``pivot-spark select``: a named selection of training documents, one arm per selection strategy (``pivot``,
``random``, ``langmatch``), every arm filled to the same token budget from the per-document metadata of
``doc_pivot``; the chosen documents' tokens are joined back from ``doc_tokens`` and written to ``train_set``
(partitions ``selection`` and ``arm``, the selection rewritten on every run).

The arms are those of the pandas reference :mod:`pivot_spark.steps.select` (same picks, same shards), computed
without bringing the documents to the driver:

- **Orders.** Each document gets its random key (the seeded BLAKE2b hash of :func:`~pivot_spark.steps.select.
  seeded_hash`, computed in a pandas UDF, kept as a signed long with the same order) and its dense place in the
  random order ``(key, doc_id)`` and in the pivot order ``(pivot_proportion desc, key, doc_id)``: a global
  sort, a row number per partition and the partition sizes (one row per partition to the driver), kept in a
  local checkpoint that the walks below read.
- **Filling a budget** is a walk (:mod:`pivot_spark.steps.budget_walk`) whose questions are answered by Spark
  aggregations: per bucket of positions, the documents that can still fit (one row per bucket), and, once
  they are at most ``select.driver_rows``, their sizes, which the driver walks with ``fill_steps``. Its picks
  are ranges of positions with a size cap, i.e. a column expression. Walks that do not depend on each other
  (the random arm and the pivot order; one per language of ``langmatch``) are answered by the same jobs.
- ``pivot_random_share`` and ``langmatch`` use the same walk over the random order, restricted to the documents
  not taken yet or to one language; the language mix of an arm is an aggregation (one row per language).
- **Shards**: the chosen documents sorted by the seeded shard hash, numbered the same way, dealt round robin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING, Any

import pandas as pd

from pivot_spark.config import PivotConfig
from pivot_spark.lake import Lake
from pivot_spark.pipeline.catalog import CatalogEntry, require_pivot_set, require_tokenizer
from pivot_spark.pipeline.runner import RunContext, run_job
from pivot_spark.steps.budget_walk import Bucket, Range, Rows, Stats, Walk, walk
from pivot_spark.steps.select import ARMS, lang_quotas, mix_table, signed_key

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# Buckets per question of a walk: at most this many rows come back to the driver per walk and round.
WALK_BUCKETS = 1024
META_COLUMNS = ["doc_id", "n_tokens", "pivot_proportion", "lang"]


def select(cfg: PivotConfig, *, quiet: bool = False) -> dict[str, Any]:
    lake = Lake(cfg.lake.uri, cfg.lake.storage_options)
    tok = require_tokenizer(lake, cfg)
    label = require_pivot_set(lake, cfg, "and `score` first")
    sc = cfg.select

    def body(ctx: RunContext) -> dict[str, Any]:
        from pyspark.sql import functions as F

        ctx.catalog = CatalogEntry(tokenizer=tok, pivot_set=label)
        docs = (ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)])
                .filter(F.col("n_tokens") >= sc.min_tokens).select(*META_COLUMNS))
        with ctx.describe("order documents, fill each arm's budget, assign shards"):
            chosen = select_arms(docs, sc.arms, token_budget=sc.token_budget, seed=sc.seed,
                                 pivot_random_share=sc.pivot_random_share, n_shards=sc.n_shards,
                                 driver_rows=sc.driver_rows,
                                 empty_hint=f"for pivot set {label}: run `pivot-spark score`")
        toks = ctx.read("doc_tokens").filter(F.col("tokenizer") == tok).select("doc_id", "token_ids", "n_tokens")
        lang = ctx.read("doc_pivot", partition_filters=[("pivot_set", "=", label)]).select("doc_id", "lang")
        out = (chosen.picks.join(toks, "doc_id").join(lang, "doc_id", "left")
               .withColumn("selection", F.lit(sc.selection)).withColumn("tokenizer", F.lit(tok)))
        n = ctx.write(out, "train_set", mode="overwrite", partition_filters=[("selection", "=", sc.selection)])
        if not quiet:
            for arm, r in chosen.report.items():
                print(f"arm {arm:10s} docs {r['documents']:8,d}  tokens {r['tokens']:12,d}  "
                      f"pivot proportion {r['mean_pivot_proportion']:.3f}  languages {r['lang_mix']}")
        return {"selection": sc.selection, "pivot_set": label, "rows": n, "token_budget": sc.token_budget,
                "arms": chosen.report, "tokenizer": tok}

    return run_job(cfg, "select", body, input_tables=("doc_pivot", "doc_tokens"),
                   identity={"pivot_set": label, "tokenizer": tok}, quiet=quiet)


@dataclass(frozen=True)
class Chosen:
    """The arms of a selection: ``picks`` (``arm, doc_id, shard``, a DataFrame) and the per-arm summary the job
    prints and records (documents, tokens, mean pivot proportion, language mix)."""

    picks: DataFrame
    report: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class WalkSpec:
    """One budget to fill: the documents ``where`` selects (all when None), walked in the order of the position
    column ``pos``."""

    where: Column | None
    pos: str
    budget: int


def select_arms(
    docs: DataFrame,
    arms: Sequence[str],
    *,
    token_budget: int,
    seed: int,
    pivot_random_share: float,
    n_shards: int,
    driver_rows: int,
    buckets: int = WALK_BUCKETS,
    empty_hint: str = "",
) -> Chosen:
    """The arms of :func:`pivot_spark.steps.select.select_arm` and their :func:`~pivot_spark.steps.select.
    assign_shards` shards over ``docs`` (``doc_id, n_tokens, pivot_proportion, lang``), computed in Spark (module
    docstring); the same errors for the same inputs."""
    from pyspark.sql import functions as F

    for arm in arms:
        if arm not in ARMS:
            raise ValueError(f"unknown arm {arm!r}: use one of {ARMS}")
    if n_shards <= 0:
        raise ValueError(f"n_shards must be positive, got {n_shards}")
    wants_pivot = any(a in ("pivot", "langmatch") for a in arms)
    if wants_pivot and not 0.0 <= pivot_random_share <= 1.0:
        raise ValueError(f"pivot_random_share must be in [0, 1], got {pivot_random_share}")
    meta, n_docs = _ordered_meta(docs, seed, token_budget, empty_hint)
    walker = _Walker(meta, n_docs, driver_rows, buckets)
    chosen: dict[str, Column] = {}

    first = []  # independent walks go together
    pivot_budget = int(round(token_budget * (1.0 - pivot_random_share)))
    if "random" in arms:
        first.append(WalkSpec(None, "pos_random", token_budget))
    if wants_pivot:
        first.append(WalkSpec(None, "pos_pivot", pivot_budget))
    done = walker.run(first)
    if "random" in arms:
        chosen["random"] = done.pop(0)[0]
    if wants_pivot:
        pivot_first, tokens = done.pop(0)
        # with the whole budget, the pivot walk left behind only documents larger than what was left then, so
        # larger than what is left now: the top-up of the reference takes nothing
        top_up = walker.top_up(pivot_first, token_budget - tokens) if pivot_budget < token_budget else None
        chosen["pivot"] = pivot_first if top_up is None else pivot_first | top_up
    if "langmatch" in arms:
        mix = mix_table(walker.per_lang({"pivot": chosen["pivot"]})["pivot"])
        if mix.empty:
            raise ValueError("the langmatch arm needs reference_lang_mix (language -> token share)")
        quotas = lang_quotas(token_budget, dict(zip(mix["lang"], mix["token_share"], strict=True)))
        parts = walker.run([WalkSpec(F.col("lang") == lang, "pos_random", quota) for lang, quota in quotas.items()])
        matched = _any([sel for sel, _ in parts])
        chosen["langmatch"] = matched | walker.top_up(matched, token_budget - sum(t for _, t in parts))
    chosen = {arm: chosen[arm] for arm in dict.fromkeys(arms)}
    per_lang = walker.per_lang(chosen)
    report = {arm: _summary(per_lang[arm]) for arm in chosen}
    return Chosen(_shards(meta, chosen, seed, n_shards), report)


class _Walker:
    """Runs budget walks over the ordered metadata: each round, every pending walk's question goes into one
    Spark job per kind (bucket sums; rows, at most ``driver_rows`` a job)."""

    def __init__(self, meta: DataFrame, n_docs: int, driver_rows: int, buckets: int) -> None:
        self.meta, self.n_docs, self.driver_rows, self.buckets = meta, n_docs, driver_rows, buckets

    def run(self, specs: Sequence[WalkSpec]) -> list[tuple[Column, int]]:
        """Per spec, in order: the column that is True for the documents its walk takes, and their tokens."""
        walks: list[Walk] = [walk(s.budget, self.n_docs, driver_rows=self.driver_rows, buckets=self.buckets)
                             for s in specs]
        results: dict[int, tuple[list[Range], int]] = {}
        pending: dict[int, Stats | Rows] = {}
        for i, w in enumerate(walks):
            self._advance(i, w, None, pending, results)
        while pending:
            answers: dict[int, Any] = {}
            stats = {i: r for i, r in pending.items() if isinstance(r, Stats)}
            if stats:
                answers.update(self._stats({i: (specs[i], r) for i, r in stats.items()}))
            rows = {i: r for i, r in pending.items() if isinstance(r, Rows)}
            for chunk in _chunks(rows, self.driver_rows):
                answers.update(self._rows({i: (specs[i], rows[i]) for i in chunk}))
            for i, answer in answers.items():
                self._advance(i, walks[i], answer, pending, results)
        return [(_taken(specs[i], results[i][0]), results[i][1]) for i in range(len(specs))]

    @staticmethod
    def _advance(i: int, w: Walk, answer: Any, pending: dict[int, Stats | Rows],
                 results: dict[int, tuple[list[Range], int]]) -> None:
        try:
            pending[i] = next(w) if answer is None else w.send(answer)
        except StopIteration as stop:
            pending.pop(i, None)
            results[i] = stop.value

    def top_up(self, taken: Column, left: int) -> Column:
        """The documents of the random order not in ``taken`` that fill ``left`` tokens (none if ``left`` <= 0)."""
        from pyspark.sql import functions as F

        if left <= 0:
            return F.lit(False)
        return self.run([WalkSpec(~taken, "pos_random", left)])[0][0]

    def per_lang(self, chosen: dict[str, Column]) -> dict[str, pd.DataFrame]:
        """Per arm: ``lang, n_docs, n_tokens, proportion_sum`` of its documents (one aggregation, a row per arm
        and language)."""
        from pyspark.sql import functions as F

        arms = F.array_compact(F.array(*[F.when(sel, F.lit(arm)) for arm, sel in chosen.items()]))
        rows: pd.DataFrame = (self.meta.select(F.explode(arms).alias("arm"), "lang", "n_tokens", "pivot_proportion")
                .groupBy("arm", "lang")
                .agg(F.count(F.lit(1)).alias("n_docs"), F.sum("n_tokens").alias("n_tokens"),
                     F.sum("pivot_proportion").alias("proportion_sum"))
                .toPandas())
        return {arm: rows[rows["arm"] == arm].drop(columns="arm").reset_index(drop=True) for arm in chosen}

    def _stats(self, reqs: dict[int, tuple[WalkSpec, Stats]]) -> dict[int, list[Bucket]]:
        from pyspark.sql import functions as F

        entries = [
            F.when(_request_rows(spec, r.lo, r.hi, r.cap),
                   F.struct(F.lit(i).alias("w"), F.expr(f"({spec.pos} - {r.lo}) div {r.width}").alias("b")))
            for i, (spec, r) in reqs.items()
        ]
        rows = (self.meta.select(F.explode(F.array_compact(F.array(*entries))).alias("e"), "n_tokens")
                .select("e.w", "e.b", "n_tokens").groupBy("w", "b")
                .agg(F.count(F.lit(1)).alias("rows"), F.sum("n_tokens").alias("tokens"),
                     F.min("n_tokens").alias("smallest"))
                .collect())
        out: dict[int, list[Bucket]] = {i: [] for i in reqs}
        for r in rows:
            out[r["w"]].append((int(r["b"]), int(r["rows"]), int(r["tokens"]), int(r["smallest"])))
        return out

    def _rows(self, reqs: dict[int, tuple[WalkSpec, Rows]]) -> dict[int, tuple[Any, Any]]:
        from pyspark.sql import functions as F

        entries = [F.when(_request_rows(spec, r.lo, r.hi, r.cap),
                          F.struct(F.lit(i).alias("w"), F.col(spec.pos).alias("p")))
                   for i, (spec, r) in reqs.items()]
        got = (self.meta.select(F.explode(F.array_compact(F.array(*entries))).alias("e"), "n_tokens")
               .select("e.w", "e.p", "n_tokens").toArrow())
        w = got["w"].to_numpy()
        pos, n_tokens = got["p"].to_numpy(), got["n_tokens"].to_numpy()
        return {i: (pos[w == i], n_tokens[w == i]) for i in reqs}


def _request_rows(spec: WalkSpec, lo: int, hi: int, cap: int) -> Column:
    """The documents a walk's question is about: the walk's own, at positions [lo, hi), with n_tokens <= cap."""
    from pyspark.sql import functions as F

    pos = F.col(spec.pos)
    cond = (pos >= lo) & (pos < hi) & (F.col("n_tokens") <= cap)
    return cond if spec.where is None else spec.where & cond


def _taken(spec: WalkSpec, ranges: list[Range]) -> Column:
    """The column that is True for the documents a walk took (its ranges, within its documents)."""
    return _any([_request_rows(spec, lo, hi, cap) for lo, hi, cap in ranges])


def _any(terms: list[Column]) -> Column:
    """OR of ``terms`` as a balanced tree (False for none)."""
    from pyspark.sql import functions as F

    if not terms:
        return F.lit(False)
    while len(terms) > 1:
        terms = [terms[k] | terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
    return terms[0]


def _chunks(reqs: dict[int, Rows], driver_rows: int) -> list[list[int]]:
    """Row questions grouped so that one job brings at most ``driver_rows`` rows back."""
    chunks: list[list[int]] = []
    size = 0
    for i, r in reqs.items():
        if not chunks or size + r.rows > driver_rows:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += r.rows
    return chunks


def _order_key(seed: int, salt: str) -> Any:
    """A pandas UDF: the seeded hash of ``doc_id`` (:func:`~pivot_spark.steps.select.signed_key`)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")  # type: ignore[call-overload]
    def key(ids: pd.Series) -> pd.Series:
        return pd.Series(signed_key(seed, ids, salt), index=ids.index)

    return key


def with_position(df: DataFrame, name: str, order: Sequence[Column | str]) -> DataFrame:
    """``df`` with ``name``: each row's place ``0..n-1`` in ``order`` (a total order), stored in a local
    checkpoint so that every later job sees the same numbers. Spark's sort leaves the rows in key ranges, one
    per partition in partition order; a row's place is its partition's offset (from one count per partition,
    the only rows that come to the driver) plus its row number there (``monotonically_increasing_id`` holds the
    partition in its upper 31 bits and the row number in its lower 33)."""
    from pyspark.sql import functions as F

    ranked = df.orderBy(*order).withColumn("_id", F.monotonically_increasing_id()).localCheckpoint()
    part = F.shiftright("_id", 33)
    sizes = sorted((int(r["p"]), int(r["n"])) for r in
                   ranked.groupBy(part.alias("p")).agg(F.count(F.lit(1)).alias("n")).collect())
    offsets: list[Any] = []
    start = 0
    for p, n in sizes:
        offsets += [F.lit(p), F.lit(start)]
        start += n
    place = F.col("_id").bitwiseAND((1 << 33) - 1)
    if offsets:
        place = place + F.element_at(F.create_map(*offsets), part)
    return ranked.withColumn(name, place).drop("_id")


def _ordered_meta(docs: DataFrame, seed: int, token_budget: int, empty_hint: str) -> tuple[DataFrame, int]:
    """The documents with their places in the random and the pivot order, after the reference's checks."""
    from pyspark.sql import functions as F

    c = docs.agg(F.count(F.lit(1)).alias("n"), F.count_distinct("doc_id").alias("ids"),
                 F.sum("n_tokens").alias("tokens"), F.min("n_tokens").alias("smallest")).first()
    assert c is not None
    if c["n"] == 0:
        raise ValueError(f"no scored documents {empty_hint}".rstrip())
    if c["ids"] != c["n"]:
        raise ValueError("selection metadata has duplicate doc_id values")
    if c["smallest"] < 0:
        raise ValueError("selection metadata has negative n_tokens")
    if token_budget <= 0:
        raise ValueError(f"token_budget must be positive, got {token_budget}")
    if c["tokens"] < token_budget:
        raise ValueError(f"the pool has {c['tokens']} tokens, fewer than the budget {token_budget}: "
                         "lower select.token_budget or add documents")
    keyed = (docs.withColumn("lang", F.coalesce(F.col("lang"), F.lit("und")))
             .withColumn("key", _order_key(seed, "order")(F.col("doc_id"))))
    meta = with_position(keyed, "pos_random", ["key", "doc_id"])
    meta = with_position(meta, "pos_pivot", [F.desc("pivot_proportion"), "key", "doc_id"])
    return meta, int(c["n"])


def _summary(per_lang: pd.DataFrame) -> dict[str, Any]:
    docs = int(per_lang["n_docs"].sum())
    mix = mix_table(per_lang)
    top = mix.head(6)
    return {"documents": docs, "tokens": int(per_lang["n_tokens"].sum()),
            "mean_pivot_proportion": round(float(per_lang["proportion_sum"].sum()) / docs, 4) if docs else float("nan"),
            "lang_mix": " ".join(f"{k}:{v:.2f}" for k, v in zip(top["lang"], top["token_share"], strict=True))}


def _shards(meta: DataFrame, chosen: dict[str, Column], seed: int, n_shards: int) -> DataFrame:
    """``arm, doc_id, shard``: each arm's documents in seeded shard-hash order, dealt round robin."""
    from pyspark.sql import functions as F

    picks = reduce(lambda a, b: a.unionByName(b),
                   [meta.filter(sel).select(F.lit(arm).alias("arm"), "doc_id") for arm, sel in chosen.items()])
    picks = picks.withColumn("hash", _order_key(seed, "shard")(F.col("doc_id")))
    ranked = with_position(picks, "place", ["arm", "hash", "doc_id"])
    starts: list[Any] = []
    for r in ranked.groupBy("arm").agg(F.min("place").alias("start")).collect():  # a row per arm
        starts += [F.lit(r["arm"]), F.lit(r["start"])]
    first = F.element_at(F.create_map(*starts), F.col("arm"))
    return ranked.select("arm", "doc_id", F.pmod(F.col("place") - first, F.lit(n_shards)).cast("int").alias("shard"))
