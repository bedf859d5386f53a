# Everyday commands. `make demo` and `make test` are the README's two set-up commands.
VENV := .venv
BIN := $(VENV)/bin
LAKE ?= lake-demo
OUT ?= out/demo
PYTEST_SELECT ?= not slow and not cluster and not gpu and not network

.PHONY: setup demo test test-all lint typecheck unit s3 spark bench clean lock

setup:
	@bash scripts/bootstrap.sh

# Recompile requirements/app.txt, the locked application install, after a change of pyproject.toml's dependencies
# or requirements/app.in (pins move only where needed; UPGRADE=1 moves all). Then commit it; `make setup` installs it.
lock: setup
	@UPGRADE=$(UPGRADE) bash scripts/lock.sh

# The main job end to end on the embedded default: local Spark, a local Delta lake, CPU training.
demo: setup
	$(BIN)/pivot-spark rebuild --config smoke --lake $(LAKE)
	$(BIN)/pivot-train --lake $(LAKE) --selection main --arm pivot --preset tiny --max-steps 40 --out $(OUT)/pivot --overwrite
	$(BIN)/pivot-spark status --config smoke --lake $(LAKE)

lint: setup
	$(BIN)/ruff check pivot_spark training evaluation experiment jobs tests benchmarks

typecheck: setup
	$(BIN)/mypy

# Everyday test run (well under 20 minutes on 2 cores). CI sets PIVOT_TEST_ALL=1 to add the slower suites.
test: setup lint typecheck
	@if [ "$${PIVOT_TEST_ALL:-0}" = "1" ]; then sel="not gpu"; else sel="$(PYTEST_SELECT)"; fi; \
	$(BIN)/python -m pytest -m "$$sel" --durations=15

unit: setup
	$(BIN)/python -m pytest tests/unit -q

# The lake and the input on S3 (moto's server on 127.0.0.1): commits, the whole chain, the nightly schedule.
s3: setup
	$(BIN)/python -m pytest -m s3 -q --durations=5 tests/s3 tests/spark/test_ingest_s3.py

clean:
	rm -rf lake-demo lake-smoke out .pytest_cache .mypy_cache .ruff_cache
