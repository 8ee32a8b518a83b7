#!/usr/bin/env bash
# Runs every test of the project: system packages (once), formatting, lints, docs, unit, integration,
# setuid and end-to-end tests, the .deb/.rpm/.apk packages, then a short run of every fuzz target.
# Needs root: the setuid tests chown binaries to root and the end-to-end tests start nginx and PHP-FPM.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test-all: must run as root (setuid and nginx tests); try: sudo bash scripts/test-all.sh" >&2
    exit 1
fi

bash scripts/install-deps.sh
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items --quiet
echo "== cargo test"
cargo test --workspace --no-fail-fast
# After cargo test: dpkg -i puts files on the real system that the other tests must not see.
echo "== packages (.deb, .rpm, .apk: build, lintian, rpmlint, dpkg -i smoke test)"
bash packaging/test.sh
echo "== fuzz smoke"
bash scripts/fuzz-smoke.sh
echo "== all tests passed"
