#!/usr/bin/env bash
# Instructions per request for each case of benches/static_auth.rs (default), benches/jwt.rs or
# benches/dpop.rs, counted by valgrind's callgrind: deterministic for the same binary and
# inputs, unlike wall-clock time on a shared machine. Each case runs twice (0 and N requests,
# same setup); the difference divided by N is its cost (for jwt and dpop, only the measured
# loop is counted), compared with the no-auth baseline (and, for jwt, the layer cases with the
# raw jsonwebtoken::decode of the same algorithm and with the backend's signature check alone;
# for dpop, a DPoP request with a warm token cache with its proof's signature check alone).
# Usage: benches/instructions.sh [N] [static_auth|jwt|dpop]   (N defaults to 2000; 200 for jwt
# and dpop)
# BENCH_CARGO_ARGS adds cargo arguments, e.g. "--no-default-features --features rust-crypto".
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${2:-static_auth}
case $bench in
  static_auth) n=${1:-2000} ;;
  jwt|dpop) n=${1:-200} ;;
  *) echo "unknown bench: $bench (static_auth, jwt or dpop)" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "valgrind not installed: skipping instruction counts"; exit 0; }
# shellcheck disable=SC2086 # BENCH_CARGO_ARGS is a list of arguments
bin=$(cargo bench -p mcp-server-auth --bench "$bench" ${BENCH_CARGO_ARGS:-} --no-run --message-format=json 2>/dev/null \
  | grep -o "\"executable\":\"[^\"]*$bench[^\"]*\"" | tail -1 | cut -d'"' -f4)
# jwt and dpop: count inside the measured loop only (their setup signs with random nonces and
# blinding, so its instruction count varies from run to run).
collect=()
[ "$bench" != static_auth ] && collect=(--collect-atstart=no "--toggle-collect=$bench::common::measured")
count() { # case iterations -> instructions
  BENCH_COUNT="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "${collect[@]}" "$bin" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
if [ "$bench" = static_auth ]; then
  cases="baseline/no_auth bearer/1_token/accepted bearer/1_token/rejected bearer/1000_tokens/accepted bearer/1000_tokens/rejected basic/accepted basic/rejected bearer/1_token/accepted/peer throttle/bearer/1_token/accepted throttle/bearer/1_token/blocked"
  printf '%-30s %12s %12s %8s\n' case "instr/req" "Δ baseline" ratio
  base=""
  for c in $cases; do
    per=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
    [ -z "$base" ] && base=$per
    printf '%-30s %12d %+12d %7.2fx\n' "$c" "$per" $(( per - base )) "$(awk "BEGIN{printf \"%.2f\", $per/$base}")"
  done
  exit 0
fi
if [ "$bench" = dpop ]; then
  # Per proof algorithm: the signature check alone (s, the floor) and a DPoP request with a warm
  # token cache and a known proof key (d); "over floor" is (d) − baseline − (s), what a DPoP
  # request costs beyond its proof's signature (issue 18's budget allows 0.1 × (s) + 1 µs).
  printf '%-24s %12s %12s %12s\n' case "instr/req" "Δ baseline" "over floor"
  c=dpop/baseline/no_auth
  base=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
  printf '%-24s %12d %12s %12s\n' "$c" "$base" "—" ""
  for alg in es256 eddsa; do
    c=dpop/$alg/signature
    sig=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
    printf '%-24s %12d %+12d %12s\n' "$c" "$sig" $(( sig - base )) ""
    c=dpop/$alg/warm
    per=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
    printf '%-24s %12d %+12d %+12d\n' "$c" "$per" $(( per - base )) $(( per - base - sig ))
  done
  exit 0
fi
# jwt: per algorithm, raw decode (a), the signature check alone (s, the floor), layer without
# cache (b), layer on a cache hit (c). "over floor" is (b) − baseline − (s), the cost of a cold
# check beyond the signature; for (c) it is (c) − baseline, the cost of a warm check.
printf '%-28s %12s %12s %10s %12s\n' case "instr/req" "Δ baseline" "vs raw" "over floor"
c=jwt/baseline/no_auth
base=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
printf '%-28s %12d %12s %10s %12s\n' "$c" "$base" "—" "" ""
for alg in hs256 rs256 es256 eddsa; do
  raw=""
  sig=""
  for kind in raw signature layer_nocache cache_hit; do
    c=jwt/$alg/$kind
    per=$(( ( $(count "$c" "$n") - $(count "$c" 0) ) / n ))
    [ -z "$raw" ] && raw=$per
    [ "$kind" = signature ] && sig=$per
    vs=""
    over=""
    [ "$kind" = layer_nocache ] && vs=$(awk "BEGIN{printf \"%.3fx\", $per/$raw}") && over=$(printf '%+d' $(( per - base - sig )))
    [ "$kind" = cache_hit ] && over=$(printf '%+d' $(( per - base )))
    printf '%-28s %12d %+12d %10s %12s\n' "$c" "$per" $(( per - base )) "$vs" "$over"
  done
done
