#!/usr/bin/env bash
# Builds Octet and runs the whole test suite:
#   1. Release build (warnings as errors): unit tests, kernel tests under every OCTET_MAX_ISA cap,
#      golden tests against the PyTorch reference (scripts/make_golden.sh runs first, via ctest).
#   2. Address + undefined-behaviour sanitizer build of the unit and kernel tests.
# Usage: scripts/test.sh            (after scripts/install_deps.sh)
# Environment: OCTET_DATA (default ../shared/data), JOBS (default: nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${JOBS:-$(nproc)}
export OCTET_DATA=${OCTET_DATA:-$root/../shared/data}
if [ ! -d "$OCTET_DATA/glue" ]; then
  echo "test.sh: shared data not found at $OCTET_DATA (set OCTET_DATA)" >&2
  exit 1
fi

echo "== Format check (clang-format, .clang-format) =="
if command -v clang-format >/dev/null; then
  git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
else
  echo "clang-format not installed: format check skipped (scripts/install_deps.sh installs it)"
fi

echo "== Release build =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DOCTET_WERROR=ON >/dev/null
ninja -C build -j "$jobs"

echo "== Sanitizer build (address, undefined) =="
# The trainer is left out: libtorch is not built with sanitizers, and GCC 12 raises
# -Wmaybe-uninitialized false positives inside its headers under -fsanitize.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOCTET_SANITIZE=ON \
  -DOCTET_BUILD_BENCH=OFF -DOCTET_BUILD_TRAIN=OFF -DOCTET_WERROR=ON >/dev/null
ninja -C build-asan -j "$jobs" octet_tests octet_kernel_tests

echo "== Sanitizer tests =="
# ASan and oneDNN's JIT / libgomp: leaks of process-lifetime thread pools are not ours.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan -L 'unit|kernels' -j "$jobs" --output-on-failure
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== Release tests =="
ctest --test-dir build -j "$jobs" --output-on-failure
