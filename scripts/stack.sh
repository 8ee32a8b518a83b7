#!/usr/bin/env bash
# stack.sh — a throw-away nginx + PHP-FPM FastCGI-cache stack on loopback, for the e2e tests, the
# demo and the benchmarks. Everything lives under one directory DIR; nothing outside it is touched
# except the site user (created once with useradd, never removed).
#
# Interface (stable; bench/ and tests/ rely on it):
#   stack.sh start DIR          start nginx + PHP-FPM under DIR (created if missing), wait until a
#                               page renders through both, print the base URL on stdout and write
#                               DIR/stack.env (see below). Fails loudly, with the logs' tails,
#                               and stops what it started, if either does not come up.
#   stack.sh stop DIR           stop what `start` started (nginx, PHP-FPM); keep DIR and the logs
#   stack.sh purge DIR          delete every cache file and folder (what NPP's "Purge All" does)
#   stack.sh status DIR         print the state; exit 0 only if both servers run
#   stack.sh set DIR vary on|off        PHP sends (or not) `Vary: Accept-Encoding` (a flag file)
#   stack.sh set DIR mobile-key on|off  append a mobile flag to the cache key (rewrites the
#                                       nginx config, reloads, waits for the new workers)
#   stack.sh urls DIR           print every sitemap URL (bytes as written: lower-case %xx)
#   stack.sh hits DIR [mobile]  request every sitemap URL once as a browser (Chrome headers, or a
#                               mobile Chrome UA) and print "HIT n/N (p%)"; MISSES are listed
#                               in DIR/logs/misses.txt
#
# Environment for `start`: STACK_RENDER_US (PHP render time, default 20000), STACK_CPU_US (CPU
# time each page burns on top, like a real WordPress render; default 0), STACK_WORKERS
# (PHP-FPM children, pm = static, default 8), STACK_SITE_USER (default nppsite).
#
# DIR/stack.env (shell syntax): BASE_URL PORT HOST CACHE_DIR CACHE_KEY CACHE_LEVELS CACHE_ZONE
# NGINX_PID FPM_PID SITE_USER NGINX_USER SITEMAP_URL ACCESS_LOG ERROR_LOG FPM_LOG FLAGS_DIR
# PAGES (number of sitemap URLs).
#
# The site (tests/fixtures/site/index.php): 1,113 WordPress-like pages (home and pagination,
# categories, posts, products, some with Chinese, Turkish or German slugs written with lower-case
# hex), each rendered in STACK_RENDER_US; /sitemap.xml is an index of four sitemaps.
# nginx: cache key "$scheme$request_method$host$request_uri" (+ "$mobile" with mobile-key on),
# levels=1:2, 200 responses cached 1h, `X-FastCGI-Cache: $upstream_cache_status` on every
# response, `?nocache=1` bypasses the cache (not stored), sitemaps and robots.txt never cached.
# The access log (DIR/logs/access.log) records the raw request line, UA and cache status.
# Needs root: the nginx master runs as root with `user www-data;` workers, PHP-FPM's master as
# root with a pool running as the site user.
set -euo pipefail

ME=$(basename "$0")
REPO=$(cd "$(dirname "$0")/.." && pwd)
SITE_SRC="$REPO/tests/fixtures/site"
NGINX_USER=www-data
CHROME_UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36'
MOBILE_UA='Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36'
CHROME_ACCEPT='text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7'

die() { echo "$ME: $*" >&2; exit 1; }
usage() {
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need_dir() {
    [ -n "${1:-}" ] || usage
    DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
}

load_env() {
    [ -f "$DIR/stack.env" ] || die "$DIR/stack.env not found (was the stack started there?)"
    # shellcheck disable=SC1091
    . "$DIR/stack.env"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

pid_of() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

# A port nothing listens on; the bind in nginx is the real test (start retries on EADDRINUSE).
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

find_fpm() {
    local f
    for f in /usr/sbin/php-fpm8.2 /usr/sbin/php-fpm*; do
        [ -x "$f" ] && { echo "$f"; return 0; }
    done
    die "php-fpm not installed (run scripts/install-deps.sh)"
}

ensure_site_user() {
    local u=$1
    if ! id -u "$u" >/dev/null 2>&1; then
        # Concurrent starts may race on useradd; the loser re-checks.
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$u" 2>/dev/null || id -u "$u" >/dev/null 2>&1 ||
            die "cannot create the site user $u"
    fi
}

write_nginx_conf() { # mobile-key on|off
    local key='$scheme$request_method$host$request_uri'
    [ "$1" = on ] && key="$key\$mobile"
    cat >"$DIR/nginx.conf.new" <<NGX
# Written by scripts/stack.sh (mobile-key $1).
user $NGINX_USER;
worker_processes 2;
pid $DIR/run/nginx.pid;
error_log $DIR/logs/nginx-error.log warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format e2e '\$remote_addr [\$time_local] "\$request" \$status \$upstream_cache_status "\$http_accept_encoding" "\$http_user_agent"';
    access_log $DIR/logs/access.log e2e buffer=32k flush=200ms;
    client_body_temp_path $DIR/tmp/body;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    proxy_temp_path $DIR/tmp/proxy;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    keepalive_requests 100000;

    fastcgi_cache_path $DIR/cache levels=1:2 keys_zone=e2e:32m inactive=1d max_size=2g use_temp_path=off;
    fastcgi_cache_key "$key";
    map \$http_user_agent \$mobile {
        default "";
        "~*(Mobile|Android|iPhone|iPod|Opera Mini|IEMobile)" "mobile";
    }

    server {
        listen 127.0.0.1:$PORT backlog=4096;
        server_name _;
        root $DIR/site;

        location /wp-content/ { try_files \$uri =404; }

        # Sitemaps and robots.txt render in PHP but are never cached, so the cache holds pages only.
        location ~ ^/(sitemap[a-z-]*\.xml|robots\.txt)\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST \$host:\$server_port;
            fastcgi_param SCRIPT_FILENAME $DIR/site/index.php;
            fastcgi_param NPP_RENDER_US $RENDER_US;
            fastcgi_param NPP_CPU_US ${CPU_US:-0};
            fastcgi_param NPP_FLAGS_DIR $DIR/flags;
            fastcgi_pass unix:$DIR/run/php-fpm.sock;
            add_header X-FastCGI-Cache BYPASS;
        }

        location / {
            include /etc/nginx/fastcgi_params;
            # Debian's fastcgi_params pass HTTP_HOST as \$host (no port); the site builds absolute
            # links from it, so give it the port. \$http_host would forward a raw client value.
            fastcgi_param HTTP_HOST \$host:\$server_port;
            fastcgi_param SCRIPT_FILENAME $DIR/site/index.php;
            fastcgi_param NPP_RENDER_US $RENDER_US;
            fastcgi_param NPP_CPU_US ${CPU_US:-0};
            fastcgi_param NPP_FLAGS_DIR $DIR/flags;
            fastcgi_pass unix:$DIR/run/php-fpm.sock;

            fastcgi_cache e2e;
            fastcgi_cache_valid 200 1h;
            fastcgi_cache_bypass \$arg_nocache;
            fastcgi_no_cache \$arg_nocache;
            add_header X-FastCGI-Cache \$upstream_cache_status always;
        }
    }
}
NGX
    mv "$DIR/nginx.conf.new" "$DIR/nginx.conf"
}

write_fpm_conf() {
    cat >"$DIR/php-fpm.conf" <<FPM
; Written by scripts/stack.sh.
[global]
pid = $DIR/run/php-fpm.pid
error_log = $DIR/logs/php-fpm.log
daemonize = yes

[site]
user = $SITE_USER
group = $SITE_USER
listen = $DIR/run/php-fpm.sock
listen.owner = $NGINX_USER
listen.group = $NGINX_USER
listen.mode = 0660
listen.backlog = 4096
pm = static
pm.max_children = $WORKERS
catch_workers_output = yes
php_admin_value[error_log] = $DIR/logs/php-error.log
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
FPM
}

tail_logs() {
    local f
    for f in "$DIR/logs/nginx-error.log" "$DIR/logs/php-fpm.log" "$DIR/logs/php-error.log" "$DIR/logs/start.err"; do
        [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

stop_pids() {
    local pid
    for pid in "$@"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local any=0
        for pid in "$@"; do alive "$pid" && any=1; done
        [ $any = 0 ] && return 0
        sleep 0.1
    done
    for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null || true; done
    return 0
}

cmd_start() {
    [ "$(id -u)" -eq 0 ] || die "start needs root (nginx and PHP-FPM masters run as root, workers as $NGINX_USER and the site user)"
    command -v nginx >/dev/null || die "nginx not installed (run scripts/install-deps.sh)"
    command -v curl >/dev/null || die "curl not installed (run scripts/install-deps.sh)"
    id -u "$NGINX_USER" >/dev/null 2>&1 || die "user $NGINX_USER missing"
    local fpm
    fpm=$(find_fpm)
    [ -f "$SITE_SRC/index.php" ] || die "site files missing: $SITE_SRC"
    mkdir -p "$1"
    need_dir "$1"
    if [ -f "$DIR/stack.env" ]; then
        load_env
        alive "$NGINX_PID" || alive "$FPM_PID" && die "a stack already runs in $DIR (stop it first)"
    fi
    SITE_USER=${STACK_SITE_USER:-nppsite}
    WORKERS=${STACK_WORKERS:-8}
    RENDER_US=${STACK_RENDER_US:-20000}
    CPU_US=${STACK_CPU_US:-0}
    case "$WORKERS$RENDER_US$CPU_US" in *[!0-9]*) die "STACK_WORKERS, STACK_RENDER_US and STACK_CPU_US must be numbers" ;; esac
    [ "$SITE_USER" != "$NGINX_USER" ] || die "the site user must differ from nginx's user"
    ensure_site_user "$SITE_USER"

    # Workers of both servers need to traverse DIR; the cache and temp dirs are nginx's alone.
    chmod 0755 "$DIR"
    local u
    for u in "$NGINX_USER" "$SITE_USER"; do
        setpriv --reuid="$u" --regid="$u" --clear-groups -- test -x "$DIR" ||
            die "$u cannot reach $DIR: make every parent directory world-searchable (chmod o+x)"
    done
    mkdir -p "$DIR/run" "$DIR/logs" "$DIR/tmp" "$DIR/cache" "$DIR/flags" "$DIR/site"
    chmod 0755 "$DIR/run" "$DIR/logs" "$DIR/flags" "$DIR/site"
    chown "$NGINX_USER:$NGINX_USER" "$DIR/cache" "$DIR/tmp"
    chmod 0700 "$DIR/cache" "$DIR/tmp"
    cp -R "$SITE_SRC/." "$DIR/site/"
    chmod -R a+rX "$DIR/site"
    : >"$DIR/logs/start.err"

    write_fpm_conf
    "$fpm" --fpm-config "$DIR/php-fpm.conf" 2>>"$DIR/logs/start.err" || {
        tail_logs
        die "php-fpm failed to start"
    }
    local fpm_pid=""
    for _ in $(seq 50); do
        fpm_pid=$(pid_of "$DIR/run/php-fpm.pid")
        [ -n "$fpm_pid" ] && [ -S "$DIR/run/php-fpm.sock" ] && break
        sleep 0.1
    done
    alive "$fpm_pid" || { tail_logs; die "php-fpm did not come up"; }

    local tries nginx_pid=""
    for tries in 1 2 3 4 5; do
        PORT=$(pick_port)
        write_nginx_conf off
        : >"$DIR/logs/nginx-error.log"
        if nginx -c "$DIR/nginx.conf" -e "$DIR/logs/nginx-error.log" 2>>"$DIR/logs/start.err"; then
            for _ in $(seq 50); do
                nginx_pid=$(pid_of "$DIR/run/nginx.pid")
                [ -n "$nginx_pid" ] && break
                sleep 0.1
            done
            break
        fi
        grep -q 'Address already in use' "$DIR/logs/nginx-error.log" "$DIR/logs/start.err" 2>/dev/null || break
        echo "$ME: port $PORT taken, retrying ($tries)" >&2
    done
    if ! alive "$nginx_pid"; then
        tail_logs
        stop_pids "$fpm_pid"
        die "nginx did not start"
    fi

    HOST=127.0.0.1
    BASE_URL="http://$HOST:$PORT/"
    cat >"$DIR/stack.env" <<ENV
BASE_URL=$BASE_URL
PORT=$PORT
HOST=$HOST
CACHE_DIR=$DIR/cache
CACHE_KEY='\$scheme\$request_method\$host\$request_uri'
CACHE_LEVELS=1:2
CACHE_ZONE=e2e
NGINX_PID=$nginx_pid
FPM_PID=$fpm_pid
SITE_USER=$SITE_USER
NGINX_USER=$NGINX_USER
SITEMAP_URL=${BASE_URL}sitemap.xml
ACCESS_LOG=$DIR/logs/access.log
ERROR_LOG=$DIR/logs/nginx-error.log
FPM_LOG=$DIR/logs/php-fpm.log
FLAGS_DIR=$DIR/flags
MOBILE_KEY=off
ENV

    # Ready means a page renders through nginx and PHP-FPM (the site user's workers).
    local code=""
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${BASE_URL}?nocache=1" 2>/dev/null || true)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    if [ "$code" != 200 ]; then
        tail_logs
        stop_pids "$nginx_pid" "$fpm_pid"
        die "the site did not answer 200 at ${BASE_URL} (last status: ${code:-none})"
    fi
    local pages
    pages=$(cmd_urls | wc -l)
    [ "$pages" -ge 1000 ] || { tail_logs; stop_pids "$nginx_pid" "$fpm_pid"; die "sitemap lists only $pages URLs"; }
    echo "PAGES=$pages" >>"$DIR/stack.env"
    echo "$BASE_URL"
}

cmd_stop() {
    [ -f "$DIR/stack.env" ] || return 0
    load_env
    # Only the PIDs recorded at start, and only while they still are nginx / php-fpm.
    local pids=() pid
    for pid in "$NGINX_PID" "$FPM_PID"; do
        if alive "$pid" && grep -qE 'nginx|php-fpm' "/proc/$pid/cmdline" 2>/dev/null; then pids+=("$pid"); fi
    done
    [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
}

cmd_purge() {
    load_env
    find "$CACHE_DIR" -mindepth 1 -delete
}

cmd_status() {
    load_env
    local ok=0 files
    files=$(find "$CACHE_DIR" -type f 2>/dev/null | wc -l)
    if alive "$NGINX_PID"; then echo "nginx: running (pid $NGINX_PID) at $BASE_URL"; else echo "nginx: stopped"; ok=1; fi
    if alive "$FPM_PID"; then echo "php-fpm: running (pid $FPM_PID, pool user $SITE_USER)"; else echo "php-fpm: stopped"; ok=1; fi
    echo "cache: $CACHE_DIR ($files files), mobile-key $MOBILE_KEY, vary $([ -e "$FLAGS_DIR/vary" ] && echo on || echo off)"
    return $ok
}

cmd_set() {
    load_env
    local what=${1:-} val=${2:-}
    case "$val" in on | off) ;; *) die "set: value must be on or off" ;; esac
    case "$what" in
    vary)
        if [ "$val" = on ]; then : >"$FLAGS_DIR/vary"; else rm -f "$FLAGS_DIR/vary"; fi
        ;;
    mobile-key)
        RENDER_US=$(sed -n 's/^ *fastcgi_param NPP_RENDER_US \([0-9]*\);/\1/p' "$DIR/nginx.conf" | head -n1)
        CPU_US=$(sed -n 's/^ *fastcgi_param NPP_CPU_US \([0-9]*\);/\1/p' "$DIR/nginx.conf" | head -n1)
        write_nginx_conf "$val"
        nginx -t -q -c "$DIR/nginx.conf" -e "$DIR/logs/nginx-error.log" || die "new nginx config invalid"
        sed -i "s/^MOBILE_KEY=.*/MOBILE_KEY=$val/" "$DIR/stack.env"
        if [ "$val" = on ]; then
            sed -i "s/^CACHE_KEY=.*/CACHE_KEY='\$scheme\$request_method\$host\$request_uri\$mobile'/" "$DIR/stack.env"
        else
            sed -i "s/^CACHE_KEY=.*/CACHE_KEY='\$scheme\$request_method\$host\$request_uri'/" "$DIR/stack.env"
        fi
        # Reload, then wait until no worker of the old generation is left (the master's children
        # are replaced: compare child PID sets).
        local before after
        before=$(pgrep -P "$NGINX_PID" | sort | tr '\n' ' ')
        kill -HUP "$NGINX_PID"
        for _ in $(seq 100); do
            after=$(pgrep -P "$NGINX_PID" | sort | tr '\n' ' ')
            local stale=0 p
            for p in $before; do case " $after " in *" $p "*) stale=1 ;; esac; done
            [ $stale = 0 ] && [ -n "$after" ] && return 0
            sleep 0.1
        done
        die "nginx did not finish reloading"
        ;;
    *) die "set: unknown switch '$what' (vary, mobile-key)" ;;
    esac
}

cmd_urls() {
    local idx sm
    idx=$(curl -fsS --max-time 10 "${BASE_URL}sitemap.xml") || die "cannot fetch ${BASE_URL}sitemap.xml"
    for sm in $(printf '%s\n' "$idx" | sed -n 's:.*<loc>\(.*\)</loc>.*:\1:p'); do
        curl -fsS --max-time 10 "$sm" | sed -n 's:.*<loc>\(.*\)</loc>.*:\1:p' || die "cannot fetch $sm"
    done
}

cmd_hits() {
    load_env
    local ua=$CHROME_UA
    [ "${1:-}" = mobile ] && ua=$MOBILE_UA
    local cfg="$DIR/logs/hits.curl" out="$DIR/logs/hits.out"
    cmd_urls | sed 's/.*/url = "&"\noutput = "\/dev\/null"/' >"$cfg"
    # One curl process, one keep-alive connection; the URL bytes go on the wire as written.
    curl -sS --path-as-is -K "$cfg" -A "$ua" -H "Accept: $CHROME_ACCEPT" \
        -H 'Accept-Encoding: gzip, deflate, br, zstd' -H 'Accept-Language: en-US,en;q=0.9' \
        -w '%header{x-fastcgi-cache} %{http_code} %{url_effective}\n' >"$out"
    local total hits
    total=$(wc -l <"$out")
    hits=$(grep -c '^HIT 200 ' "$out" || true)
    grep -v '^HIT 200 ' "$out" >"$DIR/logs/misses.txt" || true
    awk -v h="$hits" -v t="$total" 'BEGIN { printf "HIT %d/%d (%.1f%%)\n", h, t, t ? 100 * h / t : 0 }'
}

cmd=${1:-}
[ $# -ge 2 ] || usage
shift
need_dir_arg=$1
shift
case "$cmd" in
start) cmd_start "$need_dir_arg" ;;
stop) need_dir "$need_dir_arg"; cmd_stop ;;
purge) need_dir "$need_dir_arg"; cmd_purge ;;
status) need_dir "$need_dir_arg"; cmd_status ;;
set) need_dir "$need_dir_arg"; cmd_set "$@" ;;
urls) need_dir "$need_dir_arg"; load_env; cmd_urls ;;
hits) need_dir "$need_dir_arg"; cmd_hits "$@" ;;
*) usage ;;
esac
