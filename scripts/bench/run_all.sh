#!/usr/bin/env bash
# `make bench`: every CPU benchmark that has a reference beside it.
set -uo pipefail
build=${1:-build}
bash scripts/bench/cpu_block.sh "$build/vlt"
for b in scripts/bench/bench_decode.sh scripts/bench/bench_caption_metrics.sh scripts/bench/bench_tokenizer.sh; do
  [ -x "$b" ] && { echo "== $b"; bash "$b" || echo "$b failed"; }
done
exit 0
