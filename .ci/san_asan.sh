#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (with
# LeakSanitizer), then the switching tests again with fake stacks: the `asan` workflow
# preset, in build/asan. Usage: .ci/san_asan.sh. Exits non-zero on any finding.
# GREENLETS_JOBS sets the parallel build and test jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 0 ] || [ "$1" = build/asan ] || { echo "usage: .ci/san_asan.sh (builds in build/asan)" >&2; exit 2; }
export CMAKE_BUILD_PARALLEL_LEVEL=${GREENLETS_JOBS:-2}
export CTEST_PARALLEL_LEVEL=$CMAKE_BUILD_PARALLEL_LEVEL
cmake --workflow --preset asan
