#!/bin/sh
# Runs every benchmark at sizes that finish in a few minutes in total.
#
#   benchmarks/run_all.sh BUILD_DIR [--json]
#
# BUILD_DIR is a CMake build directory of this project with GREENLETS_BUILD_BENCHMARKS
# on (configure it with -DCMAKE_BUILD_TYPE=Release: every binary warns on a Debug build).
# The full-size runs are the binaries with no options (N as in the tutorial).
set -eu
build=${1:?usage: run_all.sh BUILD_DIR [--json]}
shift
b=$build/benchmarks
here=$(cd "$(dirname "$0")" && pwd)
for x in yield_vs_serial switch_overhead memory_per_greenlet; do
  [ -x "$b/$x" ] || { echo "run_all.sh: $b/$x not found; build the benchmarks first" >&2; exit 1; }
done

echo "### yield_vs_serial (N = 10,000,000, as in the tutorial)"
"$b/yield_vs_serial" --n 1e7 --reps 5 "$@"
echo
echo "### switch_overhead (N = 20,000,000; the tutorial uses 1e8: run the binary without --n)"
"$b/switch_overhead" --n 2e7 --reps 5 --thread-n 50000 --python-n 1e6 "$@"
echo
if [ -x "$b/micro" ]; then
  echo "### micro (Google Benchmark)"
  "$b/micro" --reps 5 --benchmark_min_time=0.2 "$@"  # colour only on a terminal
else
  echo "### micro skipped: not built (Google Benchmark, libbenchmark-dev, not found)"
fi
echo
[ -x "$b/hub" ] && { echo "### hub: the hub beside Boost.Fiber and gevent"; "$b/hub" --reps 3 "$@"; echo; }
[ -x "$b/echo" ] && { echo "### echo: the echo server beside epoll, io_uring, thread-per-connection and gevent servers"; "$b/echo" --conns 500,10000 --seconds 2 "$@"; echo; }
[ -x "$b/patch" ] && { echo "### patch: plain POSIX calls under the patch beside the explicit API"; "$b/patch" --conns 500 --seconds 2 "$@"; echo; }
echo "### memory_per_greenlet: 100,000 suspended greenlets, every allocator"
"$b/memory_per_greenlet" --counts 100000 "$@"
echo
echo "### memory_per_greenlet: 1,000,000 suspended greenlets, default allocator and raw fiber"
echo "### (every allocator at 1M: memory_per_greenlet --counts 100000,1000000, about 2-4 minutes)"
"$b/memory_per_greenlet" --counts 1000000 --alloc default,raw_fiber "$@"
echo
if command -v valgrind >/dev/null && [ -z "${1:-}" ]; then
  echo "### instruction counts (callgrind)"
  "$here/callgrind_switch.sh" "$build" 20000 40000
fi
