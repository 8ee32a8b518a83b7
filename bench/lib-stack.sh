# shellcheck shell=bash
# Benchmark site helper, sourced by the cache-preload bench scripts. A thin adapter over the e2e
# stack (scripts/stack.sh: nginx FastCGI cache + PHP-FPM on loopback, the WordPress-like site of
# tests/fixtures/site, STACK_RENDER_US render time, STACK_WORKERS PHP-FPM children):
#   stack_start        → STACK_DIR, STACK_URL, STACK_HOST, STACK_CACHE, STACK_PAGES,
#                        STACK_URLS (file with every sitemap URL); an EXIT trap tears down
#   stack_purge        → empties the cache (what NPP's "Purge All" does)
#   stack_cached_files → number of cache files on disk
# Only 127.0.0.1 is ever used. Needs root (as scripts/stack.sh does).

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_SH="$BENCH_REPO/scripts/stack.sh"
export STACK_RENDER_US=${STACK_RENDER_US:-20000}
export STACK_WORKERS=${STACK_WORKERS:-8}

stack_stop() {
    [ -n "${STACK_DIR:-}" ] || return 0
    "$STACK_SH" stop "$STACK_DIR" >/dev/null 2>&1 || true
    rm -rf "$STACK_DIR"
    STACK_DIR=
}

stack_start() {
    [ "$(id -u)" -eq 0 ] || { echo "bench: needs root (nginx/PHP-FPM)" >&2; return 1; }
    STACK_DIR=$(mktemp -d /tmp/cache-preload-bench.XXXXXX)
    chmod 755 "$STACK_DIR"
    trap stack_stop EXIT
    STACK_URL=$("$STACK_SH" start "$STACK_DIR") || return 1
    # shellcheck disable=SC1091
    . "$STACK_DIR/stack.env"
    STACK_HOST=$HOST
    STACK_CACHE=$CACHE_DIR
    STACK_PAGES=$PAGES
    STACK_URLS="$STACK_DIR/urls.txt"
    "$STACK_SH" urls "$STACK_DIR" >"$STACK_URLS"
}

stack_purge() {
    "$STACK_SH" purge "$STACK_DIR" >/dev/null
}

stack_cached_files() {
    find "$STACK_CACHE" -type f | wc -l
}

# NPP's Preload All flags (npp-usage.md §1.7) with the plugin's default settings, minus the URL;
# -P is a private dir. The same reject rules as bench/wget-baseline.sh.
npp_wget_flags() {
    local pdir=$1
    mkdir -p "$pdir"
    printf '%s\n' --no-verbose --recursive -l inf --no-config --no-cookies --delete-after \
        --no-dns-cache --no-check-certificate --prefer-family=IPv4 \
        --retry-on-http-error=503,429 --waitretry=10 --dns-timeout=10 --connect-timeout=5 \
        --read-timeout=60 --tries=2 --ignore-case -e robots=off -e use_proxy=no \
        -e http_proxy=http://127.0.0.1:3434 -e https_proxy=http://127.0.0.1:3434 -P "$pdir" \
        --limit-rate=5120k --wait=0 \
        '--reject-regex=/wp-admin/|/wp-content/|/wp-includes/|/wp-json/|xmlrpc|wp-.*\.php|/cart/|/checkout/|/my-account/|robots\.txt|sitemap(_index)?\.xml|[a-z0-9_-]+-sitemap([0-9]+)?\.xml|wp-sitemap|comment-page-|/feed/|/embed/|/login/|/register/|\.well-known|\?|=|&|#' \
        '--reject=*.css,*.js,*.png,*.jpg,*.jpeg,*.gif,*.svg,*.webp,*.ico,*.woff,*.woff2,*.ttf,*.pdf,*.zip,*.gz,*.mp4,*.mp3' \
        "--domains=$STACK_HOST" \
        '--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' \
        '--user-agent=Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }
