#!/usr/bin/env bash
# BLEU + CIDEr-D, pycocoevalcap vs vlt, on the same pre-tokenized 5,000 images x 5 references.
# Usage: bash scripts/bench/bench_caption_metrics.sh [build/vlt]   (needs the venv with pycocoevalcap and Java)
set -euo pipefail
cd "$(dirname "$0")/../.."
VLT=${1:-build/vlt}
PY=${VLT_PYTHON:-/work/venv/bin/python}
[ -x "$VLT" ] || { echo "bench_caption_metrics: $VLT not built (run make)" >&2; exit 1; }
exec "$PY" scripts/bench/bench_caption_metrics.py --vlt "$VLT" --images 5000
