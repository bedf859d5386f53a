"""The reproduction experiment: one recipe file from the corpus to the results (``pivot-experiment``).

Above both sides of the project: it starts the Spark jobs (:mod:`pivot_spark.pipeline`, imported when the data
stage runs) and the trainer and evaluator (:mod:`training`, :mod:`evaluation`, in worker processes).
``recipe`` (schema, loading), ``plan`` (variants, model runs, keys, typed step settings), ``run`` (stages,
workers, time budget), ``worker`` (the worker process), ``report`` (results, Markdown, plots), ``bundle``
(offline bundles of a recipe), ``cli`` (the command line). Imports no pyspark at module level.
"""
