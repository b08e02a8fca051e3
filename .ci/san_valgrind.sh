#!/usr/bin/env bash
# The test binary under valgrind memcheck, in one run (one valgrind start-up instead of
# one per test case): the `valgrind` presets, in build/valgrind. Exits non-zero on any
# error or leak.
# Usage: .ci/san_valgrind.sh [catch2 test spec...]   (default: everything but [scale])
# GREENLETS_JOBS sets the parallel build jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = build/valgrind ] && shift  # the build directory is the preset's
scripts/setup-debian.sh valgrind
export CMAKE_BUILD_PARALLEL_LEVEL=${GREENLETS_JOBS:-2}
specs=()  # the preset's default unless given (a cache variable, a list)
[ $# -eq 0 ] || specs=("-DGREENLETS_MEMCHECK_SPECS=$(IFS=';'; echo "$*")")
cmake --preset valgrind "${specs[@]}"
cmake --build --preset valgrind
ctest --preset valgrind
