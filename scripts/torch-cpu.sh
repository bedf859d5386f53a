# Sourced by scripts/bootstrap.sh and scripts/lock.sh: where the CPU build of torch pinned in requirements/app.in
# comes from. A find-links folder of pip's configuration (`pip config list`, PIP_FIND_LINKS) that holds that wheel
# wins; otherwise the PyTorch CPU index (PIVOT_TORCH_INDEX, default https://download.pytorch.org/whl/cpu).
# Sets TORCH_CPU_ARGS (options that pip and uv both take) and TORCH_CPU_FROM (for messages).
torch_cpu_source() {
  local py=$1 want dir
  want=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' requirements/app.in)
  for dir in ${PIP_FIND_LINKS:-} $("$py" -m pip config get global.find-links 2>/dev/null || true); do
    dir=${dir#file://}
    if compgen -G "$dir/torch-$want-*.whl" >/dev/null; then
      TORCH_CPU_ARGS=(--find-links "$dir"); TORCH_CPU_FROM=$dir
      return
    fi
  done
  TORCH_CPU_FROM=${PIVOT_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
  TORCH_CPU_ARGS=(--extra-index-url "$TORCH_CPU_FROM")
}
