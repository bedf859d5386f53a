#!/usr/bin/env bash
# Wheels the lent GPU machine lacks, into .whl/ (git-ignored; carried with the device call, docs/device.md).
# Its image has torch, transformers, tokenizers, sentencepiece, pyarrow, pandas, numpy, scikit-learn,
# matplotlib, typer, rich, pyyaml and tqdm (/work/.library/device/KINDS.md), not pydantic. The versions are the
# ones this project's environment resolved, for CPython 3.12 and 3.13 on x86-64 (the device script installs
# with --find-links, so pip takes the build that matches the machine's python3).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
pkgs=(pydantic pydantic_core annotated-types typing-inspection)
pins=()
for p in "${pkgs[@]}"; do
  v=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$p")
  pins+=("$p==$v")
done
rm -rf .whl && mkdir -p .whl
for pyv in 3.12 3.13; do
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyv" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${pins[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
done
ls -l .whl
du -sh .whl
