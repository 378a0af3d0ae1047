#!/usr/bin/env bash
# Data pipeline throughput per core: decode + RandomResizedCrop(224) + normalize on 512-px JPEG
# webdataset shards, vlt (C, data/bench_decode.c) against Python webdataset + PIL + torchvision
# (open_clip's train transform), both pinned to the same single core, in one run.
#
#   scripts/bench/bench_decode.sh [BUILD_DIR]        (default build)
#   env: VLT_BENCH_SAMPLES (1000), VLT_BENCH_DIR (/tmp/vlt_bench_decode), VLT_BENCH_CORE (0),
#        PYTHON (/work/venv/bin/python if present, else python3)
#
# The shards are made once with `vlt synth --image-size 512` (about 100 KB per JPEG: the noise
# textures make them compress like photos rather than flat drawings).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${VLT_BENCH_SAMPLES:-1000}
DIR=${VLT_BENCH_DIR:-/tmp/vlt_bench_decode}
CORE=${VLT_BENCH_CORE:-0}
PY=${PYTHON:-$( [ -x /work/venv/bin/python ] && echo /work/venv/bin/python || echo python3 )}

make -j2 all >/dev/null
cc -O2 -I. scripts/bench/bench_decode_main.c "$BUILD/libvlt.a" \
   $(pkg-config --libs libturbojpeg libwebp libpng libzstd libcjson) -lm -fopenmp -o "$BUILD/bench_decode"
if [ ! -f "$DIR/sizes.json" ]; then
  ./vlt synth --out "$DIR" --samples "$N" --shard-size 500 --image-size 512 --seed 1
fi
shards=("$DIR"/*.tar)
echo "shards: ${#shards[@]} in $DIR ($(du -sh "$DIR" | cut -f1)), core $CORE, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
c_out=$(taskset -c "$CORE" "$BUILD/bench_decode" --size 224 --repeat 3 "${shards[@]}")
echo "$c_out"
py_out=$(taskset -c "$CORE" "$PY" scripts/bench/bench_decode.py --size 224 --repeat 2 "${shards[@]}")
echo "$py_out"
rate() { sed -E 's/.* ([0-9.]+) images\/s.*/\1/'; }
py=$(echo "$py_out" | rate)
full=$(echo "$c_out" | grep full-decode | rate)
dct=$(echo "$c_out" | grep dct-scaled | rate)
awk -v p="$py" -v f="$full" -v d="$dct" 'BEGIN {
  printf "ratio vlt/python per core: full-decode %.2fx, dct-scaled %.2fx\n", f / p, d / p }'
