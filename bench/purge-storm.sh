#!/usr/bin/env bash
# Purge storm against the purge service, and the exec-per-URL baseline it replaces.
#
# A fake nginx cache of URLS entries (default 1000, real version-5 headers, levels=1:2, owned by
# www-data) is purged by REQUESTS single-URL requests (default 10000, each URL ~10 times) from
# CLIENTS concurrent connections (default 16), twice: closed loop (one request in flight per
# client: the answer time a caller sees) and pipelined (throughput). The service runs as
# www-data with --no-warm (re-warms measure PHP, not the service). Baseline, on the same tree:
# one `cache-purge --owner www-data URL` exec per URL, the cost of purging from PHP by exec.
# Prints requests/s, answer p50/p99, the service's peak RSS, and the ratio to the baseline.
#
# Env: URLS REQUESTS CLIENTS; PURGED_BIN / CACHE_PURGE_BIN to time given binaries (default:
# debug builds, cargo build -p purged -p cache-purge). Needs root (users, chown).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "purge-storm: run as root" >&2; exit 1; }
URLS=${URLS:-1000}
REQUESTS=${REQUESTS:-10000}
CLIENTS=${CLIENTS:-16}
if [ -z "${PURGED_BIN:-}" ] || [ -z "${CACHE_PURGE_BIN:-}" ]; then
    cargo build --quiet -p purged -p cache-purge
    PURGED_BIN=${PURGED_BIN:-target/debug/cache-purged}
    CACHE_PURGE_BIN=${CACHE_PURGE_BIN:-target/debug/cache-purge}
fi

DIR=$(mktemp -d /tmp/purge-storm.XXXXXX)
chmod 755 "$DIR"
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
install -m 0755 "$PURGED_BIN" "$DIR/cache-purged"
install -m 0755 "$CACHE_PURGE_BIN" "$DIR/cache-purge"

fill() { # a fresh fake cache
    rm -rf "$DIR/cache"
    python3 - "$DIR/cache" "$URLS" <<'PY'
import hashlib, os, struct, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    key = f"httpGETstorm.test/p/{i}/".encode()
    h = hashlib.md5(key).hexdigest()
    d = os.path.join(root, h[-1], h[-3:-1])
    os.makedirs(d, exist_ok=True)
    head = bytearray(336)
    head[0:8] = struct.pack("<Q", 5)
    head[54:56] = struct.pack("<H", 336 + 6 + len(key) + 1)
    with open(os.path.join(d, h), "wb") as f:
        f.write(bytes(head) + b"\nKEY: " + key + b"\nStatus: 200 OK\r\n\r\n" + b"x" * 2048)
PY
    chown -R www-data:www-data "$DIR/cache"
    chmod -R u=rwX,go= "$DIR/cache"
}
left() { find "$DIR/cache" -type f | wc -l; }

mkdir "$DIR/run" && chown www-data: "$DIR/run"   # the service binds its socket there
printf 'cache_root = %s www-data url=http://storm.test\n' "$DIR/cache" >"$DIR/safexec.conf"
chmod 644 "$DIR/safexec.conf"
start() { # extra service options
    setpriv --reuid=www-data --regid=www-data --init-groups -- "$DIR/cache-purged" \
        --config "$DIR/safexec.conf" --socket "$DIR/run/purged.sock" --no-warm --idle-exit 0 "$@" &
    PID=$!
    for _ in $(seq 100); do [ -S "$DIR/run/purged.sock" ] && break; sleep 0.05; done
}

echo "purge-storm: $REQUESTS requests for $URLS URLs from $CLIENTS clients ($(nproc) CPUs)"
fill
start
closed=$(python3 bench/purge-storm.py "$DIR/run/purged.sock" closed "$CLIENTS" "$REQUESTS" "$URLS" storm.test)
echo "  service, $closed; files left: $(left)"
rps_service=$(sed -n 's/.* = \([0-9]*\) requests\/s.*/\1/p' <<<"$closed")
fill
piped=$(python3 bench/purge-storm.py "$DIR/run/purged.sock" pipelined "$CLIENTS" "$REQUESTS" "$URLS" storm.test)
echo "  service, $piped; files left: $(left)"
echo "  service peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status")"
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
# The default 5 ms coalescing window is most of a closed-loop answer time; without it:
fill
start --window-ms 0
nowin=$(python3 bench/purge-storm.py "$DIR/run/purged.sock" closed "$CLIENTS" "$REQUESTS" "$URLS" storm.test)
echo "  service --window-ms 0, $nowin; files left: $(left)"
rps_nowin=$(sed -n 's/.* = \([0-9]*\) requests\/s.*/\1/p' <<<"$nowin")
rps_piped=$(sed -n 's/.* = \([0-9]*\) requests\/s.*/\1/p' <<<"$piped")
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=

fill
t0=$(date +%s.%N)
for i in $(seq 0 $((URLS - 1))); do
    "$DIR/cache-purge" --owner www-data --cache-path "$DIR/cache" --no-index "http://storm.test/p/$i/" >/dev/null
done
t1=$(date +%s.%N)
rps_exec=$(python3 -c "print(round($URLS / ($t1 - $t0)))")
echo "  baseline, one cache-purge exec per URL: $URLS purges = $rps_exec purges/s; files left: $(left)"
python3 -c "print(f'  ratios to the exec baseline: closed loop {$rps_service / $rps_exec:.1f}x, closed loop without window {$rps_nowin / $rps_exec:.1f}x, pipelined {$rps_piped / $rps_exec:.1f}x')"
