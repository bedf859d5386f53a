"""select: the Spark arms (budget walks over global positions) vs the pandas reference on the driver.

Synthetic ``doc_pivot`` metadata of ``--docs`` documents (log-normal sizes of at least 16 tokens, ten languages,
pivot proportions with ties), a budget of ``--budget-share`` of the pool: both sides select the same arms and
shards (checked), and the benchmark reports their wall times, the Spark jobs the Spark side ran and the rows its
walks brought to the driver (bucket sums and the documents walked there).

    .venv/bin/python benchmarks/select_arms.py --docs 1000000            # --driver-rows 100000 --arms pivot,random
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pivot_spark.config import load_config  # noqa: E402
from pivot_spark.pipeline import select as job  # noqa: E402
from pivot_spark.session import build_session  # noqa: E402
from pivot_spark.steps.select import assign_shards, lang_mix, select_arm  # noqa: E402


def synthetic_meta(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    langs = np.array(["en", "de", "fr", "es", "ru", "ja", "zh", "it", "pt", "nl"], dtype=object)
    return pd.DataFrame({
        "doc_id": [f"doc-{i:09d}" for i in range(n)],
        "n_tokens": np.maximum(16, rng.lognormal(6.0, 1.2, n)).astype(np.int32),
        "pivot_proportion": np.round(rng.beta(2, 8, n), 3),
        "lang": rng.choice(langs, n, p=np.linspace(2, 1, len(langs)) / np.linspace(2, 1, len(langs)).sum()),
    })


def reference(meta: pd.DataFrame, arms: list[str], budget: int, seed: int, n_shards: int) -> pd.DataFrame:
    chosen: dict[str, list[str]] = {}
    for arm in arms:
        mix = None
        if arm == "langmatch":
            pivot = chosen.get("pivot") or select_arm(meta, "pivot", token_budget=budget, seed=seed)
            ref = lang_mix(meta, pivot)
            mix = dict(zip(ref["lang"], ref["token_share"], strict=True))
        chosen[arm] = select_arm(meta, arm, token_budget=budget, seed=seed,  # type: ignore[arg-type]
                                 reference_lang_mix=mix)
    return pd.DataFrame([(a, d, int(s)) for a, ids in chosen.items()
                         for d, s in zip(ids, assign_shards(ids, n_shards, seed), strict=True)],
                        columns=["arm", "doc_id", "shard"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--budget-share", type=float, default=0.05)
    ap.add_argument("--arms", default="pivot,random")
    ap.add_argument("--driver-rows", type=int, default=load_config("local").select.driver_rows)
    ap.add_argument("--shuffle-partitions", type=int, default=16)
    args = ap.parse_args()
    arms = args.arms.split(",")
    meta = synthetic_meta(args.docs)
    budget = int(meta["n_tokens"].sum() * args.budget_share)
    seed, n_shards = 1234, 8

    t0 = time.perf_counter()
    want = reference(meta, arms, budget, seed, n_shards)
    t_ref = time.perf_counter() - t0

    spark = build_session(load_config("local", [f"spark.shuffle_partitions={args.shuffle_partitions}"]))
    docs = spark.createDataFrame(meta).localCheckpoint()  # the input, as if read from the lake
    driver = {"bucket rows": 0, "document rows": 0}
    stats, rows = job._Walker._stats, job._Walker._rows

    def count_stats(self: Any, reqs: Any) -> Any:
        out = stats(self, reqs)
        driver["bucket rows"] += sum(len(v) for v in out.values())
        return out

    def count_rows(self: Any, reqs: Any) -> Any:
        out = rows(self, reqs)
        driver["document rows"] += sum(len(p) for p, _ in out.values())
        return out

    job._Walker._stats, job._Walker._rows = count_stats, count_rows  # type: ignore[method-assign]
    spark.sparkContext.setJobGroup("select", "select")
    t0 = time.perf_counter()
    chosen = job.select_arms(docs, arms, token_budget=budget, seed=seed, pivot_random_share=0.0, n_shards=n_shards,
                             driver_rows=args.driver_rows)
    got: pd.DataFrame = chosen.picks.toPandas()
    t_spark = time.perf_counter() - t0
    n_jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup("select"))
    same = sorted(got.itertuples(index=False, name=None)) == sorted(want.itertuples(index=False, name=None))
    print(f"documents {args.docs:,}  budget {budget:,} tokens  arms {','.join(arms)}  selected {len(want):,}")
    print(f"pandas reference (driver): {t_ref:.1f} s")
    print(f"Spark (local[*], {args.shuffle_partitions} shuffle partitions, driver_rows {args.driver_rows:,}): "
          f"{t_spark:.1f} s, {n_jobs} Spark jobs, to the driver: {driver['bucket rows']:,} bucket rows, "
          f"{driver['document rows']:,} document rows")
    print("identical picks and shards:", same)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
