#!/usr/bin/env bash
# One command for a lent GPU machine (see docs/CUDA.md): unpacks gpu_carry/bundle.tar.xz (made
# here by scripts/prepare_gpu_carry.sh), runs the CUDA test suites against the CPU backend
# (ops, a tiny-CLIP step, `vlt train` on the GPU, one-rank NCCL), `vlt bench clip-step` with a
# per-op profile of one step, PyTorch's CLIP ViT-B/32 baseline (eager, then --compile while
# VLT_GPU_DEADLINE allows), and prints a short table last. On an H200: 184 s with compile.
# ALBEF (VLT_GPU_ALBEF=0 skips it): its GPU suites (EMA and queue kernels bit for bit against the
# host, a whole tiny step against the CPU, `vlt train` on the GPU resuming exactly) and the step
# time of the paper's config (configs/model/albef_ViT-B-16.json) at batch 64 in bf16, beside
# scripts/bench/albef_step_torch.py (bf16 autocast) in the same run; each part gets at most what
# VLT_GPU_DEADLINE leaves (torch.compile and the max-batch probes come after and are skipped
# first when time runs short).
# VQA (VLT_GPU_VQA=0 skips it), before the benchmarks: test_layers_cuda_vqa (one step of the CLIP
# classifier with each fusion and three of ALBEF VQA with its ranking, GPU against CPU) and
# test_train_cuda_vqa (`vlt train` of each head on the GPU against the CPU, resuming exactly, and
# ALBEF VQA's ranking of a GPU-trained checkpoint the same on both devices).
# CoCa (VLT_GPU_COCA=0 skips it), after VQA: test_layers_cuda_coca (three steps of the tiny open_clip
# fixture and its greedy / beam captions, GPU against CPU) and test_train_cuda_coca (`vlt train` of
# tiny-coca on the GPU against the CPU, resuming exactly, caption evaluation on the GPU model).
# The data feed (VLT_GPU_FEED=0 skips it): test_train_u8_batches (the uint8 op on the device equals
# the host's bit for bit) and test_train_feed (pinned memory and the side-stream copy give the
# synchronous feed's losses bit for bit, and resume exactly) before the benchmarks; after
# `vlt bench clip-step`, `vlt train` of the same model at the same batch on JPEG shards (vlt synth
# --image-size 256, 32 shards, VLT_GPU_FEED_WORKERS=14 loader threads) measured as a pair with it:
# steady images/s (log lines after the first), the data-wait share, and train/bench (target >= 90%).
#
# The CUDA graph (VLT_GPU_GRAPH=0 skips it; issue 17, not yet run on a GPU when written):
# test_layers_cuda_graph (5 eager tiny-CLIP steps = 2 sync-free + 3 replays of a captured graph,
# bit for bit; a bad id reported after the step) before the benchmarks, and after the benchmark
# `vlt bench clip-step --cuda-graph` (eager, eager sync-free and graph ms/step in one call).
#
# Data parallel on one GPU (VLT_GPU_DIST=0 skips it; issue 17, not yet run on a GPU when written):
# test_train_nccl_overlap before the benchmarks (the overlapped NCCL reducer = the reference NCCL
# path bit for bit, flat ZeRO-1 = the plain GPU run bit for bit and resumes, bf16 reduction near f32).
#
#   device tool:  run(command="VLT_GPU_DEADLINE=450 bash scripts/gpu_check.sh", carry=["gpu_carry"], timeout_s=480)
#   (with the machine's start, about 11 of a session's 15 device minutes; each part gets what the
#   deadline leaves, so the last ones (ALBEF's timing, the max-batch search) are cut first)
#   VLT_GPU_TORCH=0 skips PyTorch, VLT_GPU_TORCH_COMPILE=0 skips torch.compile only.
#
# Logs go to $OUT (the device tool's folder that comes back) when it is set, else /tmp/vlt_gpu_logs.
# Without a GPU it says "no GPU" and exits 2 having checked nothing (VLT_GPU_CHECK_DRY=1 goes on
# anyway: a dry run of the unpacking, library lookup and table on a machine without one).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
DEADLINE=${VLT_GPU_DEADLINE:-330}  # seconds for the whole script; torch.compile gets what is left
elapsed() { echo $(($(date +%s) - T0)); }
# min(limit, what the deadline leaves less a margin), at least 1
capped() { local l=$1 left=$((DEADLINE - 10 - $(date +%s) + T0)); [ "$left" -lt "$l" ] && l=$left; [ "$l" -lt 1 ] && l=1; echo "$l"; }
LOGS=${OUT:-/tmp/vlt_gpu_logs}
mkdir -p "$LOGS"
WORK=/tmp/vlt_gpu_run
declare -A RESULT

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
  echo "no GPU: nvidia-smi is missing or sees no device; nothing was checked"
  [ "${VLT_GPU_CHECK_DRY:-0}" = 1 ] || exit 2
  echo "(VLT_GPU_CHECK_DRY=1: going on as a dry run)"
  GPU="no GPU (dry run)"
else
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
  GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
fi

if [ ! -f gpu_carry/bundle.tar.xz ]; then
  echo "gpu_carry/bundle.tar.xz is missing: run scripts/prepare_gpu_carry.sh here first and carry gpu_carry"
  exit 1
fi
rm -rf "$WORK" && mkdir -p "$WORK"
xz -dc gpu_carry/bundle.tar.xz | tar -xf - -C "$WORK" || { echo "cannot unpack the bundle"; exit 1; }
B=$WORK/vlt_gpu
echo "bundle built from commit $(cat "$B/COMMIT" 2>/dev/null)"

# cuBLAS / cuBLASLt: the machine's own (CUDA toolkit, else PyTorch's wheels).
CUBLAS_DIR=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu; do
  if [ -e "$d/libcublasLt.so.13" ]; then CUBLAS_DIR=$d; break; fi
done
if [ -z "$CUBLAS_DIR" ]; then
  CUBLAS_DIR=$(python3 - <<'EOF' 2>/dev/null
import glob, os, site, sys
roots = site.getsitepackages() + [os.path.dirname(os.__file__)]
for r in roots:
    for pat in ("nvidia/cu13/lib", "nvidia/cublas/lib", "nvidia/*/lib"):
        for d in glob.glob(os.path.join(r, pat)):
            if os.path.exists(os.path.join(d, "libcublasLt.so.13")):
                print(d); sys.exit(0)
EOF
)
fi
if [ -z "$CUBLAS_DIR" ]; then
  CUBLAS_DIR=$(dirname "$(find /usr /opt -name 'libcublasLt.so.13' 2>/dev/null | head -1)" 2>/dev/null)
fi
echo "cuBLAS from: ${CUBLAS_DIR:-NOT FOUND}"
# The machine's libcudart first when it has one (matches its driver); the bundle's as fallback.
export LD_LIBRARY_PATH="$B/lib:${CUBLAS_DIR}:${LD_LIBRARY_PATH:-}:$B/cudart"
export OMP_NUM_THREADS=8

run_suite() {  # name, timeout
  local name=$1 limit=$2 log="$LOGS/$1.log"
  echo "== $name (limit ${limit}s, at $(elapsed)s)"
  timeout "$limit" "$B/bin/$name" >"$log" 2>&1
  local rc=$?
  tail -25 "$log"
  local p f s
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  s=$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$log" | awk '{s+=$4} END{print s+0}')
  RESULT[$name]="rc=$rc passed=$p failed=$f skipped=$s"
}

run_suite test_autograd_cuda 90
run_suite test_layers_cuda 60
run_suite test_train_cuda 150
run_suite test_autograd_ops 30

# VQA heads (issue 16): GPU against CPU, before the benchmarks.
if [ "${VLT_GPU_VQA:-1}" != 0 ]; then
  for s in test_layers_cuda_vqa:60 test_train_cuda_vqa:150; do
    name=${s%%:*}
    if [ -x "$B/bin/$name" ]; then run_suite "$name" "$(capped "${s##*:}")"
    else RESULT[$name]="not in the bundle"; fi
  done
else
  RESULT[test_layers_cuda_vqa]="skipped (VLT_GPU_VQA=0)"; RESULT[test_train_cuda_vqa]="skipped (VLT_GPU_VQA=0)"
fi

# CoCa (issue 17): GPU against CPU, before the benchmarks.
if [ "${VLT_GPU_COCA:-1}" != 0 ]; then
  for s in test_layers_cuda_coca:60 test_train_cuda_coca:120; do
    name=${s%%:*}
    if [ -x "$B/bin/$name" ]; then run_suite "$name" "$(capped "${s##*:}")"
    else RESULT[$name]="not in the bundle"; fi
  done
else
  RESULT[test_layers_cuda_coca]="skipped (VLT_GPU_COCA=0)"; RESULT[test_train_cuda_coca]="skipped (VLT_GPU_COCA=0)"
fi

# The data feed (issue 17): the uint8 op and the async copy against their references.
if [ "${VLT_GPU_FEED:-1}" != 0 ]; then
  for s in test_train_u8_batches:60 test_train_feed:120; do
    name=${s%%:*}
    if [ -x "$B/bin/$name" ]; then run_suite "$name" "$(capped "${s##*:}")"
    else RESULT[$name]="not in the bundle"; fi
  done
else
  RESULT[test_train_u8_batches]="skipped (VLT_GPU_FEED=0)"; RESULT[test_train_feed]="skipped (VLT_GPU_FEED=0)"
fi

# The sync-free step and its CUDA graph (issue 17): bit for bit against the eager step.
if [ "${VLT_GPU_GRAPH:-1}" != 0 ]; then
  if [ -x "$B/bin/test_layers_cuda_graph" ]; then run_suite test_layers_cuda_graph "$(capped 60)"
  else RESULT[test_layers_cuda_graph]="not in the bundle"; fi
else
  RESULT[test_layers_cuda_graph]="skipped (VLT_GPU_GRAPH=0)"
fi

# Data parallel on one GPU (issue 17): the overlapped NCCL reducer, flat ZeRO-1, bf16 reduction.
if [ "${VLT_GPU_DIST:-1}" != 0 ]; then
  if [ -x "$B/bin/test_train_nccl_overlap" ]; then run_suite test_train_nccl_overlap "$(capped 120)"
  else RESULT[test_train_nccl_overlap]="not in the bundle"; fi
else
  RESULT[test_train_nccl_overlap]="skipped (VLT_GPU_DIST=0)"
fi

echo "== vlt bench clip-step: CLIP ViT-B/32 training step, batch 256 (at $(elapsed)s)"
timeout 120 "$B/bin/vlt" bench clip-step --batch 256 --steps 10 --profile ${VLT_GPU_PROFILE_STEP:-3} >"$LOGS/bench.log" 2>&1
grep -A 45 "device profile" "$LOGS/bench.log" | head -45; tail -4 "$LOGS/bench.log"
BENCH=$(grep -E '^\{' "$LOGS/bench.log" | tail -1)
[ -n "$BENCH" ] || BENCH="failed: $(tail -1 "$LOGS/bench.log" | cut -c1-100) (bench.log)"

# The same step eager, eager without host synchronisation, and as a replayed CUDA graph, in one call.
GRAPH="skipped (VLT_GPU_GRAPH=0)"
if [ "${VLT_GPU_GRAPH:-1}" != 0 ]; then
  echo "== vlt bench clip-step --cuda-graph (at $(elapsed)s)"
  timeout "$(capped 90)" "$B/bin/vlt" bench clip-step --batch 256 --steps 10 --cuda-graph >"$LOGS/bench_graph.log" 2>&1
  grep -E '^(cuda-graph|cuda graph)' "$LOGS/bench_graph.log"; tail -2 "$LOGS/bench_graph.log"
  GRAPH=$(grep -E '^\{' "$LOGS/bench_graph.log" | tail -1)
  [ -n "$GRAPH" ] || GRAPH="failed: $(tail -1 "$LOGS/bench_graph.log" | cut -c1-100) (bench_graph.log)"
fi

# The pair: `vlt train` of the same model and batch fed by the real loader from JPEG shards, with
# pinned double-buffered uint8 batches; its steady images/s against the benchmark's.
FEED="skipped (VLT_GPU_FEED=0)"
if [ "${VLT_GPU_FEED:-1}" != 0 ]; then
  FEED_S=${VLT_GPU_FEED_STEPS:-40}; FEED_B=256; FEED_P=8
  FEED_DIR=$WORK/feed; rm -rf "$FEED_DIR"; mkdir -p "$FEED_DIR"
  per=$(( (FEED_S + 8) * FEED_B / FEED_P ))   # 8 writers in parallel, 4 shards each
  echo "== vlt synth: $((per * FEED_P)) JPEGs of 256 px in $((4 * FEED_P)) shards (at $(elapsed)s)"
  for p in $(seq 0 $((FEED_P - 1))); do
    "$B/bin/vlt" synth --out "$FEED_DIR/data" --samples "$per" --shard-size $(( (per + 3) / 4 )) --image-size 256 \
      --seed 7 --first-index $((p * per)) --prefix "p$p-" >"$LOGS/feed_synth$p.log" 2>&1 &
  done
  wait
  cat >"$FEED_DIR/run.yaml" <<YAML
model:
  name: ViT-B-32
data:
  train: "$FEED_DIR/data/p{0..$((FEED_P - 1))}-{00000..00003}.tar"
  batch_size: $FEED_B
  workers: ${VLT_GPU_FEED_WORKERS:-14}
  shuffle_buffer: 1000
  shuffle_initial: 256
train:
  device: cuda
  precision: bf16
schedule:
  steps: $FEED_S
  warmup: 5
checkpoint:
  every: 0
log:
  every: 5
output:
  dir: $FEED_DIR/run
YAML
  lim=$(capped 150)
  echo "== vlt train on the JPEG shards, batch $FEED_B, $FEED_S steps (limit ${lim}s, at $(elapsed)s)"
  VLT_HOME=$PWD timeout "$lim" "$B/bin/vlt" train --config "$FEED_DIR/run.yaml" >"$LOGS/feed_train.log" 2>&1
  tail -4 "$LOGS/feed_train.log"
  cp "$FEED_DIR/run/metrics.jsonl" "$LOGS/feed_metrics.jsonl" 2>/dev/null
  # steady state: the log lines after the first (warm-up, arena growth); mean images/s and data wait
  FEED=$(python3 - "$FEED_DIR/run/metrics.jsonl" <<'PY' 2>/dev/null
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
rows = [r for r in rows if "images_per_s" in r][1:]
if rows:
    print(json.dumps({"images_per_s": round(sum(r["images_per_s"] for r in rows) / len(rows), 1),
                      "data_wait": round(sum(r.get("data_wait", 0) for r in rows) / len(rows), 4), "lines": len(rows)}))
PY
)
  [ -n "$FEED" ] || FEED="failed: $(tail -1 "$LOGS/feed_train.log" | cut -c1-100) (feed_train.log)"
  rm -rf "$FEED_DIR"
fi

torch_run() {  # label, extra args, timeout
  local label=$1 args=$2 limit=$3
  if [ ! -f "$B/torch_clip_baseline.py" ]; then RESULT[$label]="baseline script not in the bundle"; return; fi
  echo "== PyTorch $label (limit ${limit}s, at $(elapsed)s)"
  PYTHONUNBUFFERED=1 timeout "$limit" python3 "$B/torch_clip_baseline.py" --batch 256 --steps 10 --warmup 3 $args \
    >"$LOGS/torch_$label.log" 2>&1
  tail -3 "$LOGS/torch_$label.log"
  RESULT[$label]=$(grep -E '^\{' "$LOGS/torch_$label.log" | tail -1)
  [ -n "${RESULT[$label]}" ] || RESULT[$label]="failed or timed out (see torch_$label.log)"
}
if [ "${VLT_GPU_TORCH:-1}" = 0 ]; then RESULT[eager]="skipped (VLT_GPU_TORCH=0)"; else torch_run eager "" 100; fi

# ALBEF: the suites (test_layers_cuda_albef also times the paper config's step: VLT_ALBEF_BENCH=1),
# then PyTorch's step of the same config and batch (bf16 autocast).
ALBEF_VLT="skipped (VLT_GPU_ALBEF=0)"; ALBEF_TORCH="skipped (VLT_GPU_ALBEF=0)"
if [ "${VLT_GPU_ALBEF:-1}" != 0 ]; then
  if [ -x "$B/bin/test_layers_cuda_albef" ]; then
    VLT_ALBEF_BENCH=1 VLT_ALBEF_BENCH_BATCH=64 run_suite test_layers_cuda_albef "$(capped 150)"
    ALBEF_VLT=$(grep -E '^\{"impl": "vlt"' "$LOGS/test_layers_cuda_albef.log" | tail -1)
    [ -n "$ALBEF_VLT" ] || ALBEF_VLT="failed or timed out (test_layers_cuda_albef.log)"
  else
    RESULT[test_layers_cuda_albef]="not in the bundle"; ALBEF_VLT="not in the bundle"
  fi
  if [ -x "$B/bin/test_train_cuda_albef" ]; then run_suite test_train_cuda_albef "$(capped 120)"
  else RESULT[test_train_cuda_albef]="not in the bundle"; fi
  if [ "${VLT_GPU_TORCH:-1}" = 0 ]; then ALBEF_TORCH="skipped (VLT_GPU_TORCH=0)"
  else
    lim=$(capped 120)
    echo "== PyTorch ALBEF step, paper config, batch 64, bf16 autocast (limit ${lim}s, at $(elapsed)s)"
    PYTHONUNBUFFERED=1 timeout "$lim" python3 scripts/bench/albef_step_torch.py --batch 64 --steps 10 --warmup 3 \
      >"$LOGS/albef_torch.log" 2>&1
    tail -3 "$LOGS/albef_torch.log"
    ALBEF_TORCH=$(grep -E '^\{' "$LOGS/albef_torch.log" | tail -1)
    [ -n "$ALBEF_TORCH" ] || ALBEF_TORCH="failed or timed out (albef_torch.log)"
  fi
fi

if [ "${VLT_GPU_TORCH_COMPILE:-1}" = 0 ] || [ "${VLT_GPU_TORCH:-1}" = 0 ]; then RESULT[compile]="skipped (VLT_GPU_TORCH_COMPILE=0)"
elif [ "$(elapsed)" -lt $((DEADLINE - 60)) ]; then
  left=$((DEADLINE - 5 - $(elapsed))); torch_run compile "--compile" $((left < 170 ? left : 170))
else RESULT[compile]="skipped: not enough time left before VLT_GPU_DEADLINE (${DEADLINE} s)"; fi

# The largest batch that fits: vlt (estimate from its arena, checked by a step in a fresh process)
# and PyTorch eager (doubling, then bisection, on OutOfMemoryError). VLT_GPU_MAXBATCH=0 skips.
MAXB_VLT="skipped"; MAXB_TORCH="skipped"
if [ "${VLT_GPU_MAXBATCH:-1}" = 1 ] && [ "$(elapsed)" -lt $((DEADLINE - 60)) ]; then
  echo "== max batch: vlt (at $(elapsed)s)"
  timeout 90 "$B/bin/vlt" bench clip-step --batch 256 --steps 2 --warmup 1 --max-batch --probe-log "$LOGS/maxbatch_probes.log" \
    >"$LOGS/maxbatch_vlt.log" 2>&1
  tail -4 "$LOGS/maxbatch_vlt.log"
  MAXB_VLT=$(grep -E '"max_batch"' "$LOGS/maxbatch_vlt.log" | tail -1)
  [ -n "$MAXB_VLT" ] || MAXB_VLT="failed (maxbatch_vlt.log)"
  if [ "${VLT_GPU_TORCH:-1}" != 0 ] && [ -f "$B/torch_max_batch.py" ]; then
    echo "== max batch: PyTorch eager (at $(elapsed)s)"
    PYTHONUNBUFFERED=1 timeout 60 python3 "$B/torch_max_batch.py" >"$LOGS/maxbatch_torch.log" 2>&1
    tail -2 "$LOGS/maxbatch_torch.log"
    MAXB_TORCH=$(grep -E '^\{' "$LOGS/maxbatch_torch.log" | tail -1)
    [ -n "$MAXB_TORCH" ] || MAXB_TORCH="failed or timed out (maxbatch_torch.log)"
  fi
fi

field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2], '-'))" "$1" "$2" 2>/dev/null || echo "-"; }
echo
echo "== summary ($GPU, $(date -u +%Y-%m-%d), ${T0:+$(elapsed)s total})"
printf '%-22s %s\n' "test_autograd_cuda" "${RESULT[test_autograd_cuda]}"
printf '%-22s %s\n' "test_layers_cuda" "${RESULT[test_layers_cuda]}"
printf '%-22s %s\n' "test_train_cuda" "${RESULT[test_train_cuda]}"
printf '%-22s %s\n' "test_autograd_ops(cpu)" "${RESULT[test_autograd_ops]}"
printf '%-22s %s\n' "test_layers_cuda_vqa" "${RESULT[test_layers_cuda_vqa]:-skipped}"
printf '%-22s %s\n' "test_train_cuda_vqa" "${RESULT[test_train_cuda_vqa]:-skipped}"
printf '%-22s %s\n' "test_layers_cuda_coca" "${RESULT[test_layers_cuda_coca]:-skipped}"
printf '%-22s %s\n' "test_train_cuda_coca" "${RESULT[test_train_cuda_coca]:-skipped}"
printf '%-22s %s\n' "test_train_u8_batches" "${RESULT[test_train_u8_batches]:-skipped}"
printf '%-22s %s\n' "test_train_feed" "${RESULT[test_train_feed]:-skipped}"
printf '%-22s %s\n' "test_layers_cuda_graph" "${RESULT[test_layers_cuda_graph]:-skipped}"
printf '%-22s %s\n' "test_train_nccl_overlap" "${RESULT[test_train_nccl_overlap]:-skipped}"
printf '%-22s %s\n' "test_layers_cuda_albef" "${RESULT[test_layers_cuda_albef]:-skipped}"
printf '%-22s %s\n' "test_train_cuda_albef" "${RESULT[test_train_cuda_albef]:-skipped}"
for k in vlt torch; do
  case $k in vlt) j=$ALBEF_VLT ;; torch) j=$ALBEF_TORCH ;; esac
  if [[ $j == \{* ]]; then
    printf '%-22s %s ms/step median, batch %s\n' "albef paper $k bf16" "$(field "$j" ms_per_step_median)" "$(field "$j" batch)"
  else
    printf '%-22s %s\n' "albef paper $k bf16" "$j"
  fi
done
if [[ $FEED == \{* ]]; then
  fips=$(field "$FEED" images_per_s); bi=$(field "$BENCH" images_per_s)
  ratio=$(python3 -c "import sys; print('%.1f%%' % (100 * float(sys.argv[1]) / float(sys.argv[2])))" "$fips" "$bi" 2>/dev/null || echo "-")
  printf '%-22s %s img/s, data-wait share %s, %s of bench clip-step (%s img/s, batch 256; target >= 90%%)\n' \
    "train JPEG feed" "$fips" "$(field "$FEED" data_wait)" "$ratio" "$bi"
else
  printf '%-22s %s\n' "train JPEG feed" "$FEED"
fi
if [[ $GRAPH == \{* ]]; then
  printf '%-22s eager %s s, eager sync-free %s s, graph %s s (%s img/s): %s\n' "cuda graph (same call)" \
    "$(field "$GRAPH" step_s_median)" "$(field "$GRAPH" syncfree_step_s_median)" "$(field "$GRAPH" graph_step_s_median)" \
    "$(field "$GRAPH" graph_images_per_s)" "$(field "$GRAPH" graph)"
else
  printf '%-22s %s\n' "cuda graph" "$GRAPH"
fi
printf '%-22s %-12s %-10s %-10s %s\n' "throughput" "images/s" "step_s" "TFLOP/s" "MFU"
printf '%-22s %s\n' "memory vlt" "$(field "$BENCH" arena_gib) GiB arena, $(field "$BENCH" device_used_gib) GiB card in use"
printf '%-22s %s\n' "memory torch eager" "$(field "${RESULT[eager]}" max_mem_gib) GiB max allocated"
printf '%-22s %s\n' "memory torch compile" "$(field "${RESULT[compile]}" max_mem_gib) GiB max allocated"
printf '%-22s %s\n' "max batch vlt" "$(field "$MAXB_VLT" max_batch) (estimate $(field "$MAXB_VLT" max_batch_estimate))"
printf '%-22s %s\n' "max batch torch eager" "$(field "$MAXB_TORCH" max_batch) (first failing $(field "$MAXB_TORCH" first_failing))"
for k in vlt torch-eager torch-compile; do
  case $k in vlt) j=$BENCH ;; torch-eager) j=${RESULT[eager]} ;; torch-compile) j=${RESULT[compile]} ;; esac
  if [[ $j == \{* ]]; then
    printf '%-22s %-12s %-10s %-10s %s\n' "$k" "$(field "$j" images_per_s)" "$(field "$j" step_s_median)" \
      "$(field "$j" achieved_tflops)" "$(field "$j" mfu)"
  else
    printf '%-22s %s\n' "$k" "$j"
  fi
done
