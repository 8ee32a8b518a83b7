#!/usr/bin/env bash
# Total preload time on a purged cache: cache-preload vs GNU wget, both with NPP's exact Preload
# All flags (npp-usage.md §1.7; only the program name differs), on the bench site (1,000 pages,
# 20 ms render, 8 PHP-FPM workers, FastCGI cache, loopback). Goal: ratio >= 5.
# Prints raw times, the files nginx stored for each, and the ratio. REPEAT=n runs n rounds and
# reports the median of each. Needs root, nginx, php-fpm, wget.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-stack.sh
source ./lib-bin.sh
REPEAT=${REPEAT:-1}

bench_build
stack_start
mapfile -t FLAGS < <(npp_wget_flags "$STACK_DIR/pdir")
# Warm PHP's opcache and the FPM workers so neither tool pays for a cold start.
for i in $(seq 16); do curl -fs -o /dev/null "${STACK_URL}?nocache=warm$i"; done

run() { # tool → prints elapsed ms; leaves the log in $STACK_DIR/<tool>.log
    local tool=$1 t0 t1
    stack_purge
    t0=$(now_ms)
    "$tool" "${FLAGS[@]}" -- "$STACK_URL" >"$STACK_DIR/$(basename "$tool").log" 2>&1 </dev/null || true
    t1=$(now_ms)
    echo $((t1 - t0))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

wget_ms=(); cp_ms=(); wget_files=0; cp_files=0
for _ in $(seq "$REPEAT"); do
    wget_ms+=("$(run wget)"); wget_files=$(stack_cached_files)
    cp_ms+=("$(run "$CACHE_PRELOAD")"); cp_files=$(stack_cached_files)
done
w=$(printf '%s\n' "${wget_ms[@]}" | median)
c=$(printf '%s\n' "${cp_ms[@]}" | median)
echo "site: $STACK_PAGES pages, ${STACK_RENDER_US} us render, $STACK_WORKERS PHP-FPM workers, $STACK_URL"
echo "wget (NPP flags):          ${w} ms, cache files after: $wget_files   [runs: ${wget_ms[*]}]"
echo "cache-preload (same flags): ${c} ms, cache files after: $cp_files   [runs: ${cp_ms[*]}]"
grep -E '^(FINISHED|Total wall clock|Downloaded)' "$STACK_DIR/$(basename "$CACHE_PRELOAD").log" | sed 's/^/  cache-preload log: /' || true
awk -v w="$w" -v c="$c" 'BEGIN { printf "ratio wget/cache-preload: %.2fx (goal >= 5x)\n", w / c }'
