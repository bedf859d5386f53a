#!/usr/bin/env bash
# The models and report stages of an experiment recipe on a GPU node that cannot reach the lake, from an offline
# bundle (docs/offline-bundle.md). Prepare on a machine with the lake:
#   pivot-experiment --recipe experiments/gpu.yaml --stage bundle --bundle .bundle/gpu
#   scripts/offline-gpu-wheels.sh          # only if the node's Python lacks pydantic
# copy the repository (source tree), .bundle/gpu and .whl to the node, and run from the repository root there:
#   bash scripts/offline-gpu-experiment.sh experiments/gpu.yaml .bundle/gpu 400 [section.key=value ...]
# BUDGET_S (third argument, default 400 s): the models stage starts no model when less time is left than the
# longest one took, and a hard stop interrupts it HARD_STOP_S (default 60 s) past the budget; the report then
# compares the models that exist (each model's evaluations are written as soon as it ends). Further arguments
# are recipe overrides for both stages (a bundle is only adopted by a recipe with its data settings: export it
# with the same overrides). Under $OUT (default out/offline-gpu): run.log (this script's output), results.md, and
# results.tar.gz with everything of the workdir but the model weights (results.json, the comparisons, every
# evaluation, training metrics, the workers' logs).
# Environment: PYTHON (default python3; needs torch, transformers, sentencepiece, pyarrow, pandas, numpy,
# scikit-learn, matplotlib, typer, rich, pyyaml, tqdm), WHEELS (default .whl: when it holds wheels, PACKAGES
# from it are installed first, default pydantic and its three dependencies), SITE (default /tmp/pivot-site:
# where they are installed), WORK (default /tmp/pivot-experiment: the workdir).
# With PYTHON=.venv/bin/python and a recipe whose train.device is cpu it also runs on a CPU machine (a rehearsal).
set -uo pipefail
usage="usage: offline-gpu-experiment.sh RECIPE BUNDLE [BUDGET_S] [section.key=value ...]"
recipe=${1:?$usage}
bundle=${2:?$usage}
budget=${3:-400}
shift $(($# < 3 ? $# : 3))
overrides=("$@")
hard_stop=${HARD_STOP_S:-60}
py=${PYTHON:-python3}
out=${OUT:-out/offline-gpu}
work=${WORK:-/tmp/pivot-experiment}
site=${SITE:-/tmp/pivot-site}
mkdir -p "$out"
exec > >(tee -a "$out/run.log") 2>&1
t0=$SECONDS

wheels=${WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  read -r -a pkgs <<< "${PACKAGES:-pydantic pydantic_core annotated-types typing-inspection}"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    --find-links "$wheels" "${pkgs[@]}" || exit 3
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$py" - <<'PY' || exit 3
import platform, torch, transformers, pyarrow, sentencepiece, pydantic
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"python {platform.python_version()}; torch {torch.__version__}; {gpu}; transformers {transformers.__version__}; "
      f"pyarrow {pyarrow.__version__}; sentencepiece {sentencepiece.__version__}; pydantic {pydantic.__version__}")
PY
"$py" -c "from pivot_spark.bundle import Bundle; import sys; p = Bundle.open(sys.argv[1]).verify(); \
print('bundle verified' if not p else p); sys.exit(1 if p else 0)" "$bundle" || exit 3

experiment=("$py" -m experiment.cli --recipe "$recipe" --lake "$bundle" --workdir "$work")
# a hard stop past the budget (a model is then interrupted; what finished is kept)
timeout --signal=INT $((budget + hard_stop)) "${experiment[@]}" --stage models --budget-s "$budget" \
  "${overrides[@]}"
models_rc=$?
"${experiment[@]}" --stage report "${overrides[@]}"
report_rc=$?

# everything but weights, checkpoints and tokenizer copies
(cd "$work" && find . \( -path '*/checkpoints' -o -path '*/final' \) -prune -o -type f \
   \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.png' -o -name '*.log' -o -name '*.txt' \) -print;
 find . -path '*/final/pivot_train.json' -o -path '*/final/config.json') | sort > "$out/files.txt"
tar -czf "$out/results.tar.gz" -C "$work" -T "$out/files.txt"
cp "$work/results/results.md" "$out/results.md" 2>/dev/null
echo "offline-gpu-experiment: models stage exit $models_rc, report exit $report_rc, $((SECONDS - t0)) s;" \
  "$(wc -l < "$out/files.txt") files in $out/results.tar.gz"
[ "$report_rc" -eq 0 ] && [ "$models_rc" -eq 0 ]
