"""The PySpark worker daemon with this project's heavy imports done once, before it forks workers.

Spark starts ``python -m <spark.python.daemon.module>`` once per executor and forks a Python worker from it for
each concurrent task slot. With the stock ``pyspark.daemon`` every forked worker imports numpy, pyarrow,
SentencePiece, fastText and the pipeline steps itself (about a second of CPU each); imported here, the forks
inherit them. Models are not loaded here: which model a job uses is only known when its tasks run. The embedded
session sets ``spark.python.daemon.module=pivot_spark.daemon``; a cluster image with the package installed can set
it in ``spark-defaults.conf``. An import that fails here is skipped (the worker imports it again, or reports it).
"""

from __future__ import annotations

import importlib

PRELOAD = (
    "numpy", "pyarrow", "pyarrow.compute", "pyarrow.parquet", "pyarrow.ipc", "pandas", "sentencepiece",
    "fasttext", "pivot_spark.steps.annotate", "pivot_spark.steps.cooccur", "pivot_spark.steps.cooccur_packed",
    "pivot_spark.lake.spark", "pivot_spark.pipeline.annotate", "pivot_spark.pipeline.cooccur",
)


def preload() -> list[str]:
    """Import :data:`PRELOAD`; returns the modules that failed to import."""
    failed = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module must not stop the daemon
            failed.append(name)
    return failed


if __name__ == "__main__":
    preload()
    from pyspark import daemon

    daemon.manager()
