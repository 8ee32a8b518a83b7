#!/usr/bin/env bash
# p95 response time of a visitor's uncached requests (PHP renders each one: ?nocache= bypasses the
# cache) while cache-preload warms the purged bench site, relative to the same visitor on an idle
# site. The preload uses NPP's flags (adaptive concurrency, defaults). Goal: ratio <= 1.5.
# The visitor is measured across ROUNDS (default 3) preloads, each on a freshly purged cache, for
# enough samples; for reference the same during one GNU wget preload. Needs root, nginx, php-fpm, wget.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-stack.sh
source ./lib-bin.sh
IDLE_SECONDS=${IDLE_SECONDS:-10}
ROUNDS=${ROUNDS:-3}   # preloads (each on a freshly purged cache) the visitor is measured across

bench_build
stack_start
mapfile -t FLAGS < <(npp_wget_flags "$STACK_DIR/pdir")
for i in $(seq 16); do curl -fs -o /dev/null "${STACK_URL}?nocache=warm$i"; done

during() { # tool → "count p50 p95" of the visitor while the tool preloads a purged cache
    local tool=$1 stop="$STACK_DIR/stop" out="$STACK_DIR/visitor.out" pid
    stack_purge
    rm -f "$stop"
    python3 ./visitor.py "$STACK_URL" --urls "$STACK_URLS" --stop-file "$stop" >"$out" &
    pid=$!
    sleep 0.5
    for _ in $(seq "$ROUNDS"); do
        stack_purge
        "$tool" "${FLAGS[@]}" -- "$STACK_URL" >"$STACK_DIR/$(basename "$tool").log" 2>&1 </dev/null || true
    done
    touch "$stop"
    wait "$pid"
    cat "$out"
}

read -r idle_n idle_p50 idle_p95 < <(python3 ./visitor.py "$STACK_URL" --urls "$STACK_URLS" --seconds "$IDLE_SECONDS")
read -r cp_n cp_p50 cp_p95 < <(during "$CACHE_PRELOAD")
cp_files=$(stack_cached_files)
read -r w_n w_p50 w_p95 < <(ROUNDS=1 during wget)
echo "site: $STACK_PAGES pages, ${STACK_RENDER_US} us render, $STACK_WORKERS PHP-FPM workers"
echo "visitor idle:                  n=$idle_n p50=${idle_p50} ms p95=${idle_p95} ms"
echo "visitor during cache-preload:  n=$cp_n p50=${cp_p50} ms p95=${cp_p95} ms (cache files after: $cp_files)"
echo "visitor during wget (NPP):     n=$w_n p50=${w_p50} ms p95=${w_p95} ms"
awk -v a="$cp_p95" -v b="$idle_p95" -v w="$w_p95" 'BEGIN {
    printf "ratio p95 during cache-preload / idle: %.2fx (goal <= 1.5x)\n", a / b
    printf "ratio p95 during wget / idle:          %.2fx (reference)\n", w / b }'
