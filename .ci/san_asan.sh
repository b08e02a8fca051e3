#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (with
# LeakSanitizer). Usage: .ci/san_asan.sh [build-dir]. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/san-asan}
jobs=${GREENLETS_JOBS:-2}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DGREENLETS_WARNINGS_AS_ERRORS=ON \
  -DGREENLETS_SANITIZER=address -DGREENLETS_BUILD_EXAMPLES=OFF -DGREENLETS_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j"$jobs" --target greenlets_tests
# Not the packaging/header checks (no tool in them), nor the two [scale] tests that
# fill vm.max_map_count: the sanitizer runtime itself then fails to mmap.
exclude='^(packaging|headers)\.|vm\.max_map_count'
# halt/abort on the first report so that ctest sees a failure; a report is never "recovered".
asan=detect_leaks=1:abort_on_error=1:halt_on_error=1:check_initialization_order=1:strict_init_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=report_objects=1
ASAN_OPTIONS=$asan ctest --test-dir "$build" -j"$jobs" --output-on-failure --no-tests=error \
  -E "$exclude"
# Again with fake stacks (stack-use-after-return), which the switch must save and
# restore per greenlet; only the switching tests, as each fake stack is a mapping of
# its own (the scale tests count mappings).
ASAN_OPTIONS=$asan:detect_stack_use_after_return=1 "$build/tests/greenlets_tests" \
  '[tools]~[scale],[rule1]~[scale],[rule2]~[scale],[rule3]~[scale],[rule5]~[scale],[rule6]~[scale],[rule10]~[scale],[generator]~[scale],[switch]~[scale]'
