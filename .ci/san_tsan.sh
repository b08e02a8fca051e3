#!/usr/bin/env bash
# The whole test suite under ThreadSanitizer: the `tsan` workflow preset, in build/tsan.
# Usage: .ci/san_tsan.sh. Exits non-zero on any report.
# GREENLETS_JOBS sets the parallel build and test jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 0 ] || [ "$1" = build/tsan ] || { echo "usage: .ci/san_tsan.sh (builds in build/tsan)" >&2; exit 2; }
export CMAKE_BUILD_PARALLEL_LEVEL=${GREENLETS_JOBS:-2}
export CTEST_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL
cmake --workflow --preset tsan
