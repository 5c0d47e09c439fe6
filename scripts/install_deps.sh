#!/usr/bin/env bash
# Installs every Debian 12 package Octet's build, tests and benchmarks need.
# Usage: sudo scripts/install_deps.sh        (idempotent; runs apt-get update first)
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git clang-format \
  libdnnl-dev ocl-icd-opencl-dev \
  nlohmann-json3-dev libcli11-dev libfmt-dev libutf8proc-dev zlib1g-dev \
  libgtest-dev libgmock-dev googletest libbenchmark-dev \
  python3 python3-torch python3-numpy libopenblas0-openmp libtorch-dev \
  python3-onnx nodejs \
  >/dev/null
echo "install_deps: done"
