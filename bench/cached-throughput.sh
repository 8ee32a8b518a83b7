#!/usr/bin/env bash
# Pages per second of cache-preload on an already-cached site (every page a HIT), relative to
# wrk's ceiling on the same nginx (one cached page, keep-alive, 2 threads x 16 connections).
# cache-preload runs twice: with its defaults (adaptive, capped for visitors' sake) and with
# --max-concurrency 16, to show how much of the gap is the cap. Pages/s counts the whole process
# (start-up, robots.txt and sitemaps, crawl, link extraction). A second wrk run cycles through
# every sitemap URL with the crawler's own browser headers (bench/wrk-urls.lua). The crawler
# decodes and scans every body for links and wrk does neither, so wrk stays a ceiling.
# Needs root, nginx, php-fpm, wrk.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-stack.sh
source ./lib-bin.sh

bench_build
stack_start
"$CACHE_PRELOAD" --no-progress "$STACK_URL" >/dev/null 2>&1 || true
files=$(stack_cached_files)

timed() { # args → "ms pages HITs"
    local t0 t1 out
    t0=$(now_ms)
    out=$("$CACHE_PRELOAD" --json "$@" "$STACK_URL" 2>/dev/null | tail -n1 || true)
    t1=$(now_ms)
    python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print(sys.argv[2], s["pages"], s["cache"]["HIT"])' "$out" $((t1 - t0))
}
read -r d_ms d_pages d_hits < <(timed)
read -r c_ms c_pages c_hits < <(timed --max-concurrency 16)
page=$(sed -n 2p "$STACK_URLS")
wrk_rps=$(wrk -t2 -c16 -d5s "$page" | awk '/Requests\/sec/ {print $2}')
# The same, but cycling through every sitemap URL with the crawler's browser headers.
ua=$(sed -n 's/^pub const UA_DESKTOP: &str = "\(.*\)";$/\1/p' ../crawler/src/config.rs)
accept=$(sed -n 's/^pub const ACCEPT_BROWSER: &str = "\(.*\)";$/\1/p' ../crawler/src/config.rs)
wrk_all=$(WRK_URLS=$STACK_URLS WRK_UA=$ua WRK_ACCEPT=$accept \
    wrk -t2 -c16 -d5s -s ./wrk-urls.lua "$STACK_URL" | awk '/Requests\/sec/ {print $2}')
echo "site: $STACK_PAGES sitemap pages, all cached ($files cache files)"
awk -v dp="$d_pages" -v dh="$d_hits" -v d="$d_ms" -v cp="$c_pages" -v c="$c_ms" -v w="$wrk_rps" -v wa="$wrk_all" 'BEGIN {
    printf "cache-preload defaults:              %d pages (%d HIT) in %d ms = %.0f pages/s\n", dp, dh, d, dp * 1000 / d
    printf "cache-preload --max-concurrency 16:  %d pages in %d ms = %.0f pages/s\n", cp, c, cp * 1000 / c
    printf "wrk ceiling (-t2 -c16, one page):    %.0f requests/s\n", w
    printf "wrk, every sitemap URL, browser headers: %.0f requests/s\n", wa
    printf "ratio cache-preload/wrk: defaults %.3f, --max-concurrency 16: %.3f\n", dp * 1000 / d / w, cp * 1000 / c / w
    printf "ratio cache-preload/wrk (every URL, same headers): defaults %.3f\n", dp * 1000 / d / wa }'
