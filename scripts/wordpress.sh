#!/usr/bin/env bash
# wordpress.sh — a throw-away real WordPress (Debian's `wordpress` package) behind nginx's FastCGI
# cache, for the e2e tests: a private MariaDB, PHP-FPM running as the site user, 300 posts (50 with
# non-ASCII slugs stored as lower-case %xx), the must-use plugin tests/fixtures/wordpress/mu-plugins/
# npp-cache.php and the PHP client php/. Everything lives under DIR, except Debian's per-site config
# file /etc/wordpress/config-<name>.php (removed by stop) and the site user (created once).
#
# Interface:
#   wordpress.sh start DIR   start MariaDB, nginx and PHP-FPM under DIR, install WordPress and its
#                            content, print the base URL and write DIR/wp.env (see below)
#   wordpress.sh stop DIR    stop what start started, remove the config file; keep DIR
#   wordpress.sh urls DIR    print every URL of WordPress's sitemap (wp-sitemap.xml)
#   wordpress.sh exec DIR [--env NAME=VALUE]... CMD ARGS...
#                            run CMD as the site user, with a cleared environment (PATH, LANG and
#                            the --env values), in PHP-FPM's mount namespace: what a PHP-FPM
#                            worker sees (its /usr/local/bin, its /etc/safexec.conf)
#
# Environment for start:
#   WP_SITE_USER      PHP-FPM's pool user (default wpsite)
#   WP_SAFEXEC        the setuid safexec the plugin calls (required)
#   WP_BIN_DIR        root-owned tools (cache-preload, cache-purge) bind-mounted over a private
#                     /usr/local/bin in PHP-FPM's mount namespace (required)
#   WP_SAFEXEC_CONF   a file bind-mounted over /etc/safexec.conf in that namespace (optional)
#   WP_PURGE_SOCKET   the purge service's socket, given to the plugin (optional)
#   WP_REFRESH        on: the plugin refreshes pages in place with X-Cache-Purged-Refresh: 1, which
#                     nginx honours from loopback (default on; off: purge, then re-warm)
# safexec cache-purge wants every ancestor of a cache root root-owned and not writable by others:
# for purge tests, start DIR under such a path (the e2e harness uses /var/lib/npp-e2e), not /tmp.
#   WP_WORKERS        PHP-FPM children (default 6)        WP_POSTS  posts (default 300)
#
# DIR/wp.env: BASE_URL PORT HOST CACHE_DIR SITE_USER NGINX_USER NGINX_PID FPM_PID DB_PID
# SITEMAP_URL ACCESS_LOG PHP_ERROR_LOG STATE_DIR APP_USER APP_PASSWORD WP_CONFIG_NAME REFRESH_HEADER
# nginx: key $scheme$request_method$host$request_uri, levels=1:2, 200 cached 1h, X-FastCGI-Cache on
# every answer; logged-in cookies, Authorization, wp-admin, wp-json, wp-login and sitemaps bypass
# the cache and are not stored.
set -euo pipefail

ME=$(basename "$0")
REPO=$(cd "$(dirname "$0")/.." && pwd)
FIX="$REPO/tests/fixtures/wordpress"
NGINX_USER=www-data

die() { echo "$ME: $*" >&2; exit 1; }
usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

need_dir() {
    [ -n "${1:-}" ] || usage
    DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such directory: $1"
}
load_env() {
    [ -f "$DIR/wp.env" ] || die "$DIR/wp.env not found (was the site started there?)"
    # shellcheck disable=SC1091
    . "$DIR/wp.env"
}

tail_logs() {
    local f
    for f in "$DIR"/logs/*.log "$DIR"/logs/*.err; do
        [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 15 "$f" >&2; }
    done
    return 0
}

stop_pids() {
    local pid
    for pid in "$@"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 100); do
        local any=0
        for pid in "$@"; do alive "$pid" && any=1; done
        [ $any = 0 ] && return 0
        sleep 0.1
    done
    for pid in "$@"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null || true; done
    return 0
}

pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "no free port found"
}

fail() { tail_logs; cmd_stop; die "$*"; }

start_db() {
    # A private tmpdir too: concurrent bootstraps in one /tmp collide on temporary table names.
    mkdir -p "$DIR/db/data" "$DIR/db/run" "$DIR/db/tmp"
    chown -R mysql:mysql "$DIR/db"
    chmod 0700 "$DIR/db/data" "$DIR/db/tmp"
    chmod 0755 "$DIR/db" "$DIR/db/run"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/db/data" --tmpdir="$DIR/db/tmp" \
        --auth-root-authentication-method=socket --skip-test-db >"$DIR/logs/db-install.log" 2>&1 ||
        fail "mariadb-install-db failed"
    # Durability is not the point of a throw-away test database; speed is.
    setsid mariadbd --no-defaults --user=mysql --datadir="$DIR/db/data" --tmpdir="$DIR/db/tmp" \
        --socket="$DIR/db/run/mysqld.sock" --pid-file="$DIR/db/run/mysqld.pid" \
        --skip-networking --skip-name-resolve --skip-log-bin --log-error="$DIR/logs/mariadb.err" \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=0 \
        --innodb-doublewrite=0 --performance-schema=OFF </dev/null >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 200); do
        [ -S "$DIR/db/run/mysqld.sock" ] && break
        alive "$pid" || fail "mariadbd exited"
        sleep 0.05
    done
    [ -S "$DIR/db/run/mysqld.sock" ] || fail "mariadbd did not create its socket"
    DB_PID=$pid
    echo "DB_PID=$DB_PID" >>"$DIR/wp.env"
    DB_PASS=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    mariadb --no-defaults -S "$DIR/db/run/mysqld.sock" -uroot -e \
        "CREATE DATABASE wp CHARACTER SET utf8mb4; CREATE USER 'wp'@'localhost' IDENTIFIED BY '$DB_PASS'; GRANT ALL ON wp.* TO 'wp'@'localhost';" ||
        fail "cannot create the database"
}

write_nginx_conf() {
    cat >"$DIR/nginx.conf" <<NGX
# Written by scripts/wordpress.sh.
user $NGINX_USER;
worker_processes 2;
pid $DIR/run/nginx.pid;
error_log $DIR/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format wp '\$msec "\$request" \$status \$upstream_cache_status \$request_time "\$http_user_agent"';
    access_log $DIR/logs/access.log wp buffer=16k flush=200ms;
    client_body_temp_path $DIR/tmp/body;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    proxy_temp_path $DIR/tmp/proxy;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;

    fastcgi_cache_path $DIR/cache levels=1:2 keys_zone=wp:16m inactive=1d use_temp_path=off;
    fastcgi_cache_key "\$scheme\$request_method\$host\$request_uri";

    map \$http_cookie \$wp_cookie {
        default 0;
        "~*(wordpress_logged_in_|wordpress_sec_|wp-postpass_|comment_author_)" 1;
    }
    map \$request_uri \$wp_dynamic {
        default 0;
        "~^/(wp-admin|wp-json|wp-login\.php|wp-cron\.php|xmlrpc\.php|wp-sitemap)" 1;
        "~[?&](rest_route|preview|s)=" 1;
    }
    # Refresh in place (the purge service's header, packaging/nginx/cache-purged-http.conf): a
    # loopback request with X-Cache-Purged-Refresh: 1 skips the lookup and its answer replaces the
    # stored entry, so visitors keep getting HITs while a page is replaced.
    map "\$remote_addr:\$http_x_cache_purged_refresh" \$cache_purged_refresh {
        default "";
        "~^(127\.0\.0\.1|::1):1\$" 1;
    }

    server {
        listen 127.0.0.1:$PORT;
        server_name _;
        root /usr/share/wordpress;
        index index.php;

        location ^~ /wp-content/ { alias $DIR/wp-content/; }
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            # Debian's fastcgi_params pass HTTP_HOST without the port.
            fastcgi_param HTTP_HOST \$host:\$server_port;
            fastcgi_param WORDPRESS_CONFIG $WP_CONFIG_NAME;
            fastcgi_pass unix:$DIR/run/php-fpm.sock;
            fastcgi_read_timeout 300;

            fastcgi_cache wp;
            fastcgi_cache_valid 200 1h;
            fastcgi_cache_bypass \$wp_cookie \$wp_dynamic \$http_authorization \$cache_purged_refresh;
            fastcgi_no_cache \$wp_cookie \$wp_dynamic \$http_authorization;
            add_header X-FastCGI-Cache \$upstream_cache_status always;
        }
    }
}
NGX
}

write_wp_config() {
    local salts="" k
    for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
        salts+="define('$k', '$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')');"$'\n'
    done
    local base=${BASE_URL%/} extra=""
    [ "$REFRESH" = on ] && extra+="define('NPP_REFRESH_HEADER', 'X-Cache-Purged-Refresh: 1');"$'\n'
    [ -n "${WP_PURGE_SOCKET:-}" ] && extra+="define('NPP_PURGE_SOCKET', '$WP_PURGE_SOCKET');"$'\n'
    cat >"$WP_CONFIG_FILE.new" <<PHP
<?php
// Written by scripts/wordpress.sh for $DIR.
define('DB_NAME', 'wp');
define('DB_USER', 'wp');
define('DB_PASSWORD', '$DB_PASS');
define('DB_HOST', 'localhost:$DIR/db/run/mysqld.sock');
define('WP_HOME', '$base');
define('WP_SITEURL', '$base');
define('WP_CONTENT_DIR', '$DIR/wp-content');
define('WP_CONTENT_URL', '$base/wp-content');
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_ENVIRONMENT_TYPE', 'local');
define('NPP_CACHE_CLIENT', '$DIR/npp-client');
define('NPP_SAFEXEC', '$WP_SAFEXEC');
define('NPP_STATE_DIR', '$DIR/npp-state');
$extra$salts\$table_prefix = 'wp_';
PHP
    chown "root:$SITE_USER" "$WP_CONFIG_FILE.new"
    chmod 0640 "$WP_CONFIG_FILE.new"
    mv "$WP_CONFIG_FILE.new" "$WP_CONFIG_FILE"
}

# Runs PHP CLI as the site user with a cleared environment (as PHP-FPM would); WordPress retries a
# database it cannot reach forever, hence the time limit.
site_php() {
    timeout 180 setpriv --reuid="$SITE_USER" --regid="$SITE_USER" --clear-groups -- \
        env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HTTP_HOST="$HOST:$PORT" WORDPRESS_CONFIG="$WP_CONFIG_NAME" \
        WP_E2E_POSTS="$POSTS" php -d memory_limit=512M "$@"
}

start_fpm() {
    local fpm
    fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | head -n1)
    [ -x "$fpm" ] || fail "php-fpm not installed"
    cat >"$DIR/php-fpm.conf" <<FPM
[global]
pid = $DIR/run/php-fpm.pid
error_log = $DIR/logs/php-fpm.log
daemonize = no
; A reload (SIGUSR2) lets each worker finish its request instead of cutting it off.
process_control_timeout = 20

[wp]
user = $SITE_USER
group = $SITE_USER
listen = $DIR/run/php-fpm.sock
listen.owner = $NGINX_USER
listen.group = $NGINX_USER
listen.mode = 0660
pm = static
pm.max_children = $WORKERS
request_terminate_timeout = 300
catch_workers_output = yes
php_admin_value[error_log] = $DIR/logs/php-error.log
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
FPM
    # PHP-FPM (and so every job its workers start through safexec) lives in a mount namespace of
    # its own: /usr/local/bin holds only the root-owned tools of WP_BIN_DIR, and /etc/safexec.conf
    # may be replaced. The host's directories are not changed. The master stays in the foreground
    # of a background job (unshare, sh and php-fpm exec in turn: one PID), so a reload (SIGUSR2,
    # a re-exec) keeps its PID.
    setsid unshare -m --propagation private -- /bin/sh -c '
        set -e
        bin=$1 conf=$2 etc=$3
        shift 3
        mount -t tmpfs -o mode=0755,uid=0,gid=0 wp-bin /usr/local/bin
        for f in "$bin"/*; do
            n=$(basename "$f")
            touch "/usr/local/bin/$n"
            mount --bind "$f" "/usr/local/bin/$n"
        done
        if [ -n "$conf" ]; then
            if [ -e /etc/safexec.conf ]; then
                mount --bind "$conf" /etc/safexec.conf
            else
                cp -a /etc/. "$etc/"
                cp "$conf" "$etc/safexec.conf"
                chmod 0644 "$etc/safexec.conf"
                mount --bind "$etc" /etc
            fi
        fi
        exec "$@"' sh "$WP_BIN_DIR" "${WP_SAFEXEC_CONF:-}" "$DIR/etc" \
        "$fpm" --nodaemonize --fpm-config "$DIR/php-fpm.conf" </dev/null >/dev/null 2>>"$DIR/logs/start.err" &
    local pid=$!
    for _ in $(seq 100); do
        [ -S "$DIR/run/php-fpm.sock" ] && [ "$(pid_of "$DIR/run/php-fpm.pid")" = "$pid" ] && break
        alive "$pid" || fail "php-fpm failed to start"
        sleep 0.05
    done
    [ -S "$DIR/run/php-fpm.sock" ] || fail "php-fpm did not come up"
    FPM_PID=$pid
    echo "FPM_PID=$FPM_PID" >>"$DIR/wp.env"
}

start_nginx() {
    local tries pid=""
    for tries in 1 2 3 4 5; do
        PORT=$(pick_port)
        write_nginx_conf
        : >"$DIR/logs/nginx-error.log"
        if nginx -c "$DIR/nginx.conf" -e "$DIR/logs/nginx-error.log" 2>>"$DIR/logs/start.err"; then
            for _ in $(seq 50); do
                pid=$(pid_of "$DIR/run/nginx.pid")
                [ -n "$pid" ] && break
                sleep 0.05
            done
            break
        fi
        grep -q 'Address already in use' "$DIR/logs/nginx-error.log" "$DIR/logs/start.err" 2>/dev/null || break
    done
    alive "$pid" || fail "nginx did not start"
    NGINX_PID=$pid
    echo "NGINX_PID=$NGINX_PID" >>"$DIR/wp.env"
}

cmd_start() {
    [ "$(id -u)" -eq 0 ] || die "start needs root"
    local t
    for t in nginx mariadbd mariadb-install-db curl php; do
        command -v "$t" >/dev/null || die "$t not installed (run scripts/install-deps.sh)"
    done
    [ -f /usr/share/wordpress/wp-load.php ] || die "Debian's wordpress package is not installed"
    [ -d /usr/share/wordpress/wp-content/themes/twentytwentythree ] || die "wordpress-theme-twentytwentythree is not installed"
    [ -n "${WP_SAFEXEC:-}" ] && [ -x "$WP_SAFEXEC" ] || die "WP_SAFEXEC must name the setuid safexec"
    [ -n "${WP_BIN_DIR:-}" ] && [ -d "$WP_BIN_DIR" ] || die "WP_BIN_DIR must name a directory of tools"
    mkdir -p "$1"
    need_dir "$1"
    [ ! -f "$DIR/wp.env" ] || die "a site was already started in $DIR"
    SITE_USER=${WP_SITE_USER:-wpsite}
    WORKERS=${WP_WORKERS:-6}
    POSTS=${WP_POSTS:-300}
    REFRESH=${WP_REFRESH:-on}
    case "$WORKERS$POSTS" in *[!0-9]*) die "WP_WORKERS and WP_POSTS must be numbers" ;; esac
    if ! id -u "$SITE_USER" >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SITE_USER" 2>/dev/null ||
            id -u "$SITE_USER" >/dev/null 2>&1 || die "cannot create $SITE_USER"
    fi
    chmod 0755 "$DIR"
    mkdir -p "$DIR/run" "$DIR/logs" "$DIR/tmp" "$DIR/cache" "$DIR/etc" \
        "$DIR/wp-content/themes" "$DIR/wp-content/mu-plugins" "$DIR/wp-content/uploads" "$DIR/npp-client" "$DIR/npp-state"
    chmod 0755 "$DIR/run" "$DIR/logs"
    chmod 0700 "$DIR/etc"
    chown "$NGINX_USER:$NGINX_USER" "$DIR/cache" "$DIR/tmp"
    chmod 0700 "$DIR/cache" "$DIR/tmp"
    ln -s /usr/share/wordpress/wp-content/themes/twentytwentythree "$DIR/wp-content/themes/twentytwentythree"
    cp "$FIX/mu-plugins/"*.php "$DIR/wp-content/mu-plugins/"
    cp -R "$REPO/php/src" "$REPO/php/autoload.php" "$DIR/npp-client/"
    chmod -R a+rX "$DIR/wp-content" "$DIR/npp-client"
    chown "$SITE_USER:$SITE_USER" "$DIR/wp-content/uploads" "$DIR/npp-state"
    chmod 0700 "$DIR/npp-state"
    : >"$DIR/logs/start.err"
    : >"$DIR/logs/php-error.log"
    chown "$SITE_USER:$SITE_USER" "$DIR/logs/php-error.log"

    HOST=127.0.0.1
    WP_CONFIG_NAME="e2e-$(printf '%s' "$DIR" | md5sum | cut -c1-16)"
    WP_CONFIG_FILE="/etc/wordpress/config-$WP_CONFIG_NAME.php"
    cat >"$DIR/wp.env" <<ENV
HOST=$HOST
CACHE_DIR=$DIR/cache
SITE_USER=$SITE_USER
NGINX_USER=$NGINX_USER
ACCESS_LOG=$DIR/logs/access.log
PHP_ERROR_LOG=$DIR/logs/php-error.log
STATE_DIR=$DIR/npp-state
WP_CONFIG_NAME=$WP_CONFIG_NAME
ENV
    mkdir -p /etc/wordpress
    start_db
    start_nginx
    BASE_URL="http://$HOST:$PORT/"
    write_wp_config
    {
        echo "PORT=$PORT"
        echo "BASE_URL=$BASE_URL"
        echo "SITEMAP_URL=${BASE_URL}wp-sitemap.xml"
        [ "$REFRESH" = on ] && echo "REFRESH_HEADER='X-Cache-Purged-Refresh: 1'"
    } >>"$DIR/wp.env"

    local out
    out=$(cd / && site_php "$FIX/install.php" install 2>>"$DIR/logs/install.err") || fail "WordPress install failed"
    site_php "$FIX/install.php" flush >/dev/null 2>>"$DIR/logs/install.err" || fail "flushing rewrite rules failed"
    APP_PASSWORD=$(printf '%s' "$out" | sed -n 's/.*"app_password":"\([^"]*\)".*/\1/p')
    [ -n "$APP_PASSWORD" ] || fail "no application password in the installer's output: $out"
    echo "APP_USER=admin" >>"$DIR/wp.env"
    echo "APP_PASSWORD='$APP_PASSWORD'" >>"$DIR/wp.env"
    start_fpm

    local code=""
    for _ in $(seq 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Cookie: wordpress_logged_in_x=1' "$BASE_URL" 2>/dev/null || true)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || fail "WordPress did not answer 200 at $BASE_URL (last status: ${code:-none})"
    local n
    n=$(cmd_urls | wc -l)
    [ "$n" -ge "$POSTS" ] || fail "the sitemap lists only $n URLs"
    echo "PAGES=$n" >>"$DIR/wp.env"
    echo "$BASE_URL"
}

cmd_stop() {
    [ -f "$DIR/wp.env" ] || return 0
    local NGINX_PID="" FPM_PID="" DB_PID="" WP_CONFIG_NAME=""
    load_env
    local pids=() pid
    # The recorded PIDs and the pid files' (a master that re-executed itself may have a new one),
    # each only while it is a server of this DIR.
    for pid in "$NGINX_PID" "$FPM_PID" "$DB_PID" "$(pid_of "$DIR/run/nginx.pid")" \
        "$(pid_of "$DIR/run/php-fpm.pid")" "$(pid_of "$DIR/db/run/mysqld.pid")"; do
        case " ${pids[*]} " in *" $pid "*) continue ;; esac
        if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR/"; then pids+=("$pid"); fi
    done
    [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
    [ -z "$WP_CONFIG_NAME" ] || rm -f "/etc/wordpress/config-$WP_CONFIG_NAME.php"
}

cmd_urls() {
    local idx sm base=${BASE_URL:-}
    [ -n "$base" ] || { load_env; base=$BASE_URL; }
    idx=$(curl -fsS --max-time 20 "${base}wp-sitemap.xml") || die "cannot fetch ${base}wp-sitemap.xml"
    for sm in $(printf '%s\n' "$idx" | grep -o '<loc>[^<]*</loc>' | sed 's:</\?loc>::g'); do
        curl -fsS --max-time 20 "$sm" | grep -o '<loc>[^<]*</loc>' | sed 's:</\?loc>::g' || die "cannot fetch $sm"
    done
}

cmd_exec() {
    load_env
    alive "$FPM_PID" || die "PHP-FPM is not running"
    local envs=(PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8)
    while [ "${1:-}" = --env ]; do
        envs+=("$2")
        shift 2
    done
    [ $# -ge 1 ] || usage
    exec nsenter --mount --target "$FPM_PID" -- \
        setpriv --reuid="$SITE_USER" --regid="$SITE_USER" --clear-groups -- env -i "${envs[@]}" "$@"
}

cmd=${1:-}
[ $# -ge 2 ] || usage
dir_arg=$2
shift 2
case "$cmd" in
start) cmd_start "$dir_arg" ;;
stop) need_dir "$dir_arg"; cmd_stop ;;
urls) need_dir "$dir_arg"; load_env; cmd_urls ;;
exec) need_dir "$dir_arg"; cmd_exec "$@" ;;
*) usage ;;
esac
