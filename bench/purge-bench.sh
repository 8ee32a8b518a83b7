#!/usr/bin/env bash
# purge-bench.sh — cache-purge on synthetic caches in nginx's real on-disk format
# (bench/gen-cache.py: keys httpsGETbench.example/s<i%50>/<i>/, every 10th URL with two Vary
# variants, levels=1:2), ratios measured in one run against the tools people use today:
#   1. single-URL purge with its Vary variants through the key index (no scan): wall time of one
#      `cache-purge URL` process (median of 30 URLs, each really deleted), the same in one call
#      of 100 URLs (per URL), and hyperfine's mean for a --dry-run of one URL;
#   2. NPP's recursive KEY scan for one URL (`rg -m 1 --text '^KEY: .*<url>$'`, its FP3);
#   3. prefix purge (--prefix https://bench.example/s7/, about 2 % of the keys) against
#      `rg -l --text '^KEY: httpsGETbench.example/s7/'` over the same tree (finding, not deleting);
#   4. purge-all against `rm -rf` of an identical tree (generated twice the same way).
# Also prints the index build time. Warm page cache (the trees were just written).
#
# usage: bench/purge-bench.sh [N ...]   (default: 100000 500000 entries; files = 1.2 N)
# Needs root (cache-purge runs as www-data, as nginx's cache owner), python3, rg, hyperfine.
# PURGE_BENCH_DIR (default /var/tmp/purge-bench) holds the trees; it is removed at the end.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PURGE_BENCH_DIR:-/var/tmp/purge-bench}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100000 500000)
[ "$(id -u)" = 0 ] || { echo "purge-bench: needs root" >&2; exit 1; }
for t in python3 rg hyperfine setpriv; do command -v "$t" >/dev/null || { echo "purge-bench: needs $t" >&2; exit 1; }; done

(cd "$REPO" && cargo build --quiet --release -p cache-purge) >&2
BIN=$REPO/target/release/cache-purge
OWNER=www-data
trap 'rm -rf "$WORK"' EXIT

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
purge() { setpriv --reuid=$OWNER --regid=$OWNER --clear-groups "$BIN" --cache-path "$CACHE" --index-dir "$INDEX" "$@"; }

echo "cache-purge benchmark, $(nproc) CPUs, $(uname -r), warm page cache"
for N in "${SIZES[@]}"; do
    rm -rf "$WORK"
    mkdir -p "$WORK" && chmod 755 "$WORK"
    CACHE=$WORK/cache
    INDEX=$WORK/index
    files=$(python3 "$REPO/bench/gen-cache.py" "$CACHE" "$N")
    mkdir "$INDEX"
    chown -R $OWNER:$OWNER "$CACHE" "$INDEX"
    chmod 700 "$CACHE" "$INDEX"
    echo
    echo "== $N URLs, $files files =="

    t0=$(now); purge --index-rebuild >/dev/null; t1=$(now)
    echo "index build (reads every key once):            $(ms "$t0" "$t1") ms"
    t0=$(now); purge --index-refresh >/dev/null; t1=$(now)
    echo "index refresh, nothing changed:                 $(ms "$t0" "$t1") ms"

    # 1. Single URLs with variants (i multiple of 10: main file + 2 variant files each).
    : >"$WORK/single.txt"
    for k in $(seq 1 30); do
        i=$((k * 10 * 7 % N))
        t0=$(now)
        out=$(purge "https://bench.example/s$((i % 50))/$i/")
        t1=$(now)
        case "$out" in *"(3 files, index)"*) ;; *) echo "unexpected: $out" >&2; exit 1 ;; esac
        ms "$t0" "$t1" >>"$WORK/single.txt"; echo >>"$WORK/single.txt"
    done
    single=$(median <"$WORK/single.txt")
    : >"$WORK/nov.txt"; : >"$WORK/norefresh.txt"
    for k in $(seq 1 30); do
        i=$((k * 10 * 11 % N + 3))   # not a multiple of 10: one file, no variants
        t0=$(now); purge "https://bench.example/s$((i % 50))/$i/" >/dev/null; t1=$(now)
        ms "$t0" "$t1" >>"$WORK/nov.txt"; echo >>"$WORK/nov.txt"
        i=$(((N / 2 + k * 170) / 10 * 10 % N))   # with variants, index used as is
        t0=$(now); out=$(purge --index-no-refresh "https://bench.example/s$((i % 50))/$i/"); t1=$(now)
        case "$out" in *"(3 files, index)"*) ;; *) echo "unexpected: $out" >&2; exit 1 ;; esac
        ms "$t0" "$t1" >>"$WORK/norefresh.txt"; echo >>"$WORK/norefresh.txt"
    done
    nov=$(median <"$WORK/nov.txt")
    norefresh=$(median <"$WORK/norefresh.txt")
    t0=$(now); setpriv --reuid=$OWNER --regid=$OWNER --clear-groups /bin/true; t1=$(now)
    base=$(ms "$t0" "$t1")
    urls=()
    for k in $(seq 1 100); do i=$((k * 10 * 13 % N + 5)); urls+=("https://bench.example/s$((i % 50))/$i/"); done
    t0=$(now); purge "${urls[@]}" >/dev/null; t1=$(now)
    batch=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 / 100 }')
    dry=$(hyperfine -N --warmup 3 --runs 40 --export-json "$WORK/h.json" \
        "setpriv --reuid=$OWNER --regid=$OWNER --clear-groups $BIN --cache-path $CACHE --index-dir $INDEX --dry-run https://bench.example/s20/20/" \
        >/dev/null 2>&1 && python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["mean"]*1000))' "$WORK/h.json")
    echo "single URL + 2 variants, one process (median of 30): $single ms (goal < 5 ms, no scan)"
    echo "single URL + 2 variants, --index-no-refresh:    $norefresh ms (median of 30)"
    echo "single URL without variants (index refreshed):  $nov ms (median of 30)"
    echo "single URL, --dry-run, hyperfine mean of 40:    $dry ms"
    echo "baseline: setpriv ... /bin/true:                $base ms (process start on this machine)"
    echo "100 URLs in one call:                           $batch ms per URL"

    # 2. NPP's FP3 scan for one URL.
    t0=$(now); rg -m 1 --text -l '^KEY: .*bench.example/s40/40/$' "$CACHE" >/dev/null || true; t1=$(now)
    scan=$(ms "$t0" "$t1")
    echo "NPP recursive KEY scan for one URL (rg):        $scan ms  (ratio scan / cache-purge: $(ratio "$scan" "$single"))"

    # 3. Prefix.
    t0=$(now); rg -l --text '^KEY: httpsGETbench.example/s7/' "$CACHE" >"$WORK/rg.txt" || true; t1=$(now)
    rgp=$(ms "$t0" "$t1")
    t0=$(now); out=$(purge --json --prefix https://bench.example/s7/); t1=$(now)
    pp=$(ms "$t0" "$t1")
    pfiles=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["files"])')
    echo "prefix /s7/: rg -l $rgp ms ($(wc -l <"$WORK/rg.txt") files found), cache-purge $pp ms ($pfiles files deleted); ratio rg / cache-purge: $(ratio "$rgp" "$pp") (goal > 1)"

    # 4. Purge-all against rm -rf of an identical tree: generated again the same way (a `cp -a`
    #    copy would lay its inodes out directory by directory, which makes rm look faster).
    python3 "$REPO/bench/gen-cache.py" "$WORK/copy" "$N" >/dev/null
    sync
    t0=$(now); rm -rf "$WORK/copy"; t1=$(now)
    rmt=$(ms "$t0" "$t1")
    t0=$(now); out=$(purge --json --all); t1=$(now)
    allt=$(ms "$t0" "$t1")
    afiles=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["files"])')
    echo "purge-all: rm -rf $rmt ms, cache-purge --all $allt ms ($afiles files); ratio cache-purge / rm: $(ratio "$allt" "$rmt") (goal <= 1)"
done
