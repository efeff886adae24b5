#!/usr/bin/env bash
# Instructions per request for each case of benches/static_auth.rs, counted by valgrind's
# callgrind: deterministic for the same binary and inputs, unlike wall-clock time on a shared
# machine. Each case runs twice (0 and N requests, same setup); the difference divided by N is
# its cost, compared with the no-auth baseline. Usage: benches/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind not installed: skipping instruction counts"; exit 0; }
bin=$(cargo bench --bench static_auth --no-run --message-format=json 2>/dev/null \
  | grep -o '"executable":"[^"]*static_auth[^"]*"' | tail -1 | cut -d'"' -f4)
count() { # case iterations -> instructions
  BENCH_COUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
cases="baseline/no_auth bearer/1_token/accepted bearer/1_token/rejected bearer/1000_tokens/accepted bearer/1000_tokens/rejected basic/accepted basic/rejected"
printf '%-30s %12s %12s %8s\n' case "instr/req" "Δ baseline" ratio
base=""
for c in $cases; do
  per=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
  [ -z "$base" ] && base=$per
  printf '%-30s %12d %+12d %7.2fx\n' "$c" "$per" $(( per - base )) "$(awk "BEGIN{printf \"%.2f\", $per/$base}")"
done
