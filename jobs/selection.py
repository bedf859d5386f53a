"""spark-submit / SparkApplication entry for `pivot-spark select`: all logic lives in pivot_spark.cli.

Named selection.py, not select.py: spark-submit runs this file as a script, which puts jobs/ first on
sys.path, and a jobs/select.py would then shadow the stdlib `select` module (subprocess breaks).
"""

import sys

from pivot_spark.cli import main

if __name__ == "__main__":
    main(["select", *sys.argv[1:]], exit_process=True)
