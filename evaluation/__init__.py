"""``pivot-eval``: the paper's word translation task, logit lens and behaviours (docs/evaluation.md).

Imports no pyspark; tables are read through :func:`pivot_spark.lake.reader.open_reader` (a lake or an offline
bundle). Settings: :mod:`evaluation.config`; the commands as functions: :mod:`evaluation.jobs`.
"""
