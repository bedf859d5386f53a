#!/usr/bin/env bash
# The models and report stages of an experiment recipe on a lent GPU machine, from a device bundle
# (docs/device.md). Prepared on the Spark side with
#   pivot-spark experiment --recipe experiments/gpu.yaml --stage bundle --bundle .bundle/gpu
#   scripts/device-wheels.sh
# then one device call from the repository root, carrying .bundle and .whl:
#   bash scripts/device-experiment.sh experiments/gpu.yaml .bundle/gpu 420
# BUDGET_S (default 420): the models stage starts no model when less time is left than the longest one took;
# the report then compares the models that exist. Everything but the model weights comes back under $OUT:
# results.md, results.json, the comparisons, every evaluation, training metrics and this log (device.log),
# packed as results.tar.gz. Also runs on a CPU box with the project's venv (PYTHON=.venv/bin/python) and a recipe
# whose train.device is cpu: the rehearsal in docs/device.md.
set -uo pipefail
recipe=${1:?usage: device-experiment.sh RECIPE BUNDLE [BUDGET_S]}
bundle=${2:?usage: device-experiment.sh RECIPE BUNDLE [BUDGET_S]}
budget=${3:-420}
py=${PYTHON:-python3}
out=${OUT:-out/device}
work=${WORK:-/tmp/pivot-experiment}
mkdir -p "$out"
exec > >(tee -a "$out/device.log") 2>&1
t0=$SECONDS

wheels=${WHEELS:-.whl}
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/pivot-site \
    --find-links "$wheels" pydantic pydantic_core annotated-types typing-inspection || exit 3
  export PYTHONPATH=/tmp/pivot-site${PYTHONPATH:+:$PYTHONPATH}
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

experiment=("$py" -m pivot_spark.cli experiment --recipe "$recipe" --lake "$bundle" --workdir "$work")
# a hard stop a minute and a half past the budget (a model is then interrupted; what finished is kept)
timeout --signal=INT $((budget + 90)) "${experiment[@]}" --stage models --budget-s "$budget"
models_rc=$?
"${experiment[@]}" --stage report
report_rc=$?

# everything but weights, checkpoints and tokenizer copies
(cd "$work" && find . \( -path '*/checkpoints' -o -path '*/final' \) -prune -o -type f \
   \( -name '*.json' -o -name '*.jsonl' -o -name '*.md' -o -name '*.png' -o -name '*.log' -o -name '*.txt' \) -print;
 find . -path '*/final/pivot_train.json' -o -path '*/final/config.json') | sort > "$out/files.txt"
tar -czf "$out/results.tar.gz" -C "$work" -T "$out/files.txt"
cp "$work/results/results.md" "$out/results.md" 2>/dev/null
echo "device-experiment: models stage exit $models_rc, report exit $report_rc, $((SECONDS - t0)) s;" \
  "$(wc -l < "$out/files.txt") files in $out/results.tar.gz"
[ "$report_rc" -eq 0 ] && [ "$models_rc" -eq 0 ]
