#!/usr/bin/env bash
# Overhead of libnpp_norm.so (crate npp-norm) per request, measured in one run against the same
# client without LD_PRELOAD, on a loopback python3 http.server:
#   wget 1 URL, curl 1 URL           (per process: library load, constructor, one request;
#                                     both sides start through env(1), so only the shim differs)
#   wget -i 200 URLs                 (per request inside one process)
# each with and without LD_PRELOAD=target/release/libnpp_norm.so (PCTNORM_CASE=upper), and prints
# the ratios of the medians (1.00 = no measurable cost). Every URL carries lower-case triplets,
# so the shim really re-cases every request line.
#
# Needs hyperfine, wget, curl, python3. Optional: RUNS (default 200), WARMUP (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in hyperfine wget curl python3; do
    command -v "$t" >/dev/null || { echo "shim-overhead: $t is not installed" >&2; exit 1; }
done
RUNS=${RUNS:-200}
WARMUP=${WARMUP:-20}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --quiet -p npp-norm
SO=$CARGO_TARGET_DIR/release/libnpp_norm.so

work=$(mktemp -d)
srv=""
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/www/p"
printf 'ok\n' >"$work/www/p/水"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" >/dev/null 2>&1 &
srv=$!
url="http://127.0.0.1:$port/p/%e6%b0%b4"
for _ in $(seq 50); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
curl -sf -o /dev/null "$url" || { echo "shim-overhead: test server did not start" >&2; exit 1; }
for i in $(seq 200); do echo "$url?i=$i"; done >"$work/urls"

export LC_ALL=C.UTF-8 PCTNORM_CASE=upper
median() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][int(sys.argv[2])]["median"])' "$@"; }
bench() { # name runs cmd...
    local name=$1 runs=$2; shift 2
    hyperfine -N --style none --warmup "$WARMUP" --runs "$runs" --export-json "$work/$name.json" \
        -n plain "env $*" -n shim "env LD_PRELOAD=$SO $*" >/dev/null 2>&1
    local a b
    a=$(median "$work/$name.json" 0); b=$(median "$work/$name.json" 1)
    python3 -c 'import sys; a,b=float(sys.argv[2]),float(sys.argv[3]); print(f"{sys.argv[1]:<24} plain {a*1e3:8.3f} ms  shim {b*1e3:8.3f} ms  ratio {b/a:5.3f}  (+{(b-a)*1e3:.3f} ms)")' "$name" "$a" "$b"
}
bench "wget 1 URL" "$RUNS" wget -q -O /dev/null "$url"
bench "curl 1 URL" "$RUNS" curl -s -o /dev/null "$url"
bench "wget -i 200 URLs" $((RUNS / 10 > 5 ? RUNS / 10 : 5)) wget -q -O /dev/null -i "$work/urls"
