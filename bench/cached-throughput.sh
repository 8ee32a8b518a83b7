#!/usr/bin/env bash
# Pages per second of cache-preload on an already-cached site (every page a HIT), relative to
# wrk's ceiling on the same nginx (one cached page, keep-alive, 2 threads x 16 connections).
# cache-preload runs twice: with its defaults (adaptive, capped for visitors' sake) and with
# --max-concurrency 16, to show how much of the gap is the cap. Needs root, nginx, php-fpm, wrk.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-stack.sh
source ./lib-bin.sh

bench_build
stack_start
"$CACHE_PRELOAD" --no-progress "$STACK_URL" >/dev/null 2>&1 || true
files=$(stack_cached_files)

timed() { local t0 t1; t0=$(now_ms); "$@" >/dev/null 2>&1 || true; t1=$(now_ms); echo $((t1 - t0)); }
d_ms=$(timed "$CACHE_PRELOAD" --no-progress "$STACK_URL")
c_ms=$(timed "$CACHE_PRELOAD" --no-progress --max-concurrency 16 "$STACK_URL")
wrk_rps=$(wrk -t2 -c16 -d5s "${STACK_URL}p/1/" | awk '/Requests\/sec/ {print $2}')
echo "site: $STACK_PAGES pages, all cached ($files cache files)"
awk -v n="$STACK_PAGES" -v d="$d_ms" -v c="$c_ms" -v w="$wrk_rps" 'BEGIN {
    printf "cache-preload defaults:              %d ms = %.0f pages/s\n", d, n * 1000 / d
    printf "cache-preload --max-concurrency 16:  %d ms = %.0f pages/s\n", c, n * 1000 / c
    printf "wrk ceiling (-t2 -c16, one page):    %.0f requests/s\n", w
    printf "ratio cache-preload/wrk: defaults %.3f, --max-concurrency 16: %.3f\n", n * 1000 / d / w, n * 1000 / c / w }'
