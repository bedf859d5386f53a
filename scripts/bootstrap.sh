#!/usr/bin/env bash
# Create .venv in the repository and install everything the project needs from the lock file
# requirements/app.txt (idempotent, quick when done).
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
want=$(cat pyproject.toml requirements/app.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # shellcheck source=scripts/torch-cpu.sh
  source scripts/torch-cpu.sh
  torch_cpu_source .venv/bin/python
  echo "bootstrap: installing the locked environment into .venv (first time: a few minutes; pyspark builds" \
       "once); torch's CPU build from $TORCH_CPU_FROM"
  # Every package at the version requirements/app.txt pins, checked against its hashes (`make lock` updates it).
  .venv/bin/python -m pip install -q --require-hashes --no-deps "${TORCH_CPU_ARGS[@]}" -r requirements/app.txt
  # The project itself, editable, on top of the locked packages (its build backend comes from the lock too).
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
