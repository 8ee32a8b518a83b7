#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short, fixed time (FUZZ_SECONDS, default 10) on the nightly toolchain.
# Any crash or panic fails the run. The targets are safe Rust, so they build without AddressSanitizer
# (`-s none`): the build is much shorter and a panic is still a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${FUZZ_SECONDS:-10}
targets=$(cargo +nightly fuzz list)
[ -n "$targets" ] || { echo "fuzz-smoke: no fuzz targets" >&2; exit 1; }
cargo +nightly fuzz build -s none >/tmp/fuzz-build.log 2>&1 || { tail -n 40 /tmp/fuzz-build.log >&2; exit 1; }
# Seeds: cache-setup's nginx/PHP-FPM tokenizer starts from the fixture hosts' real configurations.
mkdir -p corpus/setup_tokenizer && for f in ../tests/fixtures/nginx-confs/*/*.conf ../tests/fixtures/nginx-confs/*/*/*.conf; do [ -f "$f" ] && cp "$f" "corpus/setup_tokenizer/$(echo "${f#../tests/fixtures/nginx-confs/}" | tr / _)"; done || true
for t in $targets; do
    echo "fuzz: $t (${secs}s)"
    cargo +nightly fuzz run -s none "$t" -- -max_total_time="$secs" >"/tmp/fuzz-$t.log" 2>&1 || {
        tail -n 40 "/tmp/fuzz-$t.log" >&2
        echo "fuzz-smoke: target $t failed" >&2
        exit 1
    }
    grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "/tmp/fuzz-$t.log" | tail -n 1 || true
done
