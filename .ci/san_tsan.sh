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
export TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:report_signal_unsafe=1
ctest --test-dir "$build" -j"$jobs" --output-on-failure --no-tests=error -E '^(packaging|headers)\.'
