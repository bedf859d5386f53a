"""spark-submit / SparkApplication entry for `pivot-spark pivots`: all logic lives in pivot_spark.cli."""

import sys

from pivot_spark.cli import main

if __name__ == "__main__":
    main(["pivots", *sys.argv[1:]], exit_process=True)
