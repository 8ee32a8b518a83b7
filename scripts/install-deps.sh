#!/usr/bin/env bash
# Installs the system packages the demo, the tests and the benchmarks need, once and quietly.
# Packages: nginx, php-fpm, wget, curl, hyperfine, wrk, passwd (useradd), util-linux (setpriv),
# procps, libcap2-bin (capsh/getpcaps, for diagnostics) and the cargo-fuzz subcommand (from crates.io);
# for the packages (packaging/): lintian, rpm, rpmlint, dpkg-dev (dpkg-shlibdeps), strace, file,
# binutils (readelf), python3, openssl (throwaway TLS certificates for the shim tests) and the
# cargo-deb and cargo-generate-rpm subcommands (from crates.io).
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
ls /usr/sbin/php-fpm* >/dev/null 2>&1 || need+=(php-fpm)
command -v wget >/dev/null 2>&1 || need+=(wget)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
command -v getpcaps >/dev/null 2>&1 || need+=(libcap2-bin)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v rpm >/dev/null 2>&1 || need+=(rpm)
command -v rpmlint >/dev/null 2>&1 || need+=(rpmlint)
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v file >/dev/null 2>&1 || need+=(file)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The purge service's tests: SpinupWP's PHP client (php-cli), systemd-analyze verify/security.
command -v php >/dev/null 2>&1 || need+=(php-cli)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# cache-purge: the e2e tests compare with the real ngx_cache_purge module; the benchmarks time rg.
[ -e /usr/lib/nginx/modules/ngx_http_cache_purge_module.so ] || need+=(libnginx-mod-http-cache-purge)
command -v rg >/dev/null 2>&1 || need+=(ripgrep)
# The PHP client and the WordPress e2e tests: Debian's WordPress and a theme (it ships none), a
# private MariaDB, PHP's mysqli, xml (sitemaps), mbstring, intl and curl extensions, and PHPUnit.
[ -f /usr/share/wordpress/wp-load.php ] || need+=(wordpress)
[ -d /usr/share/wordpress/wp-content/themes/twentytwentythree ] || need+=(wordpress-theme-twentytwentythree)
command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
for ext in mysqli:php-mysql xml:php-xml mbstring:php-mbstring intl:php-intl curl:php-curl; do
    php -m 2>/dev/null | grep -qix "${ext%%:*}" || need+=("${ext#*:}")
done
command -v phpunit >/dev/null 2>&1 || need+=(phpunit)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to install: ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The distribution's units must not hold the ports or the cache dirs the tests use.
    for svc in nginx php8.2-fpm mariadb; do
        if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    done
    pkill -x nginx >/dev/null 2>&1 || true
    pkill -f 'php-fpm: master' >/dev/null 2>&1 || true
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --quiet --locked cargo-fuzz >/dev/null 2>&1
fi
# Packaging tools, built without optimization: they only pack a few MB per run (6 s slower), and
# this cuts their one-time build from about 6 to 2 minutes on 2 cores.
for sub in deb generate-rpm; do
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0 \
            cargo install --quiet --locked "cargo-$sub" >/dev/null 2>&1
    fi
done
