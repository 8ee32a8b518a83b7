# shellcheck shell=bash
# Builds (once) and locates the release cache-preload binary for the bench scripts.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}

bench_build() {
    # CACHE_PRELOAD_BIN measures a given binary instead (e.g. an older build, for before/after).
    if [ -n "${CACHE_PRELOAD_BIN:-}" ]; then
        CACHE_PRELOAD=$CACHE_PRELOAD_BIN
        [ -x "$CACHE_PRELOAD" ] || { echo "bench: $CACHE_PRELOAD is not executable" >&2; return 1; }
        return 0
    fi
    (cd "$REPO_ROOT" && CARGO_TARGET_DIR=$BENCH_TARGET_DIR cargo build --quiet --release -p cache-preload "$@") >&2
    CACHE_PRELOAD="$BENCH_TARGET_DIR/release/cache-preload"
    [ -x "$CACHE_PRELOAD" ] || { echo "bench: build failed" >&2; return 1; }
}
