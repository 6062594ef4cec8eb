#!/usr/bin/env bash
# The coverage-guided fuzzing campaign of issue #20: every cargo-fuzz target in
# fuzz/ for RUNS executions (default 1,000000), libFuzzer's closing lines of
# each appended to docs/reports/fuzz_cargo_<date>.txt. Crashes, hangs (> 1 s)
# and out-of-memory (> 2 GiB) stop a target and are reported with their input
# in fuzz/artifacts/<target>/.
#
#   cargo install cargo-fuzz
#   scripts/fuzz_campaign.sh [TARGET ...]        (default: all targets)
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000000}
REPORT=docs/reports/fuzz_cargo_$(date +%Y-%m-%d).txt
TARGETS=${*:-idx image pairs people checkpoint config rec rec_index rec_property bin}
export RUSTC_BOOTSTRAP=1
for T in $TARGETS; do
    mkdir -p "fuzz/corpus/$T"
    LOG=$(mktemp)
    START=$(date +%s)
    cargo fuzz run --sanitizer none -O "$T" "fuzz/corpus/$T" "fuzz/seeds/$T" -- \
        -runs="$RUNS" -timeout=1 -rss_limit_mb=2048 -max_len=32768 -print_final_stats=1 \
        > "$LOG" 2>&1
    STATUS=$?
    {
        echo "## $T: exit $STATUS, $(( $(date +%s) - START )) s wall, $(date -u +%FT%TZ), $(git rev-parse --short HEAD)"
        grep -E "^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)" "$LOG" | grep -v "^stat::"
        grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|slowest_unit_time_sec|peak_rss_mb)" "$LOG"
        echo
    } >> "$REPORT"
    rm -f "$LOG"
done
