#!/usr/bin/env bash
# Builds and runs every test, one CMake workflow preset (CMakePresets.json) after the
# other: Debug and Release with warnings as errors (gcc and clang), the hidden stress
# tests in Release, and the sanitizer and valgrind runs.
# Usage: scripts/test.sh [--quick]   (--quick: the Debug build and its tests only)
# GREENLETS_JOBS sets the parallel build and test jobs (default: the number of CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh cmake g++ clang libboost-context-dev libboost-fiber-dev catch2 \
  libbenchmark-dev libcurl4-openssl-dev liburing-dev valgrind gdb python3-greenlet python3-gevent
export CMAKE_BUILD_PARALLEL_LEVEL=${GREENLETS_JOBS:-$(nproc)}
export CTEST_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL

workflow() {
  echo "=== greenlets tests: $1"
  cmake --workflow --preset "$1"
}

workflow dev
[ "${1:-}" = "--quick" ] && exit 0
workflow release  # with the hidden [.stress] tests
workflow clang
.ci/san_asan.sh
.ci/san_tsan.sh
.ci/san_valgrind.sh
echo "=== greenlets tests: all passed"
