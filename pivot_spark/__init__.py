"""pivot-spark: semantic-pivot-aware multilingual pre-training data on Spark and Delta Lake."""

__version__ = "0.1.0"
