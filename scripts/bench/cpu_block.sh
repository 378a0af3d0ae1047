#!/usr/bin/env bash
# Side by side, one run: vlt's CPU block step and PyTorch's, same sizes and thread count.
# Usage: scripts/bench/cpu_block.sh [VLT_BINARY] [THREADS]   (PyTorch from $VLT_PYTHON or /work/venv)
set -euo pipefail
vlt=${1:-./vlt}; threads=${2:-$(nproc)}
py=${VLT_PYTHON:-/work/venv/bin/python}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
v=$("$vlt" bench | tee /dev/stderr | sed -n 's/.*adamw: \([0-9.]*\) ms.*/\1/p')
if [ -x "$py" ] && "$py" -c 'import torch' 2>/dev/null; then
  t=$("$py" scripts/bench/torch_block_cpu.py --threads "$threads" | tee /dev/stderr | sed -n 's/.*adamw: \([0-9.]*\) ms.*/\1/p')
  awk -v v="$v" -v t="$t" 'BEGIN{printf "vlt %.2f ms, torch %.2f ms: vlt/torch = %.2f (lower is better)\n", v, t, v/t}'
else
  echo "PyTorch not found ($py): vlt figure only"
fi
