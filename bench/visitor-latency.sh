#!/usr/bin/env bash
# p95 response time of a visitor's uncached requests (PHP renders each one: ?nocache= bypasses the
# cache) while a preload warms the purged bench site, relative to the same visitor on an idle
# site, on two sites in one run:
#   sleep: every page sleeps STACK_RENDER_US (20 ms): PHP workers wait, the CPUs stay idle;
#   cpu:   every page burns CPU_SITE_CPU_US (25 ms) of CPU time plus CPU_SITE_RENDER_US (5 ms) of
#          waiting, like a real WordPress render: PHP workers compete for the cores.
# Both preloads use NPP's Preload All flags (cache-preload with its defaults, adaptive), and each
# preload's time is printed too (cache-preload must stay faster than wget). Goal: p95 during
# cache-preload <= 1.5x idle on both sites. The visitor is measured across ROUNDS (default 3)
# preloads, each on a freshly purged cache; wget once. SITES="sleep cpu" picks the sites.
# Needs root, nginx, php-fpm, wget.
set -euo pipefail
cd "$(dirname "$0")"
source ./lib-stack.sh
source ./lib-bin.sh
IDLE_SECONDS=${IDLE_SECONDS:-10}
ROUNDS=${ROUNDS:-3}   # preloads (each on a freshly purged cache) the visitor is measured across
SITES=${SITES:-sleep cpu}
CPU_SITE_CPU_US=${CPU_SITE_CPU_US:-25000}
CPU_SITE_RENDER_US=${CPU_SITE_RENDER_US:-5000}

bench_build

during() { # tool → "count p50 p95 median_preload_ms" of the visitor while the tool preloads
    local tool=$1 stop="$STACK_DIR/stop" out="$STACK_DIR/visitor.out" pid t0 ms=()
    stack_purge
    rm -f "$stop"
    python3 ./visitor.py "$STACK_URL" --urls "$STACK_URLS" --stop-file "$stop" >"$out" &
    pid=$!
    sleep 0.5
    for _ in $(seq "$ROUNDS"); do
        stack_purge
        t0=$(now_ms)
        "$tool" "${FLAGS[@]}" -- "$STACK_URL" >"$STACK_DIR/$(basename "$tool").log" 2>&1 </dev/null || true
        ms+=($(($(now_ms) - t0)))
    done
    touch "$stop"
    wait "$pid"
    echo "$(cat "$out") $(printf '%s\n' "${ms[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
}

one_site() { # name
    local name=$1
    if [ "$name" = cpu ]; then
        export STACK_CPU_US=$CPU_SITE_CPU_US STACK_RENDER_US=$CPU_SITE_RENDER_US
    else
        export STACK_CPU_US=0 STACK_RENDER_US=${SLEEP_SITE_RENDER_US:-20000}
    fi
    stack_start
    mapfile -t FLAGS < <(npp_wget_flags "$STACK_DIR/pdir")
    for i in $(seq 16); do curl -fs -o /dev/null "${STACK_URL}?nocache=warm$i"; done
    read -r idle_n idle_p50 idle_p95 < <(python3 ./visitor.py "$STACK_URL" --urls "$STACK_URLS" --seconds "$IDLE_SECONDS")
    read -r cp_n cp_p50 cp_p95 cp_ms < <(during "$CACHE_PRELOAD")
    cp_files=$(stack_cached_files)
    read -r w_n w_p50 w_p95 w_ms < <(ROUNDS=1 during wget)
    echo "== $name site: $STACK_PAGES pages, ${STACK_RENDER_US} us wait + ${STACK_CPU_US} us CPU per render, $STACK_WORKERS PHP-FPM workers, $(nproc) CPUs"
    echo "visitor idle:                  n=$idle_n p50=${idle_p50} ms p95=${idle_p95} ms"
    echo "visitor during cache-preload:  n=$cp_n p50=${cp_p50} ms p95=${cp_p95} ms (preload ${cp_ms} ms, cache files after: $cp_files)"
    echo "visitor during wget (NPP):     n=$w_n p50=${w_p50} ms p95=${w_p95} ms (preload ${w_ms} ms)"
    awk -v a="$cp_p95" -v b="$idle_p95" -v w="$w_p95" -v cm="$cp_ms" -v wm="$w_ms" -v n="$name" 'BEGIN {
        printf "%s: ratio p95 during cache-preload / idle: %.2fx (goal <= 1.5x)\n", n, a / b
        printf "%s: ratio p95 during wget / idle:          %.2fx (reference)\n", n, w / b
        printf "%s: preload time wget / cache-preload:     %.2fx (goal > 1)\n", n, wm / cm }'
    stack_stop
}

for site in $SITES; do
    one_site "$site"
done
