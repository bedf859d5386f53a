#!/usr/bin/env bash
# Wheels for a GPU node without network access whose Python has the machine-learning stack (torch, transformers,
# sentencepiece, pyarrow, pandas, numpy, scikit-learn, matplotlib, typer, rich, pyyaml, tqdm) but not the rest of
# what the trainer and evaluator import from an offline bundle: pydantic and its dependencies. Downloads them into
# .whl/ (git-ignored), at the versions this project's environment resolved, for the node's platform; copy .whl
# with the source tree and the bundle (scripts/offline-gpu-experiment.sh installs it; docs/offline-bundle.md).
# Environment: PYTHON (default .venv/bin/python, whose installed versions are pinned), PACKAGES (default the four
# below), PY_VERSIONS (default "3.12 3.13": CPython versions the node may run), PLATFORMS (default manylinux
# x86-64 tags).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
read -r -a pkgs <<< "${PACKAGES:-pydantic pydantic_core annotated-types typing-inspection}"
read -r -a pyvs <<< "${PY_VERSIONS:-3.12 3.13}"
read -r -a plats <<< "${PLATFORMS:-manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64}"
pins=()
for p in "${pkgs[@]}"; do
  v=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$p")
  pins+=("$p==$v")
done
platform_args=()
for p in "${plats[@]}"; do platform_args+=(--platform "$p"); done
rm -rf .whl && mkdir -p .whl
for pyv in "${pyvs[@]}"; do
  "$py" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyv" --implementation cp \
    "${platform_args[@]}" -d .whl "${pins[@]}" 2> >(grep -v "is ignored: it is neither" >&2)
done
ls -l .whl
du -sh .whl
