#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 20), one after another, from the
# committed seeds (fuzz/seeds/<target>) plus the working corpus (fuzz/corpus/<target>, not
# committed). Prints one line per target; exits non-zero if any target crashes, hangs (> 5 s)
# or runs out of memory (> 2 GiB). Usage: fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo fuzz passes nightly-only flags (-Zsanitizer=address); the machine has only a stable
# toolchain, which accepts them with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

cargo fuzz build

status=0
logs="$(mktemp -d)"
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    log="$logs/$target.log"
    if cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    stat() { grep -o "^stat::$1: *[0-9]*" "$log" | grep -o '[0-9]*$' || echo '?'; }
    last="$(grep -E '^#[0-9]+[[:space:]]+(INITED|NEW|REDUCE|pulse|DONE)' "$log" | tail -n 1 || true)"
    cov="$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')"
    ft="$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || echo '?')"
    corpus="$(find "corpus/$target" "seeds/$target" -type f | wc -l)"
    printf '%-16s %-6s %ss execs=%s exec/s=%s cov=%s ft=%s corpus=%s\n' "$target" "$result" \
        "$secs" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" "$cov" "$ft" \
        "$corpus"
    if [ "$result" != ok ]; then
        tail -n 60 "$log"
    fi
done
rm -rf "$logs"
exit "$status"
