"""The lake layer on a real local Spark session and real Delta tables (delta-rs bridge)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pivot_spark.lake import Lake
from pivot_spark.lake.spark import read_table, write_table
from tests.faults import blocked_folder

pytestmark = pytest.mark.spark


def _pivots(spark, n: int, label: str, offset: int = 0):
    rows = [(i + offset, f"p{i}", float(i), i, 2, i, label, "tok") for i in range(n)]
    return spark.createDataFrame(rows, "token_id int, piece string, score double, degree long, n_langs int, "
                                       "rank int, pivot_set string, tokenizer string")


def test_write_read_pinned_versions_after_overwrite(spark, lake_dir):
    lake = Lake(str(lake_dir))
    r0 = write_table(_pivots(spark, 15, "a").repartition(3), lake, "pivots", mode="append", app_id="t/pivots/r0")
    assert r0.committed and r0.version == 0 and r0.rows == 15
    r1 = write_table(_pivots(spark, 7, "a", 100), lake, "pivots", mode="overwrite", app_id="t/pivots/r1")
    assert r1.version == 1
    # Latest version: exactly the 7 new rows; the pinned old version: exactly the 15 old ones.
    assert read_table(spark, lake, "pivots").count() == 7
    old = read_table(spark, lake, "pivots", 0)
    assert sorted(r.token_id for r in old.collect()) == list(range(15))
    # Reading the folder as plain Parquet would wrongly see both versions' files.
    assert spark.read.parquet(lake.table_uri("pivots")).count() == 22
    # delta-rs agrees with Spark.
    assert DeltaTable(lake.table_uri("pivots"), version=0).to_pyarrow_table().num_rows == 15


def test_partition_overwrite_replaces_only_that_partition(spark, lake_dir):
    lake = Lake(str(lake_dir))
    write_table(_pivots(spark, 5, "a").union(_pivots(spark, 4, "b")), lake, "pivots", mode="append", app_id="x/1")
    write_table(_pivots(spark, 2, "a", 50), lake, "pivots", mode="overwrite", app_id="x/2",
                partition_filters=[("pivot_set", "=", "a")])
    got = {(r.pivot_set, r.token_id) for r in read_table(spark, lake, "pivots").collect()}
    assert got == {("a", 50), ("a", 51)} | {("b", i) for i in range(4)}


def test_repeated_app_id_commits_nothing(spark, lake_dir):
    lake = Lake(str(lake_dir))
    write_table(_pivots(spark, 3, "a"), lake, "pivots", mode="append", app_id="job/pivots/run-1")
    again = write_table(_pivots(spark, 3, "a"), lake, "pivots", mode="append", app_id="job/pivots/run-1")
    assert not again.committed and again.version == 0
    assert lake.version("pivots") == 0 and read_table(spark, lake, "pivots").count() == 3


def test_failed_task_commits_nothing(spark, lake_dir):
    lake = Lake(str(lake_dir))
    write_table(_pivots(spark, 3, "a"), lake, "pivots", mode="append", app_id="j/pivots/ok")
    with blocked_folder(lake_dir / "pivots" / "pivot_set=b"), pytest.raises(Exception, match="pivot_set=b"):
        write_table(_pivots(spark, 9, "b"), lake, "pivots", mode="append", app_id="j/pivots/bad")
    assert lake.version("pivots") == 0
    assert read_table(spark, lake, "pivots").count() == 3


def test_empty_and_missing_tables_read_as_empty(spark, lake_dir):
    lake = Lake(str(lake_dir))
    df = read_table(spark, lake, "doc_tokens")
    assert df.count() == 0 and "token_ids" in df.columns
    assert lake.read_arrow("runs").num_rows == 0
    assert isinstance(lake.read_arrow("runs"), pa.Table)
