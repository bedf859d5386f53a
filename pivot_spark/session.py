"""The SparkSession: embedded local mode by default, or whatever spark-submit provides.

Under spark-submit (the JVM started this Python driver, so ``PYSPARK_GATEWAY_PORT`` is set) the master, resources
and jars come from the cluster and nothing here overrides them. Embedded, we start ``local[*]`` with the JVM flags that
halve start-up on small machines (C1 JIT only, serial GC) and the settings every job relies on.
"""

from __future__ import annotations

import glob
import os
import sys
from typing import TYPE_CHECKING

from pivot_spark.config import PivotConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FAST_JVM_FLAGS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"

# Settings every job relies on, embedded or on a cluster.
COMMON_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "2000",
    # Partition values such as snapshot names are strings in the contract; never infer numbers from paths.
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.python.worker.reuse": "true",  # models load once per Python worker and stay loaded
}


def under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def delta_jars_available() -> bool:
    """True when the Delta Lake jars are on the classpath the session will start with."""
    try:
        import pyspark
    except ImportError:
        return False
    spark_home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    if glob.glob(os.path.join(spark_home, "jars", "delta-spark_*.jar")):
        return True
    extra = os.environ.get("PIVOT_SPARK_JARS", "") + os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    return "delta-spark" in extra


def build_session(cfg: PivotConfig) -> SparkSession:
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(cfg.spark.app_name)
    conf = dict(COMMON_CONF)
    conf["spark.sql.shuffle.partitions"] = str(cfg.spark.shuffle_partitions)
    use_delta = cfg.lake.backend == "native" or (cfg.lake.backend == "auto" and delta_jars_available())
    if use_delta:
        conf["spark.sql.extensions"] = "io.delta.sql.DeltaSparkSessionExtension"
        conf["spark.sql.catalog.spark_catalog"] = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    if not under_spark_submit():
        builder = builder.master(cfg.spark.master or "local[*]")
        conf["spark.driver.memory"] = cfg.spark.driver_memory
        conf["spark.ui.enabled"] = "false"
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
        conf["spark.python.daemon.module"] = "pivot_spark.daemon"  # heavy imports once, before the fork
        if cfg.spark.fast_jvm_start:
            conf["spark.driver.extraJavaOptions"] = FAST_JVM_FLAGS
            conf["spark.executor.extraJavaOptions"] = FAST_JVM_FLAGS
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf.update(cfg.spark.conf)
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
