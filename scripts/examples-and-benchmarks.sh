#!/usr/bin/env bash
# Builds the examples and benchmarks in Release (the `bench` preset, in build/bench),
# runs every example, then every benchmark at sizes that finish in a few minutes.
# Usage: scripts/examples-and-benchmarks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh cmake g++ libboost-context-dev libboost-fiber-dev catch2 \
  libbenchmark-dev libcurl4-openssl-dev liburing-dev gdb python3-greenlet python3-gevent
cmake --preset bench >/dev/null
cmake --build --preset bench -j "$(nproc)"
ran=0
for example in build/bench/examples/example_[0-9][0-9]_*; do
  [ -x "$example" ] || continue
  echo "=== $(basename "$example")"
  "$example"
  ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || { echo "greenlets: no example was built" >&2; exit 1; }
ctest --preset bench
benchmarks/run_all.sh build/bench
