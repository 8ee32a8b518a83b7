#!/usr/bin/env bash
# demo.sh — the whole lifecycle in one command (run as root on Debian 12):
#   installs the system packages (scripts/install-deps.sh), builds safexec and cache-preload
#   (release), starts nginx + PHP-FPM with a FastCGI cache on loopback (scripts/stack.sh, a
#   1,113-page WordPress-like site, 20 ms per render), purges the cache, shows a browser's HIT
#   ratio (0 %), then preloads exactly as the NPP plugin does — the PHP-FPM site user runs
#   `safexec nohup cache-preload <NPP's wget flags> > LOG 2>&1 < /dev/null & echo $!` with safexec
#   installed setuid root — and shows the HIT ratio again (100 %) and the time taken.
#   Then the other half, through the PHP client (php/bin/npp-cache) as the same site user, with no
#   access to nginx's cache and no extra privilege: it purges one page (the purge service, running
#   as www-data, answers), one page through `safexec cache-purge` (the client's fallback), then the
#   whole site, and preloads it again as a background job with progress; the visitor's HIT ratio
#   is shown after each step.
# Everything is stopped and removed on exit. The host is not changed beyond the packages and the
# site user `nppsite`: safexec lives in a temp dir, and cache-preload is bind-mounted over a
# private /usr/local/bin (safexec only runs tools from root-owned trusted dirs) in a mount
# namespace that only the preload sees.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STACK="$REPO/scripts/stack.sh"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it starts nginx/PHP-FPM and installs safexec setuid root)" >&2; exit 1; }

say "Installing system packages (nginx, php-fpm, wget, curl, ...) if missing"
"$REPO/scripts/install-deps.sh"

say "Building safexec, cache-preload, cache-purge and the purge service (release)"
(cd "$REPO" && cargo build --quiet --release -p safexec -p cache-preload -p cache-purge -p purged)

DIR=$(mktemp -d /var/lib/npp-demo.XXXXXX)
chmod 0755 "$DIR" # nginx's and PHP-FPM's workers traverse it
cleanup() {
    "$STACK" stop "$DIR/stack" >/dev/null 2>&1 || true
    [ -z "${PURGED_PID:-}" ] || kill "$PURGED_PID" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# safexec setuid root in a root-owned dir; cache-preload root:root 0755 for the private /usr/local/bin.
mkdir -m 0755 "$DIR/bin"
install -o root -g root -m 4755 "$TARGET/release/safexec" "$DIR/bin/safexec"
install -o root -g root -m 0755 "$TARGET/release/cache-preload" "$DIR/bin/cache-preload"
mkdir -m 0755 "$DIR/tools"
install -o root -g root -m 0755 "$TARGET/release/cache-preload" "$DIR/tools/cache-preload"
install -o root -g root -m 0755 "$TARGET/release/cache-purge" "$DIR/tools/cache-purge"
install -o root -g root -m 0755 "$TARGET/release/cache-purged" "$DIR/bin/cache-purged"

say "Starting nginx (FastCGI cache) + PHP-FPM (site user nppsite) on loopback"
BASE=$("$STACK" start "$DIR/stack")
# shellcheck disable=SC1091
. "$DIR/stack/stack.env"
echo "    site: $BASE  ($PAGES pages in the sitemap, 20 ms per uncached page, 8 PHP workers)"
RUNTIME="$DIR/stack/npp-runtime"
mkdir -m 0755 "$RUNTIME"
chown "$SITE_USER:$SITE_USER" "$RUNTIME"
LOG="$RUNTIME/nppp-wget.log"

# NPP's Preload All command line (npp-usage.md §1.7), with cache-preload in place of wget.
REJECT_REGEX='/wp-admin/|/wp-content/|/wp-includes/|/wp-json/|xmlrpc|wp-.*\.php|/cart/|/checkout/|/my-account/|robots\.txt|sitemap(_index)?\.xml|[a-z0-9_-]+-sitemap([0-9]+)?\.xml|wp-sitemap|comment-page-|/feed/|/embed/|/login/|/register/|\.well-known|\?|=|&|#'
REJECT_EXT='*.css,*.js,*.png,*.jpg,*.jpeg,*.gif,*.svg,*.webp,*.ico,*.woff,*.woff2,*.ttf,*.pdf,*.zip,*.gz'
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
CMD="$(q "$DIR/bin/safexec") nohup cache-preload --no-verbose --recursive -l inf --no-config --no-cookies --delete-after --no-dns-cache --no-check-certificate --prefer-family=IPv4 --retry-on-http-error=503,429 --waitretry=10 --dns-timeout=10 --connect-timeout=5 --read-timeout=60 --tries=2 --ignore-case -e robots=off -e use_proxy=no -e http_proxy=http://127.0.0.1:3434 -e https_proxy=http://127.0.0.1:3434 -P /tmp --limit-rate=5120k --wait=0 $(q "--reject-regex=$REJECT_REGEX") $(q "--reject=$REJECT_EXT") $(q "--domains=$HOST,www.$HOST") $(q '--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8') $(q "--user-agent=$UA") -- $(q "$BASE") > $(q "$LOG") 2>&1 < /dev/null & echo \$!"

# Runs NPP's spawn as the site user (PHP's shell_exec), with cache-preload in /usr/local/bin.
spawn_as_site_user() {
    unshare -m --propagation private -- /bin/sh -c '
        set -e
        mount -t tmpfs -o mode=0755,uid=0,gid=0 demo-bin /usr/local/bin
        touch /usr/local/bin/cache-preload
        mount --bind "$1" /usr/local/bin/cache-preload
        shift
        exec "$@"' sh "$DIR/bin/cache-preload" \
        setpriv --reuid="$SITE_USER" --regid="$SITE_USER" --clear-groups -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        SAFEXEC_QUIET=1 SAFEXEC_SAFE_CWD=1 SAFEXEC_DETACH=auto SAFEXEC_PCTNORM=0 \
        /bin/sh -c "$CMD"
}

preload() { # → prints the PID and waits for it; sets SECONDS_TAKEN
    local pid t0 t1
    t0=$(date +%s%N)
    pid=$(spawn_as_site_user | tail -n1 | tr -dc '0-9')
    [ -n "$pid" ] || { echo "demo: the spawn printed no PID" >&2; exit 1; }
    sleep 0.2
    echo "    PID $pid (\$! of the site user's shell): $(ps -o user=,comm= -p "$pid" 2>/dev/null || echo 'already finished')"
    while [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do sleep 0.1; done
    t1=$(date +%s%N)
    SECONDS_TAKEN=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
}

say "Preloading once so the cache is warm, then Purge All"
preload >/dev/null
echo "    warm: $("$STACK" hits "$DIR/stack")"
"$STACK" purge "$DIR/stack"

say "A visitor after the purge (Chrome headers, every sitemap URL)"
echo "    before: $("$STACK" hits "$DIR/stack")"
"$STACK" purge "$DIR/stack" # that visit stored pages itself; start the preload from cold

say "Preload through safexec as the site user, exactly as NPP spawns wget"
echo "    sh -c \"safexec nohup cache-preload <NPP's wget flags> -- $BASE > nppp-wget.log 2>&1 < /dev/null & echo \$!\""
preload
echo "    log (what NPP parses):"
grep -E '^(FINISHED|Total wall clock time|Downloaded)' "$LOG" | sed 's/^/      /'
echo "    pages logged: $(grep -c ' URL:http' "$LOG"), 404s: $(grep -c 'ERROR 404' "$LOG"), cache files: $(find "$CACHE_DIR" -type f | wc -l)"

say "The same visitor after the preload"
echo "    after:  $("$STACK" hits "$DIR/stack")"
echo "    preload took ${SECONDS_TAKEN} s for $PAGES pages (GNU wget with the same flags: bench/wget-baseline.sh, ~25 s here)"

# ---- The other half: purge and preload from PHP, as the site user, with no extra privilege. ----
say "The site's line in /etc/safexec.conf, and the purge service (as www-data, not root)"
LINE="cache_root = $CACHE_DIR $NGINX_USER allow=$SITE_USER url=${BASE%/}"
echo "    $LINE"
# Only the site user's commands see this /etc (a copy, in their mount namespace).
mkdir -m 0700 "$DIR/etc"
cp -a /etc/. "$DIR/etc/"
printf '%s\n' "$LINE" >"$DIR/etc/safexec.conf"
chmod 0644 "$DIR/etc/safexec.conf"
install -o root -g root -m 0644 "$DIR/etc/safexec.conf" "$DIR/service.conf"
mkdir -m 0755 "$DIR/purged"
chown "$NGINX_USER:$NGINX_USER" "$DIR/purged"
SOCK="$DIR/purged/purged.sock"
setpriv --reuid="$NGINX_USER" --regid="$NGINX_USER" --init-groups -- env -i PATH=/usr/bin:/bin \
    "$DIR/bin/cache-purged" --config "$DIR/service.conf" --socket "$SOCK" --idle-exit 0 \
    >"$DIR/purged.log" 2>&1 </dev/null &
PURGED_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { cat "$DIR/purged.log" >&2; echo "demo: the purge service did not start" >&2; exit 1; }
echo "    cache-purged PID $PURGED_PID: $(ps -o user=,comm= -p "$PURGED_PID")"

# The PHP client's CLI as the site user, as a PHP-FPM worker would run it.
client() {
    unshare -m --propagation private -- /bin/sh -c '
        set -e
        mount --bind "$1" /etc
        mount -t tmpfs -o mode=0755,uid=0,gid=0 demo-bin /usr/local/bin
        for t in cache-preload cache-purge; do
            touch "/usr/local/bin/$t"
            mount --bind "$2/$t" "/usr/local/bin/$t"
        done
        shift 2
        exec "$@"' sh "$DIR/etc" "$DIR/tools" \
        setpriv --reuid="$SITE_USER" --regid="$SITE_USER" --clear-groups -- \
        env -i PATH=/usr/bin:/bin LANG=C.UTF-8 \
        php "$REPO/php/bin/npp-cache" --safexec "$DIR/bin/safexec" --state "$RUNTIME/npp-cache" --socket "$SOCK" "$@"
}

say "The site user cannot touch nginx's cache itself"
echo "    $(stat -c '%n: %U %a' "$CACHE_DIR")"
echo "    as $SITE_USER: $(setpriv --reuid="$SITE_USER" --regid="$SITE_USER" --clear-groups -- ls "$CACHE_DIR" 2>&1 | sed -n 1p || true)"

# (sed, not head: head would close the pipe early and pipefail would stop the demo)
ONE=$("$STACK" urls "$DIR/stack" | grep '%' | sed -n 1p)
TWO=$("$STACK" urls "$DIR/stack" | grep '%' | sed -n 2p)
say "The site user purges one page through the PHP client (purge service)"
echo "    php npp-cache purge $ONE"
client purge "$ONE" | sed 's/^/      /'
echo "    visitor: $("$STACK" hits "$DIR/stack")"
say "The same without the service: the client's fallback, safexec cache-purge"
echo "    php npp-cache --no-service purge $TWO"
client --no-service purge "$TWO" 2>&1 | sed 's/^/      /' || true
echo "    visitor: $("$STACK" hits "$DIR/stack")"
say "The site user purges the whole site through the PHP client"
client purge-all "$BASE" | sed 's/^/      /'
echo "    visitor: $("$STACK" hits "$DIR/stack")   (this visit stored every page again)"
client purge-all "$BASE" >/dev/null
say "...and preloads it again through the PHP client: a background job, its progress from --json"
client preload "${BASE}sitemap.xml" --sitemap --wait | sed 's/^/    /'
echo "    visitor: $("$STACK" hits "$DIR/stack")"
say "Stopping everything"
