#!/usr/bin/env bash
# wget-baseline.sh — the baseline the crawler benchmarks are measured against: GNU wget with NPP's
# exact "Preload All" flags (npp-usage.md §1.7, plugin defaults) over the e2e site, on a purged
# cache, then a browser's HIT ratio over every sitemap URL.
#
# Usage: bench/wget-baseline.sh            (needs root, nginx, php-fpm, wget, curl)
# Env:   STACK_RENDER_US (default 20000), STACK_WORKERS (default 8): passed to scripts/stack.sh
# Prints: pages (wget log lines), total seconds, pages/s, cache files, visitor HIT %.
#
# Uses scripts/stack.sh (start/purge/hits/stop DIR); see the interface at the top of that file.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STACK="$REPO/scripts/stack.sh"

[ "$(id -u)" -eq 0 ] || { echo "wget-baseline: needs root (the stack runs nginx/PHP-FPM)" >&2; exit 1; }
command -v wget >/dev/null || { echo "wget-baseline: wget not installed (scripts/install-deps.sh)" >&2; exit 1; }

DIR=$(mktemp -d /tmp/wget-baseline.XXXXXX)
cleanup() { "$STACK" stop "$DIR" || true; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM
BASE=$("$STACK" start "$DIR")
# shellcheck disable=SC1091
. "$DIR/stack.env"
HOSTNAME_ONLY=$HOST

# NPP's Preload All command (npp-usage.md §1.7) with the plugin's default settings; -P is a
# private dir (with safexec NPP passes /tmp; a leftover /tmp/<host> from another user breaks wget).
REJECT_REGEX='/wp-admin/|/wp-content/|/wp-includes/|/wp-json/|xmlrpc|wp-.*\.php|/cart/|/checkout/|/my-account/|robots\.txt|sitemap(_index)?\.xml|[a-z0-9_-]+-sitemap([0-9]+)?\.xml|wp-sitemap|comment-page-|/feed/|/embed/|/login/|/register/|\.well-known|\?|=|&|#'
REJECT_EXT='*.css,*.js,*.png,*.jpg,*.jpeg,*.gif,*.svg,*.webp,*.ico,*.woff,*.woff2,*.ttf,*.pdf,*.zip,*.gz,*.mp4,*.mp3'
UA_DESKTOP='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
mkdir -p "$DIR/pdir"
chmod 0755 "$DIR/pdir"

# Warm PHP's opcache and the FPM workers so the run measures steady state (uncached requests).
for i in $(seq 16); do curl -fs -o /dev/null "${BASE}?nocache=warm$i"; done
"$STACK" purge "$DIR"

t0=$(date +%s%N)
wget --no-verbose --recursive -l inf --no-config --no-cookies --delete-after \
    --no-dns-cache --no-check-certificate --prefer-family=IPv4 \
    --retry-on-http-error=503,429 --waitretry=10 \
    --dns-timeout=10 --connect-timeout=5 --read-timeout=60 \
    --tries=2 --ignore-case \
    -e robots=off -e use_proxy=no -e http_proxy=http://127.0.0.1:3434 -e https_proxy=http://127.0.0.1:3434 \
    -P "$DIR/pdir" --limit-rate=5120k --wait=0 \
    "--reject-regex=$REJECT_REGEX" "--reject=$REJECT_EXT" \
    "--domains=$HOSTNAME_ONLY,www.$HOSTNAME_ONLY" \
    '--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' \
    "--user-agent=$UA_DESKTOP" \
    -- "$BASE" >"$DIR/wget.log" 2>&1 </dev/null || true
t1=$(date +%s%N)

pages=$(grep -cE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} URL:https?://[^ ]+ .*->' "$DIR/wget.log" || true)
files=$(find "$CACHE_DIR" -type f | wc -l)
hits=$("$STACK" hits "$DIR")
echo "site: $PAGES sitemap pages, ${STACK_RENDER_US:-20000} us render, ${STACK_WORKERS:-8} PHP-FPM workers, $BASE"
awk -v ns=$((t1 - t0)) -v p="$pages" 'BEGIN { s = ns / 1e9; printf "wget (NPP flags): %d pages in %.2f s = %.1f pages/s\n", p, s, p / s }'
echo "wget log: $(grep -E '^(Downloaded|Total wall clock)' "$DIR/wget.log" | tr '\n' ' ')"
echo "cache files after wget: $files"
echo "visitor (Chrome headers) over the sitemap after wget: $hits"
