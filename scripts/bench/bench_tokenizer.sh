#!/usr/bin/env bash
# Tokenizer throughput on one core: vlt_tokenizer_encode vs open_clip.tokenize on the fixture's
# 1,200 grammar captions (x REPEATS), both pinned to CPU 0. Needs `make` first (build/lib) and the
# venv with open_clip_torch.
# Usage: bash scripts/bench/bench_tokenizer.sh [BUILD_DIR] [REPEATS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
REPEATS=${2:-20}
PY=${VLT_PYTHON:-/work/venv/bin/python}
for lib in "$BUILD/lib/libvlt_data.a" "$BUILD/lib/libvlt_base.a"; do
  [ -f "$lib" ] || { echo "bench_tokenizer: $lib not built (run make)" >&2; exit 1; }
done
mkdir -p "$BUILD/bench"
cc -std=c11 -O2 -D_GNU_SOURCE -I. -o "$BUILD/bench/bench_tokenizer" scripts/bench/bench_tokenizer.c \
   "$BUILD/lib/libvlt_data.a" "$BUILD/lib/libvlt_base.a" -lz -lm
PIN=""
command -v taskset >/dev/null && PIN="taskset -c 0"
OMP_NUM_THREADS=1 $PIN "$PY" scripts/bench/bench_tokenizer.py --bin "$BUILD/bench/bench_tokenizer" --repeats "$REPEATS"
