"""spark-submit / SparkApplication entry for `pivot-spark annotate`: all logic lives in pivot_spark.cli."""

import sys

from pivot_spark.cli import main

if __name__ == "__main__":
    main(["annotate", *sys.argv[1:]], exit_process=True)
