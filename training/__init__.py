"""The GPU stage: ``train_set`` (Delta, or an offline bundle) -> packed token stream -> transformers model ->
checkpoints (``pivot-train``; settings in :mod:`training.config`).

Imports no pyspark: the trainer image has no JVM. The evaluation is the sibling package ``evaluation``.
"""
