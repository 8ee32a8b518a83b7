#!/usr/bin/env bash
# Builds the safexec packages: .deb (cargo-deb), .rpm (cargo-generate-rpm) and .apk
# (packaging/mkapk.py), plus SHA256SUMS, into DIR (default: <target dir>/packages).
# safexec, cache-preload, cache-purge, cache-purged and cache-setup are built static (crt-static on the gnu target); the LD_PRELOAD shim
# libnpp_norm.so is a glibc cdylib and is built separately, without crt-static.
# Needs cargo-deb, cargo-generate-rpm, python3 and gzip (scripts/install-deps.sh installs them).
# Downloads nothing but crates (cargo --locked).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

usage() { echo "usage: bash packaging/build.sh [--out DIR]" >&2; exit 2; }
out=
while [ $# -gt 0 ]; do
    case $1 in
        --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        -h | --help) echo "usage: bash packaging/build.sh [--out DIR]"; exit 0 ;;
        *) usage ;;
    esac
done

for tool in cargo-deb cargo-generate-rpm python3 gzip sha256sum; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "packaging: $tool is missing (run: bash scripts/install-deps.sh)" >&2
        exit 1
    fi
done

triple=x86_64-unknown-linux-gnu
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out=${out:-$target_dir/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "safexec"))')
# Reproducible timestamps: the last commit's time.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
export SOURCE_DATE_EPOCH

echo "packaging: static release build of safexec, cache-preload, cache-purge, cache-purged and cache-setup ($triple)"
# getrandom_backend=linux_getrandom: the resolver's RNG (rand → getrandom 0.4) calls getrandom(2)
# itself instead of finding it through a weak symbol, which a static binary never resolves, so it
# would fall back to opening /dev/urandom and abort in a root without one.
RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' cargo build --quiet --locked --release \
    --target "$triple" -p safexec -p cache-preload -p cache-purge -p purged -p cache-setup
echo "packaging: release build of libnpp_norm.so (dynamic, glibc)"
env -u RUSTFLAGS cargo build --quiet --locked --release -p npp-norm

bin=$target_dir/$triple/release
stage=$bin/pkg
rm -rf "$stage"
mkdir -p "$stage/man" "$stage/completions" "$stage/doc"
install -m 0644 "$target_dir/release/libnpp_norm.so" "$stage/libnpp_norm.so"
gzip -9n <packaging/man/safexec.1 >"$stage/man/safexec.1.gz"
"$bin/cache-preload" --generate-man | gzip -9n >"$stage/man/cache-preload.1.gz"
"$bin/cache-purge" --generate-man | gzip -9n >"$stage/man/cache-purge.1.gz"
"$bin/cache-setup" --generate-man | gzip -9n >"$stage/man/cache-setup.1.gz"
gzip -9n <packaging/man/cache-purged.8 >"$stage/man/cache-purged.8.gz"
"$bin/cache-preload" --generate-completions bash >"$stage/completions/cache-preload.bash"
"$bin/cache-preload" --generate-completions zsh >"$stage/completions/_cache-preload"
"$bin/cache-preload" --generate-completions fish >"$stage/completions/cache-preload.fish"
gzip -9n <CHANGELOG.md >"$stage/doc/changelog.gz"

rm -f "$out"/safexec_*.deb "$out"/safexec-*.rpm "$out"/safexec-*.apk "$out/SHA256SUMS"
echo "packaging: .deb"
cargo deb --quiet -p safexec --no-build --no-strip --target "$triple" --output "$out" >/dev/null
echo "packaging: .rpm"
cargo generate-rpm -p safexec --target "$triple" --target-dir "$target_dir" \
    --payload-compress xz -o "$out/safexec-$version-1.x86_64.rpm"
echo "packaging: .apk"
python3 packaging/mkapk.py --manifest packaging/apk-files \
    --var "bin=$bin" --var "stage=$stage" --var "repo=$repo" \
    --name safexec --version "$version" --arch x86_64 \
    --description "Hardened setuid exec wrapper and nginx cache preloader (safexec 1.9.6 drop-in)" \
    --url "https://example.invalid/npp-secure" --license GPL-2.0-or-later \
    --packager "npp-secure maintainers <maintainers@example.invalid>" \
    --out "$out/safexec-$version-r0.x86_64.apk"

(cd "$out" && sha256sum -- safexec_*.deb safexec-*.rpm safexec-*.apk >SHA256SUMS)
echo "packaging: done in $out"
(cd "$out" && ls -l -- safexec_*.deb safexec-*.rpm safexec-*.apk SHA256SUMS)
