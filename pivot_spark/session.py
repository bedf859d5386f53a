"""The SparkSession: embedded local mode by default, or whatever spark-submit provides.

Under spark-submit (the JVM started this Python driver, so ``PYSPARK_GATEWAY_PORT`` is set) the master, resources
and jars come from the cluster and nothing here overrides them. Embedded, we start ``local[*]`` with the JVM flags that
halve start-up on small machines (C1 JIT only, serial GC) and the settings every job relies on.

Observability, in both modes: Spark event logs go to ``spark.event_log_dir`` (default ``{lake}/_spark-events``,
created if missing), where a Spark History Server finds every finished run; a Spark without the Hadoop connector
that place needs (pip's pyspark has no S3A) writes none, and says so. The embedded UI is off unless ``spark.ui``
(``--ui``) asks for it.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pivot_spark.config import PivotConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

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


def jar_available(name: str) -> bool:
    """True when a jar ``{name}*.jar`` is on the classpath the session will start with (Spark's own jars, or named
    in ``PIVOT_SPARK_JARS`` / ``PYSPARK_SUBMIT_ARGS``)."""
    try:
        import pyspark
    except ImportError:
        return False
    spark_home = os.environ.get("SPARK_HOME") or os.path.dirname(pyspark.__file__)
    if glob.glob(os.path.join(spark_home, "jars", f"{name}*.jar")):
        return True
    extra = os.environ.get("PIVOT_SPARK_JARS", "") + os.environ.get("PYSPARK_SUBMIT_ARGS", "")
    return name.rstrip("_-") in extra


def delta_jars_available() -> bool:
    """True when the Delta Lake jars are on the classpath the session will start with."""
    return jar_available("delta-spark_")


# Hadoop filesystems that Spark's own jars lack: the jar each URI scheme needs (the Spark image adds hadoop-aws).
CONNECTOR_JARS = {"s3a": "hadoop-aws-", "gs": "gcs-connector-", "abfs": "hadoop-azure-", "abfss": "hadoop-azure-"}


def missing_connector(uri: str) -> str | None:
    """The connector jar Spark would need to write ``uri`` and does not have (None: nothing missing)."""
    jar = CONNECTOR_JARS.get(uri.split("://", 1)[0].lower()) if "://" in uri else None
    return jar.rstrip("-") if jar and not jar_available(jar) else None


EVENT_LOG_FOLDER = "_spark-events"


def event_log_dir(cfg: PivotConfig) -> str | None:
    """Where this config's Spark event logs go, as a URI for Spark's Hadoop filesystems (None: event logs off).

    ``spark.event_log_dir``, else the lake's ``_spark-events`` folder; a local path becomes a ``file://`` URI and
    ``s3://`` is spelt ``s3a://`` (the S3A connector, which the Spark image ships)."""
    if not cfg.spark.event_log:
        return None
    uri = cfg.spark.event_log_dir or f"{cfg.lake.uri.rstrip('/')}/{EVENT_LOG_FOLDER}"
    if "://" not in uri:
        return Path(uri).resolve().as_uri()
    scheme, rest = uri.split("://", 1)
    return f"s3a://{rest}" if scheme.lower() == "s3" else uri


def ensure_event_log_dir(uri: str, storage_options: Mapping[str, str] | None) -> None:
    """Create the event-log folder: Spark refuses to start when it is missing (on an object store too, where the
    folder is a marker object that S3A reads as a directory)."""
    from pivot_spark.io.fs import location, redact_uri

    loc = location(uri, storage_options)
    try:
        loc.fs.create_dir(loc.root, recursive=True)
    except OSError as e:
        raise ValueError(f"cannot create the Spark event-log folder {redact_uri(uri)} ({e}): set "
                         "spark.event_log_dir to a writable place, or spark.event_log=false") from e


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
        conf["spark.ui.enabled"] = "true" if cfg.spark.ui else "false"
        conf["spark.pyspark.python"] = sys.executable
        conf["spark.pyspark.driver.python"] = sys.executable
        conf["spark.python.daemon.module"] = "pivot_spark.daemon"  # heavy imports once, before the fork
        if cfg.spark.fast_jvm_start:
            conf["spark.driver.extraJavaOptions"] = FAST_JVM_FLAGS
            conf["spark.executor.extraJavaOptions"] = FAST_JVM_FLAGS
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    events = event_log_dir(cfg)
    if events is not None and (jar := missing_connector(events)) is not None:
        # pip's pyspark has no S3A: the jobs still run (the lake is read and written through pyarrow and delta-rs)
        from pivot_spark.io.fs import redact_uri

        log.warning("Spark event logs off: %s needs the %s jar, which this Spark lacks (the Spark image has it); "
                    "set spark.event_log_dir to a place it can write, or spark.event_log=false", redact_uri(events),
                    jar)
        events = None
    if events is not None:
        ensure_event_log_dir(events, cfg.lake.storage_options)
        conf["spark.eventLog.enabled"] = "true"
        conf["spark.eventLog.dir"] = events
    conf.update(cfg.spark.conf)
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if cfg.spark.ui and not under_spark_submit():
        print(f"Spark UI: {spark.sparkContext.uiWebUrl} (while this command runs)", file=sys.stderr)
    return spark
