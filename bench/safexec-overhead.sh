#!/usr/bin/env bash
# Per-exec overhead of the setuid safexec, measured in one run against running the tool directly.
#
# Builds safexec (release), installs it root:root 4755 in a fresh directory under /tmp, then,
# as an unprivileged user (sxtest, created if missing), runs hyperfine on
#   A: sha256sum /dev/null
#   B: <setuid safexec> sha256sum /dev/null      (SAFEXEC_QUIET=1)
#   C: <0755 safexec> sha256sum /dev/null        (pass-through: policy + pinning + exec only)
# and prints the per-exec overhead (B - A, medians) in ms and the ratio B / A.
# Baseline for comparison: the C safexec 1.9.6 adds about 1 ms, a 2.5x ratio, on these machines.
#
# Needs root (setuid install, useradd). Optional: RUNS (default 1000), WARMUP (default 50),
# SAFEXEC_BIN (measure that binary instead of building one, e.g. the static one packaging/build.sh
# ships: target/x86_64-unknown-linux-gnu/release/safexec), BASELINE_BIN (a second safexec, e.g.
# an earlier build or the C one, installed 4755 the same way and measured in the same run, so
# the two overheads are compared under the same load).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "safexec-overhead: must run as root (setuid install)" >&2
    exit 1
fi
command -v hyperfine >/dev/null || { echo "safexec-overhead: hyperfine is not installed" >&2; exit 1; }

# Measure the built-in defaults: tests running on the same host create and rewrite
# /etc/safexec.conf, so the script re-runs itself in a private mount namespace whose /etc is a
# copy without that file.
if [ -z "${SAFEXEC_BENCH_NS:-}" ]; then
    export SAFEXEC_BENCH_NS=1
    exec unshare -m --propagation private bash "$0" "$@"
fi
etc=$(mktemp -d /tmp/safexec-bench-etc.XXXXXX)
cp -a /etc/. "$etc/"
chmod 0755 "$etc"
rm -f "$etc/safexec.conf"
mount --bind "$etc" /etc

RUNS=${RUNS:-1000}
WARMUP=${WARMUP:-50}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
bin=${SAFEXEC_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet -p safexec --bin safexec
    bin=$CARGO_TARGET_DIR/release/safexec
fi
[ -x "$bin" ] || { echo "safexec-overhead: $bin is not an executable" >&2; exit 1; }

user=sxtest
getent passwd "$user" >/dev/null || useradd --system --user-group --no-create-home \
    --shell /usr/sbin/nologin --home-dir /nonexistent "$user" 2>/dev/null || getent passwd "$user" >/dev/null

dir=$(mktemp -d /tmp/safexec-bench.XXXXXX)
trap 'rm -rf "$dir" "$etc"' EXIT
chmod 0755 "$dir"
install -o root -g root -m 0755 "$bin" "$dir/safexec"
chmod 4755 "$dir/safexec"
install -o root -g root -m 0755 "$bin" "$dir/plain/safexec" -D
mkdir "$dir/out" && chown "$user:" "$dir/out"
base=()
if [ -n "${BASELINE_BIN:-}" ]; then
    install -o root -g root -m 0755 "$BASELINE_BIN" "$dir/base/safexec" -D
    chmod 4755 "$dir/base/safexec"
    base=(-n baseline "$dir/base/safexec sha256sum /dev/null")
fi

# Sanity: the setuid path really runs (and really drops) before timing it.
setpriv --reuid="$user" --regid="$user" --clear-groups env -i SAFEXEC_QUIET=1 \
    "$dir/safexec" sha256sum /dev/null >/dev/null

setpriv --reuid="$user" --regid="$user" --clear-groups \
    env -i PATH=/usr/bin:/bin SAFEXEC_QUIET=1 \
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
    --export-csv "$dir/out/result.csv" \
    -n direct "sha256sum /dev/null" \
    -n safexec "$dir/safexec sha256sum /dev/null" \
    -n passthrough "$dir/plain/safexec sha256sum /dev/null" "${base[@]}" >&2

# CSV columns: command,mean,stddev,median,user,system,min,max (seconds).
awk -F, '
    $1 == "direct"  { d = $4; dm = $7 }
    $1 == "safexec" { s = $4; sm = $7 }
    $1 == "passthrough" { p = $4 }
    $1 == "baseline" { b = $4; bm = $7 }
    END {
        printf "direct  sha256sum /dev/null : %.3f ms (median)\n", d * 1000
        printf "safexec sha256sum /dev/null : %.3f ms (median, setuid, as an unprivileged user)\n", s * 1000
        printf "overhead per exec           : %.3f ms\n", (s - d) * 1000
        printf "ratio safexec/direct        : %.2fx   (C safexec 1.9.6: ~1 ms, 2.5x)\n", s / d
        printf "pass-through (no setuid)    : %.3f ms, overhead %.3f ms, %.2fx\n", p * 1000, (p - d) * 1000, p / d
        printf "overhead per exec, minimums : %.3f ms (less sensitive to other load on the host)\n", (sm - dm) * 1000
        if (b != "") {
            printf "baseline (BASELINE_BIN)     : %.3f ms, overhead %.3f ms, %.2fx; minimums: overhead %.3f ms\n", b * 1000, (b - d) * 1000, b / d, (bm - dm) * 1000
        }
    }' "$dir/out/result.csv"
