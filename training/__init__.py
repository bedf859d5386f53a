"""The GPU stage: ``train_set`` (Delta) -> packed token stream -> transformers model -> checkpoints.

Imports no pyspark: the trainer image has no JVM. ``evaluation`` holds the evaluation.
"""
