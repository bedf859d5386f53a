"""What an S3 lake is given by default: conditional writes for its commits unless the user says otherwise; and a
Spark without the store's connector runs without event logs instead of failing to start."""

from __future__ import annotations

import os

from pivot_spark.lake import Lake
from pivot_spark.lake.core import commit_options
from pivot_spark.session import missing_connector


def test_s3_lakes_commit_with_conditional_writes_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("AWS_CONDITIONAL_PUT", raising=False)
    assert Lake("s3://bucket/lake").storage_options == {"AWS_CONDITIONAL_PUT": "etag"}
    assert Lake("s3a://bucket/lake", {"AWS_REGION": "eu-west-1"}).storage_options == {
        "AWS_REGION": "eu-west-1", "AWS_CONDITIONAL_PUT": "etag"}
    # what the user sets stands, under any name delta-rs takes for it
    assert commit_options("s3://b/l", {"conditional_put": "etag"}) == {"conditional_put": "etag"}
    assert commit_options("s3://b/l", {"aws_conditional_put": "disabled"}) == {"aws_conditional_put": "disabled"}
    # other stores commit atomically without it
    assert Lake("gs://bucket/lake").storage_options == {}
    assert Lake(os.path.join(os.sep, "tmp", "lake")).storage_options == {}
    monkeypatch.setenv("AWS_CONDITIONAL_PUT", "etag")
    assert Lake("s3://bucket/lake").storage_options == {}  # the environment says it already


def test_the_connector_an_event_log_place_needs(monkeypatch, tmp_path):
    (tmp_path / "jars").mkdir()
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    for var in ("PIVOT_SPARK_JARS", "PYSPARK_SUBMIT_ARGS"):
        monkeypatch.delenv(var, raising=False)
    assert missing_connector("s3a://bucket/lake/_spark-events") == "hadoop-aws"
    assert missing_connector("gs://bucket/lake/_spark-events") == "gcs-connector"
    assert missing_connector((tmp_path / "events").as_uri()) is None
    assert missing_connector("hdfs://namenode:8020/spark-events") is None  # in Spark's own Hadoop client
    (tmp_path / "jars" / "hadoop-aws-3.5.0.jar").write_bytes(b"")
    assert missing_connector("s3a://bucket/lake/_spark-events") is None
    monkeypatch.setenv("PIVOT_SPARK_JARS", "/opt/jars/gcs-connector-hadoop3-2.2.22-shaded.jar")
    assert missing_connector("gs://bucket/lake/_spark-events") is None
