#!/usr/bin/env bash
# Installs the Debian packages vlt builds and tests against, when any is missing.
#   scripts/install_deps.sh           install what is missing (root or sudo only then)
#   scripts/install_deps.sh --check   exit 1 (listing them on stderr) when any is missing
# The Makefile runs --check each time it is read, and when something is missing installs it and
# then re-reads itself (see "Bare-machine bootstrap" there), so that the README's two commands
# are the whole set-up on a fresh Debian machine. VLT_SAN=1 adds the sanitizer toolchain.
set -euo pipefail

PKGS=(
  build-essential pkg-config
  libopenblas-openmp-dev     # sgemm for the CPU backend (OpenMP build: one thread pool with vlt's loops)
  libjpeg62-turbo-dev libturbojpeg0-dev   # JPEG decode (TurboJPEG API)
  libwebp-dev libpng-dev     # WebP and PNG decode
  libzstd-dev zlib1g-dev     # .tar.zst shards, PNG/HDF5 compression
  libhdf5-dev                # embeddings files
  libyaml-dev libcjson-dev   # run configs, JSON annotations and state files
  libcmocka-dev              # unit tests
  libopenmpi-dev openmpi-bin # data-parallel launch (make MPI=1)
)
if [ "${VLT_SAN:-0}" = 1 ]; then PKGS+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then
  # Without dpkg (not Debian) nothing can be checked or installed here: assume the user has them.
  command -v dpkg-query >/dev/null || exit 0
  echo "vlt: missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

echo "vlt: installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "vlt: need root or sudo to install: ${missing[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
