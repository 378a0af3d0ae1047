#!/usr/bin/env bash
# Side by side, one run: vlt's CPU pre-LN transformer block step (forward + backward + AdamW,
# width 256, 4 heads, 64 tokens, batch 32) and PyTorch's, same sizes and thread count,
# alternating REPS times; prints each figure, the medians and the ratio.
# Usage: scripts/bench/cpu_block.sh [VLT_BINARY] [THREADS] [REPS]   (PyTorch: $VLT_PYTHON or /work/venv)
set -euo pipefail
vlt=${1:-build/vlt}; threads=${2:-$(nproc)}; reps=${3:-3}
py=${VLT_PYTHON:-/work/venv/bin/python}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
have_torch=0
if [ -x "$py" ] && "$py" -c 'import torch' 2>/dev/null; then have_torch=1; fi
"$vlt" bench | head -1   # sgemm GFLOP/s
vs=(); ts=()
for r in $(seq "$reps"); do
  v=$("$vlt" bench --steps 30 | sed -n 's/.*adamw: \([0-9.]*\) ms.*/\1/p'); vs+=("$v")
  if [ $have_torch = 1 ]; then
    t=$("$py" scripts/bench/torch_block_cpu.py --threads "$threads" --steps 30 | sed -n 's/.*adamw: \([0-9.]*\) ms.*/\1/p'); ts+=("$t")
  fi
  echo "rep $r: vlt ${v} ms${t:+, torch ${t} ms}"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
mv=$(med "${vs[@]}")
if [ $have_torch = 1 ]; then
  mt=$(med "${ts[@]}")
  echo "median over $reps: vlt $mv ms, torch $mt ms per step, $threads threads: vlt/torch = $(awk -v a="$mv" -v b="$mt" 'BEGIN{printf "%.2f", a/b}') (lower is better)"
  "$py" -c 'import torch; print("torch", torch.__version__)'
else
  echo "median over $reps: vlt $mv ms per step (PyTorch not found at $py: no ratio)"
fi
