#!/usr/bin/env bash
# Installs what bptt needs on a fresh Debian bookworm machine (only what is
# missing), configures the build once and builds. Idempotent: a second run
# only re-runs ninja.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BPTT_BUILD_DIR:-build}
PACKAGES=(llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
          cmake ninja-build g++ libgtest-dev libbenchmark-dev
          pybind11-dev python3-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -G Ninja -S . -B "$BUILD_DIR" \
    -DCMAKE_BUILD_TYPE=Release \
    -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
    -DPython3_EXECUTABLE=/usr/bin/python3
fi
ninja -C "$BUILD_DIR" ${BPTT_NINJA_FLAGS:-}
