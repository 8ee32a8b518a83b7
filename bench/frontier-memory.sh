#!/usr/bin/env bash
# Peak resident memory for 1,000,000 URLs held at once in the crawler's frontier (bounded queue +
# 128-bit seen-set), measured two ways: the process's own VmHWM and /usr/bin/time -v's maximum
# resident set size. Goal: under 200 MB. N=... overrides the URL count.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-bin.sh
N=${N:-1000000}

(cd "$REPO_ROOT" && CARGO_TARGET_DIR=$BENCH_TARGET_DIR cargo build --quiet --release -p cache-preload --example frontier_memory) >&2
exe="$BENCH_TARGET_DIR/release/examples/frontier_memory"
small=$(/usr/bin/time -f '%M' "$exe" 1000 2>&1 >/dev/null | tail -n1)
out=$(/usr/bin/time -v "$exe" "$N" 2>"${TMPDIR:-/tmp}/frontier-memory.time")
max_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "${TMPDIR:-/tmp}/frontier-memory.time")
rm -f "${TMPDIR:-/tmp}/frontier-memory.time"
echo "$out"
awk -v n="$N" -v m="$max_kb" -v s="$small" 'BEGIN {
    printf "/usr/bin/time max RSS: %.1f MB for %d URLs (1,000 URLs: %.1f MB)\n", m / 1024, n, s / 1024
    printf "ratio to the 200 MB budget: %.2f (goal < 1)\n", m / 1024 / 200 }'
