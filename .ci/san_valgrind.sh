#!/usr/bin/env bash
# The whole test suite under valgrind memcheck, in one run of the test binary (one
# valgrind start-up instead of one per test case). Usage: .ci/san_valgrind.sh
# [build-dir] [catch2 args]. Exits non-zero on any error or leak.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/san-valgrind}
shift || true  # the rest goes to the test binary (Catch2 test specs)
jobs=${GREENLETS_JOBS:-2}
if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
  else
    echo "san_valgrind.sh: valgrind is not installed" >&2
    exit 1
  fi
fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGREENLETS_WARNINGS_AS_ERRORS=ON \
  -DGREENLETS_BUILD_EXAMPLES=OFF -DGREENLETS_BUILD_BENCHMARKS=OFF
cmake --build "$build" -j"$jobs" --target greenlets_tests
# By default everything but the [scale] tests: they count the process's mappings
# (valgrind adds its own) or fill vm.max_map_count (valgrind's segment table
# overflows first: "VG_N_SEGMENTS is too low", a fatal error of valgrind itself).
specs=("$@")
[ ${#specs[@]} -eq 0 ] && specs=('~[scale]')
valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect,possible \
  --errors-for-leak-kinds=definite,indirect,possible --track-origins=yes --num-callers=30 \
  "$build/tests/greenlets_tests" "${specs[@]}"
