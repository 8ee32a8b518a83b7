# shellcheck shell=bash
# Benchmark site helper, sourced by the bench/*.sh scripts: nginx with a FastCGI cache in front of
# PHP-FPM on loopback, a 1,000-page PHP site (20 ms render, 8 workers), all under one temp dir.
#   stack_start        → sets STACK_DIR, STACK_PORT, STACK_URL, STACK_CACHE; EXIT trap tears down
#   stack_purge        → empties the cache directory (what a "purge all" does)
#   stack_cached_files → number of cache files on disk
# Only 127.0.0.1 is ever used. Needs root (nginx/PHP-FPM workers run as www-data).

STACK_PAGES=${STACK_PAGES:-1000}
STACK_RENDER_US=${STACK_RENDER_US:-20000}
STACK_WORKERS=${STACK_WORKERS:-8}

stack_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stack_stop() {
    [ -n "${STACK_DIR:-}" ] || return 0
    [ -f "$STACK_DIR/nginx.pid" ] && kill "$(cat "$STACK_DIR/nginx.pid")" 2>/dev/null
    [ -f "$STACK_DIR/php.pid" ] && kill "$(cat "$STACK_DIR/php.pid")" 2>/dev/null
    sleep 0.3
    rm -rf "$STACK_DIR"
    STACK_DIR=
}

stack_start() {
    local fpm
    fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | head -n1)
    [ -x "$fpm" ] || { echo "bench: php-fpm not installed (run scripts/install-deps.sh)" >&2; return 1; }
    command -v nginx >/dev/null || { echo "bench: nginx not installed" >&2; return 1; }
    [ "$(id -u)" -eq 0 ] || { echo "bench: needs root (nginx/PHP-FPM run as www-data)" >&2; return 1; }
    STACK_DIR=$(mktemp -d /tmp/cache-preload-bench.XXXXXX)
    chmod 755 "$STACK_DIR"
    trap stack_stop EXIT
    STACK_PORT=$(stack_free_port)
    STACK_URL="http://127.0.0.1:$STACK_PORT/"
    STACK_CACHE="$STACK_DIR/cache"
    mkdir -p "$STACK_DIR/www" "$STACK_CACHE" "$STACK_DIR/tmp"
    chown www-data:www-data "$STACK_CACHE" "$STACK_DIR/tmp"
    cat >"$STACK_DIR/www/index.php" <<PHP
<?php
// Page N links to its ten children 10N+1..10N+10 (a tree of $STACK_PAGES pages) and home.
usleep($STACK_RENDER_US);
\$path = parse_url(\$_SERVER['REQUEST_URI'], PHP_URL_PATH);
\$n = preg_match('#^/p/([0-9]+)/\$#', \$path, \$m) ? (int) \$m[1] : (\$path === '/' ? 0 : -1);
if (\$n < 0 || \$n >= $STACK_PAGES) { http_response_code(404); echo "not found"; exit; }
header('Content-Type: text/html; charset=UTF-8');
echo "<!doctype html><html><head><title>Page \$n</title></head><body><h1>Page \$n</h1><nav><a href=\"/\">Home</a>";
for (\$c = 10 * \$n + 1; \$c <= 10 * \$n + 10 && \$c < $STACK_PAGES; \$c++) { echo " <a href=\"/p/\$c/\">Page \$c</a>"; }
echo "</nav>";
for (\$i = 0; \$i < 40; \$i++) { echo "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Paragraph \$i of page \$n.</p>"; }
echo "</body></html>";
PHP
    cat >"$STACK_DIR/php-fpm.conf" <<FPM
[global]
pid = $STACK_DIR/php.pid
error_log = $STACK_DIR/php.log
daemonize = yes
[bench]
user = www-data
group = www-data
listen = $STACK_DIR/php.sock
listen.owner = www-data
listen.group = www-data
listen.backlog = 511
pm = static
pm.max_children = $STACK_WORKERS
FPM
    cat >"$STACK_DIR/nginx.conf" <<NGX
user www-data;
worker_processes 2;
pid $STACK_DIR/nginx.pid;
error_log $STACK_DIR/nginx-error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $STACK_DIR/tmp/body;
    fastcgi_temp_path $STACK_DIR/tmp/fastcgi;
    proxy_temp_path $STACK_DIR/tmp/proxy;
    uwsgi_temp_path $STACK_DIR/tmp/uwsgi;
    scgi_temp_path $STACK_DIR/tmp/scgi;
    fastcgi_cache_path $STACK_CACHE levels=1:2 keys_zone=bench:32m inactive=1h max_size=2g;
    fastcgi_cache_key "\$scheme\$request_method\$host\$request_uri";
    server {
        listen 127.0.0.1:$STACK_PORT backlog=4096;
        server_name localhost;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $STACK_DIR/www/index.php;
            fastcgi_pass unix:$STACK_DIR/php.sock;
            fastcgi_cache bench;
            fastcgi_cache_valid 200 301 302 1h;
            # A visitor's uncached request: ?nocache=… always renders in PHP.
            fastcgi_cache_bypass \$arg_nocache;
            fastcgi_no_cache \$arg_nocache;
            add_header X-FastCGI-Cache \$upstream_cache_status;
        }
    }
}
NGX
    "$fpm" --fpm-config "$STACK_DIR/php-fpm.conf" || return 1
    nginx -c "$STACK_DIR/nginx.conf" -e "$STACK_DIR/nginx-error.log" || return 1
    local i
    for i in $(seq 50); do
        curl -fs -o /dev/null "${STACK_URL}p/1/?nocache=1" && return 0
        sleep 0.1
    done
    echo "bench: stack did not come up (see $STACK_DIR/*.log)" >&2
    return 1
}

stack_purge() {
    find "$STACK_CACHE" -mindepth 1 -delete
}

stack_cached_files() {
    find "$STACK_CACHE" -type f | wc -l
}

# NPP's Preload All flags (npp-usage.md §1.7) with the plugin's defaults, minus the URL.
npp_wget_flags() {
    local pdir=$1
    printf '%s\n' --no-verbose --recursive -l inf --no-config --no-cookies --delete-after \
        --no-dns-cache --no-check-certificate --prefer-family=IPv4 \
        --retry-on-http-error=503,429 --waitretry=10 --dns-timeout=10 --connect-timeout=5 \
        --read-timeout=60 --tries=2 --ignore-case -e robots=off -e use_proxy=no \
        -e http_proxy=http://127.0.0.1:3434 -e https_proxy=http://127.0.0.1:3434 -P "$pdir" \
        --limit-rate=5120k --wait=0 \
        '--reject-regex=/wp-admin/|/wp-json/|/feed/|sitemap.*\.xml|[?=&#]' \
        '--reject=*.css,*.js,*.png,*.jpg,*.gif,*.svg,*.woff2,*.pdf,*.zip' \
        --domains=127.0.0.1 \
        '--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' \
        '--user-agent=Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
}

# Milliseconds since the epoch.
now_ms() { date +%s%3N; }
