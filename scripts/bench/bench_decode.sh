#!/usr/bin/env bash
# Data pipeline throughput per core: decode + RandomResizedCrop(224) + normalize on 512-px JPEG
# webdataset shards, vlt (C, data/bench_decode.c) against Python webdataset + PIL + torchvision
# (open_clip's train transform), both pinned to the same single core, in one run.
#
#   scripts/bench/bench_decode.sh [BUILD_DIR]        (default build)
#   env: VLT_BENCH_SAMPLES (1000), VLT_BENCH_DIR (/tmp/vlt_bench_decode), VLT_BENCH_CORE (0),
#        VLT_BENCH_ROUNDS (5), PYTHON (/work/venv/bin/python if present, else python3)
#
# The shards are made once with `vlt synth --image-size 512` (about 100 KB per JPEG: the noise
# textures make them compress like photos rather than flat drawings). Each round runs vlt (best
# of 2 passes per mode) and Python (best of 2 passes), alternating which goes first; the ratio of
# each round is vlt / Python of that round, and the summary gives the median and the range over
# the rounds. The checksums (FNV-1a of every float32 output) identify the output bit for bit.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${VLT_BENCH_SAMPLES:-1000}
DIR=${VLT_BENCH_DIR:-/tmp/vlt_bench_decode}
CORE=${VLT_BENCH_CORE:-0}
ROUNDS=${VLT_BENCH_ROUNDS:-5}
PY=${PYTHON:-$( [ -x /work/venv/bin/python ] && echo /work/venv/bin/python || echo python3 )}

make -j2 all >/dev/null
cc -O2 -I. scripts/bench/bench_decode_main.c "$BUILD/libvlt.a" \
   $(pkg-config --libs libturbojpeg libwebp libpng libzstd libcjson) -lm -fopenmp -o "$BUILD/bench_decode"
if [ ! -f "$DIR/sizes.json" ]; then
  ./vlt synth --out "$DIR" --samples "$N" --shard-size 500 --image-size 512 --seed 1
fi
shards=("$DIR"/*.tar)
echo "shards: ${#shards[@]} in $DIR ($(du -sh "$DIR" | cut -f1)), core $CORE of $(nproc)," \
     "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c "$CORE" "$BUILD/bench_decode" --size 224 --repeat 1 --checksum "${shards[@]}" | grep checksum

rate() { sed -E 's/.* ([0-9.]+) images\/s.*/\1/'; }
run_vlt() { taskset -c "$CORE" "$BUILD/bench_decode" --size 224 --repeat 2 "${shards[@]}"; }
run_py() { taskset -c "$CORE" "$PY" scripts/bench/bench_decode.py --size 224 --repeat 2 "${shards[@]}"; }
rows=()
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then c_out=$(run_vlt); py_out=$(run_py); else py_out=$(run_py); c_out=$(run_vlt); fi
  py=$(echo "$py_out" | rate)
  full=$(echo "$c_out" | grep full-decode | rate)
  dct=$(echo "$c_out" | grep dct-scaled | rate)
  rows+=("$py $full $dct")
  awk -v r="$r" -v p="$py" -v f="$full" -v d="$dct" 'BEGIN {
    printf "round %d: python %.1f, vlt full-decode %.1f (%.2fx), vlt dct-scaled %.1f (%.2fx) images/s\n", r, p, f, f / p, d, d / p }'
done
echo "$c_out" | sed -n 1p | sed -E 's/.*\((best of.*)\)/vlt: \1/'
echo "$py_out" | sed -E 's/.*\((best of.*)\)/python: \1/'
printf '%s\n' "${rows[@]}" | awk '
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function lo(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
  function hi(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
  { n++; p[n] = $1; f[n] = $2; d[n] = $3; rf[n] = $2 / $1; rd[n] = $3 / $1 }
  END {
    printf "median of %d rounds, images/s per core: python %.1f, vlt full-decode %.1f, vlt dct-scaled %.1f\n",
           n, median(p, n), median(f, n), median(d, n)
    printf "ratio vlt/python per core: dct-scaled median %.2fx (range %.2f-%.2f), full-decode median %.2fx (range %.2f-%.2f)\n",
           median(rd, n), lo(rd, n), hi(rd, n), median(rf, n), lo(rf, n), hi(rf, n)
  }'
