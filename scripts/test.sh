#!/usr/bin/env bash
# Builds and runs every test: Debug and Release with warnings as errors (gcc and
# clang), the hidden stress tests in Release, and the sanitizer and valgrind runs.
# Usage: scripts/test.sh [--quick]   (--quick: the Debug build and its ctest only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh cmake g++ clang libboost-context-dev catch2 libbenchmark-dev valgrind \
  python3-greenlet python3-gevent
jobs=$(nproc)

run_config() {  # name, then cmake arguments
  local name=$1; shift
  echo "=== greenlets tests: $name"
  cmake -S . -B "build/$name" -DGREENLETS_WARNINGS_AS_ERRORS=ON -DGREENLETS_BUILD_BENCHMARKS=OFF "$@" >/dev/null
  cmake --build "build/$name" -j "$jobs"
  ctest --test-dir "build/$name" --output-on-failure -j "$jobs"
}

run_config debug -DCMAKE_BUILD_TYPE=Debug
[ "${1:-}" = "--quick" ] && exit 0
run_config release -DCMAKE_BUILD_TYPE=Release
echo "=== greenlets tests: release, hidden stress tests"
build/release/tests/greenlets_tests "[.stress]"
run_config clang-debug -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++
for tool in asan tsan valgrind; do
  if [ -x ".ci/san_$tool.sh" ]; then
    echo "=== greenlets tests: $tool"
    ".ci/san_$tool.sh" "build/$tool"
  fi
done
echo "=== greenlets tests: all passed"
