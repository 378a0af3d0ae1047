#!/usr/bin/env bash
# Builds the CUDA binaries HERE and packs them for a lent GPU machine, which has CUDA 13, cuBLAS
# and PyTorch but none of vlt's other libraries (cmocka, OpenBLAS, cJSON, libyaml, libwebp, ...).
#
#   bash scripts/prepare_gpu_carry.sh     ->  gpu_carry/ (git-ignored): bundle.tar.xz + MANIFEST
#
# The bundle holds bin/ (vlt, whose `vlt bench clip-step` is the GPU benchmark, and the test
# binaries, built with `make CUDA=1 MPI=0`), lib/ (every
# shared library they load that is not part of the C runtime or the CUDA toolkit, found with ldd)
# and the PyTorch references (scripts/bench/torch_clip_baseline.py, torch_max_batch.py, copied beside
# the binaries). cuBLAS/cuBLASLt (over 500 MB) and NCCL (218 MB) are not carried: scripts/gpu_check.sh
# finds the GPU machine's own (NCCL 2.28 in its default library path). Then, on the device tool:  run(command="VLT_GPU_DEADLINE=450 bash scripts/gpu_check.sh",
# carry=["gpu_carry"], timeout_s=480).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/cuda/nompi
TESTS=(test_autograd_cuda test_layers_cuda test_train_cuda test_autograd_ops test_autograd_tape test_layers_cuda_albef test_train_cuda_albef
       test_layers_cuda_vqa test_train_cuda_vqa test_layers_cuda_coca test_train_cuda_coca
       test_train_u8_batches test_train_feed test_layers_cuda_graph test_train_nccl_overlap)
OUT=gpu_carry
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

echo "== building (make CUDA=1 MPI=0)"
# (the targets by path: `make all` would point ./vlt at this build)
make -j2 CUDA=1 MPI=0 "$BUILD/vlt" "${TESTS[@]/#/$BUILD/tests/}" "$BUILD/lib/libvlt_layers.a" \
  "$BUILD/lib/libvlt_checkpoints.a" "$BUILD/lib/libvlt_autograd.a" "$BUILD/lib/libvlt_base.a" >"$STAGE/build.log" 2>&1 || { tail -40 "$STAGE/build.log"; exit 1; }

mkdir -p "$STAGE/vlt_gpu/bin" "$STAGE/vlt_gpu/lib" "$STAGE/vlt_gpu/cudart"
cp "$BUILD/vlt" "$STAGE/vlt_gpu/bin/"
for t in "${TESTS[@]}"; do cp "$BUILD/tests/$t" "$STAGE/vlt_gpu/bin/"; done

# Libraries: everything ldd resolves except the C runtime (present on any Linux) and the CUDA
# toolkit's (the GPU machine's own match its driver). libcudart is small: carried as a fallback.
skip_re='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libgcc_s|libstdc\+\+|libcublas|libcublasLt|libcuda\.so|libcudart|libnccl)'
for b in "$STAGE"/vlt_gpu/bin/*; do
  ldd "$b" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if [[ $name =~ $skip_re ]]; then continue; fi
    [ -f "$STAGE/vlt_gpu/lib/$name" ] || cp -L "$path" "$STAGE/vlt_gpu/lib/$name"
  done
  if ldd "$b" | grep -q 'not found'; then echo "unresolved libraries for $b:"; ldd "$b" | grep 'not found'; exit 1; fi
done
cudart=$(ldd "$BUILD/tests/test_autograd_cuda" | awk '/libcudart/ {print $3}')
cp -L "$cudart" "$STAGE/vlt_gpu/cudart/"

baseline=scripts/bench/torch_clip_baseline.py
if [ -f "$baseline" ]; then cp "$baseline" "$STAGE/vlt_gpu/"; else echo "warning: $baseline not found; gpu_check.sh will skip PyTorch"; fi
cp scripts/bench/torch_max_batch.py "$STAGE/vlt_gpu/"
git rev-parse HEAD >"$STAGE/vlt_gpu/COMMIT"

rm -rf "$OUT"
mkdir -p "$OUT"
(cd "$STAGE" && tar -cf - vlt_gpu | xz -T2 -6 >"$OLDPWD/$OUT/bundle.tar.xz")
(cd "$STAGE/vlt_gpu" && find . -type f -printf '%s\t%p\n' | sort -k2) >"$OUT/MANIFEST"
echo "== gpu_carry/ ready"
cat "$OUT/MANIFEST"
du -sh "$OUT/bundle.tar.xz"
size=$(stat -c %s "$OUT/bundle.tar.xz")
if [ "$size" -gt $((40 << 20)) ]; then echo "error: bundle is over 40 MiB (the device tool carries 64 MiB with the tree)"; exit 1; fi
