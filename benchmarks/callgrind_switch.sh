#!/bin/sh
# Instruction counts per operation, ours against the raw Boost.Context fiber, under
# callgrind: Ir(n2) - Ir(n1) / (n2 - n1) with the same binary, which removes start-up
# and tear-down cost. Counts are user-space instructions only, and deterministic.
#
#   benchmarks/callgrind_switch.sh BUILD_DIR [N1 N2]
#
# BUILD_DIR holds benchmarks/callgrind_switch (build it in Release for useful numbers).
set -eu
build=${1:?usage: callgrind_switch.sh BUILD_DIR [N1 N2]}
n1=${2:-100000}
n2=${3:-200000}
bin=$build/benchmarks/callgrind_switch
[ -x "$bin" ] || { echo "callgrind_switch.sh: $bin not found (build the benchmarks first)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "callgrind_switch.sh: valgrind not installed" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Total Ir of one run: the "summary:" line of the callgrind output file.
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; return 1; }
  sed -n 's/^summary: *//p' "$tmp/out"
}

per_op() {  # mode n1 n2 -> Ir per operation
  a=$(ir "$1" "$2") && b=$(ir "$1" "$3") || return 1
  awk -v a="$a" -v b="$b" -v n1="$2" -v n2="$3" 'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }'
}

echo "instructions per operation (callgrind Ir, (Ir(n2)-Ir(n1))/(n2-n1), n1=$n1 n2=$n2)"
printf '%-34s %12s %12s %8s\n' "operation" "greenlets" "raw fiber" "ratio"
row() {  # label ours raw [n1 n2]
  ours=$(per_op "$2" "${4:-$n1}" "${5:-$n2}") || { printf '%-34s %12s\n' "$1" "(mode $2 failed or missing)"; return 0; }
  raw=$(per_op "$3" "${4:-$n1}" "${5:-$n2}")
  awk -v l="$1" -v o="$ours" -v r="$raw" 'BEGIN { printf "%-34s %12.1f %12.1f %8.2f\n", l, o, r, o / r }'
}
row "switch round trip, no payload" greenlet_switch raw_switch
row "switch round trip, an int" greenlet_int raw_int
row "generator, one item" generator raw_generator
s1=$((n1 / 5)); s2=$((n2 / 5))
row "spawn (create, start, finish)" greenlet_spawn raw_spawn "$s1" "$s2"
