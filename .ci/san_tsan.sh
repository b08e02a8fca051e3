#!/usr/bin/env bash
# The whole test suite under ThreadSanitizer. Usage: .ci/san_tsan.sh [build-dir].
# Exits non-zero on any report.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/san-tsan}
jobs=${GREENLETS_JOBS:-2}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DGREENLETS_WARNINGS_AS_ERRORS=ON \
  -DGREENLETS_SANITIZER=thread -DGREENLETS_BUILD_EXAMPLES=OFF -DGREENLETS_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j"$jobs" --target greenlets_tests
# Not the packaging/header checks (no tool in them), nor the [scale] tests: they fill
# vm.max_map_count, where the sanitizer runtime itself then fails to mmap, and
# hold 20,000 greenlets, each of which costs a ThreadSanitizer fiber (~370 KB).
exclude='^(packaging|headers)\.|vm\.max_map_count|suspended greenlets take at most'
export TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:report_signal_unsafe=1
ctest --test-dir "$build" -j"$jobs" --output-on-failure --no-tests=error \
  -E "$exclude"
