#!/usr/bin/env bash
# Tests the packages of issue 9: builds them (packaging/build.sh), then checks
# - SHA256SUMS; the shipped safexec, cache-preload, cache-purge, cache-purged and cache-setup are static (readelf: no PT_INTERP, no NEEDED;
#   file) and run in an empty chroot, and in a root without glibc the setuid safexec runs
#   cache-preload as nobody from that root's /etc/passwd, resolving a name from its /etc/hosts; neither touches NSS (strace: no nsswitch.conf, no libnss_*,
#   no shared object opened) while resolving users and host names;
# - .deb: lintian reports no error; no maintainer scripts; `dpkg -i` installs a root:root 4755
#   safexec that an unprivileged user runs (drop to the job user proven by a file only that user
#   can read), the conffile is accepted by safexec, kept over a reinstall and an upgrade, kept by
#   `dpkg -r` (which removes everything else) and removed by `dpkg --purge`;
# - .rpm: `rpm -qplv` shows -rwsr-xr-x root root safexec, %config(noreplace) conffile, no scripts;
#   rpmlint (packaging/rpmlint.toml) reports no error;
# - .apk: packaging/check_apk.py (segments, .PKGINFO, datahash, per-file checksums, modes).
# Needs root and the tools scripts/install-deps.sh installs; a missing tool is a failure.
# dpkg -i changes the real system: the script refuses to start when safexec is already installed
# and purges its package and removes its test user on every exit. Run it after `cargo test`, never
# beside the other tests (they expect no /usr/bin/cache-preload and no /usr/lib/npp shim).
set -euo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }
die() { echo "FAIL - $*"; echo "packages: $passed passed, $((failed + 1)) failed"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (dpkg -i, setuid checks)"
for tool in dpkg dpkg-deb dpkg-query lintian rpm rpmlint python3 readelf file strace chroot \
    useradd userdel setpriv sha256sum cargo-deb cargo-generate-rpm; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run: bash scripts/install-deps.sh)"
done
if dpkg-query -W -f='${Status}' safexec 2>/dev/null | grep -qv 'not-installed'; then
    die "a safexec package is installed (dpkg -s safexec); refusing to replace or purge it"
fi
for f in /usr/bin/safexec /usr/bin/cache-preload /usr/bin/cache-purge /usr/bin/cache-purged /usr/bin/cache-setup \
    /usr/lib/npp/libnpp_norm.so /etc/safexec.conf; do
    [ ! -e "$f" ] || die "$f exists outside the package; refusing to overwrite it"
done

target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
out=$target_dir/packages
bash packaging/build.sh --out "$out" >/dev/null
version=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "safexec"))')
deb=$out/safexec_${version}-1_amd64.deb
rpmf=$out/safexec-${version}-1.x86_64.rpm
apk=$out/safexec-${version}-r0.x86_64.apk
for f in "$deb" "$rpmf" "$apk" "$out/SHA256SUMS"; do [ -f "$f" ] || die "build.sh did not write $f"; done

tmp=$(mktemp -d /tmp/pkgtest.XXXXXX)
user=npp-pkgtest
cleanup() {
    if dpkg-query -W -f='${Status}' safexec 2>/dev/null | grep -qv 'not-installed'; then
        dpkg --purge safexec >/dev/null 2>&1 || echo "packages: WARNING: dpkg --purge safexec failed" >&2
    fi
    userdel "$user" >/dev/null 2>&1 || true
    umount "$tmp/alpine-like/proc" "$tmp/alpine-like/dev/null" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
userdel "$user" >/dev/null 2>&1 || true
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
uid=$(id -u "$user")
gid=$(id -g "$user")
as_user() { (cd / && setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"); }

# ---- checksums and static binaries (as shipped in the .deb and the .apk) ----
if (cd "$out" && sha256sum --quiet -c SHA256SUMS); then ok "SHA256SUMS matches the three packages"; else bad "SHA256SUMS"; fi

dpkg-deb -x "$deb" "$tmp/deb"
mkdir -p "$tmp/apk"
if python3 packaging/check_apk.py "$apk" --version "$version" --extract "$tmp/apk" >"$tmp/apk.log"; then
    sed 's/^/  /' "$tmp/apk.log"
    ok ".apk segments, .PKGINFO fields, datahash, per-file checksums and modes"
else
    sed 's/^/  /' "$tmp/apk.log"
    bad ".apk check"
fi
bins="safexec cache-preload cache-purge cache-purged cache-setup"
for b in $(for n in $bins; do echo "$tmp/deb/usr/bin/$n $tmp/apk/usr/bin/$n"; done); do
    name=${b#"$tmp"/}
    [ -f "$b" ] || { bad "$name missing"; continue; }
    if readelf -lW "$b" | grep -q 'INTERP'; then bad "$name has a PT_INTERP (dynamic loader)"
    elif readelf -dW "$b" | grep -q '(NEEDED)'; then bad "$name has NEEDED entries"
    elif ! file -b "$b" | grep -Eq 'static-pie linked|statically linked'; then bad "$name: file says: $(file -b "$b")"
    else ok "$name is static (no PT_INTERP, no NEEDED; file: $(file -b "$b" | grep -Eo 'static-pie linked|statically linked'))"
    fi
done
same=1
for n in $bins; do cmp -s "$tmp/deb/usr/bin/$n" "$tmp/apk/usr/bin/$n" || same=0; done
if [ "$same" = 1 ]; then
    ok "the .deb and the .apk ship the same binaries"
else
    bad "the .deb and the .apk binaries differ"
fi

# An empty root (no /lib, no loader, no libc, no NSS modules): static binaries still run.
root=$tmp/chroot
mkdir -p "$root/etc"
cp "$tmp/deb/usr/bin/safexec" "$tmp/deb/usr/bin/cache-preload" "$root/"
if v=$(chroot "$root" /safexec -v 2>&1) && [ "$(head -1 <<<"$v")" = "safexec 1.9.6" ] &&
    c=$(chroot "$root" /cache-preload --version 2>&1) && [ "$c" = "cache-preload $version" ]; then
    ok "both binaries run in an empty chroot without /lib"
else
    bad "static binaries in an empty chroot: ${v:-} ${c:-}"
fi

# A root with no glibc at all, like an Alpine system: only the two static binaries and its own
# /etc/passwd and /etc/hosts. The unprivileged user runs the setuid safexec, which must take the
# job user from that passwd file, and cache-preload must find a name that only that hosts file
# knows, fetching from a loopback server outside the root.
alp=$tmp/alpine-like
mkdir -p "$alp/usr/bin" "$alp/etc" "$alp/dev" "$alp/proc" "$alp/run" "$alp/www"
chmod 0755 "$alp" "$alp/usr" "$alp/usr/bin" "$alp/etc" "$alp/run"
install -o root -g root -m 4755 "$tmp/deb/usr/bin/safexec" "$alp/usr/bin/safexec"
install -o root -g root -m 0755 "$tmp/deb/usr/bin/cache-preload" "$alp/usr/bin/cache-preload"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n%s:x:%s:%s::/:/sbin/nologin\n' \
    "$user" "$uid" "$gid" >"$alp/etc/passwd"
printf '127.0.0.1 localhost\n127.0.0.1 only-in-this-root.test\n' >"$alp/etc/hosts"
printf 'alpine-like root\n' >"$alp/www/index.html"
touch "$alp/dev/null"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$alp/www" "$port" >/dev/null 2>&1 &
web=$!
mount --bind /dev/null "$alp/dev/null" && mount -t proc proc "$alp/proc" || die "cannot mount /dev/null and /proc in $alp"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
chroot --userspec="$uid:$gid" "$alp" /usr/bin/safexec cache-preload --no-recursive --no-progress \
    "http://only-in-this-root.test:$port/" >"$tmp/alp.out" 2>"$tmp/alp.err" && alp_rc=0 || alp_rc=$?
umount "$alp/proc" "$alp/dev/null"
kill "$web" 2>/dev/null || true
if [ "$alp_rc" -eq 0 ] && grep -q 'Summary: user=65534:65534' "$tmp/alp.err" &&
    grep -Eq "^200 .*http://only-in-this-root\.test:$port/\$" "$tmp/alp.out"; then
    ok "in a root without glibc, setuid safexec drops to nobody from its /etc/passwd and cache-preload resolves a name from its /etc/hosts"
else
    sed 's/^/  /' "$tmp/alp.err" "$tmp/alp.out"
    bad "glibc-free root: safexec cache-preload exited $alp_rc"
fi

# No NSS: resolving `nobody` (safexec) and `localhost` (cache-preload) must not open
# /etc/nsswitch.conf, an NSS module or any shared object. safexec runs as root here (strace drops
# setuid); only its own opens count, up to the exec of the tool. O_PATH opens are left out: they
# cannot read a byte, and safexec makes them to name the files a job's Landlock ruleset allows
# (the loader cache and nsswitch.conf among them, for dynamically linked tools).
strace -f -qq -e trace=open,openat,openat2,execve,execveat -o "$tmp/safexec.strace" \
    "$tmp/deb/usr/bin/safexec" sha256sum /dev/null >/dev/null 2>&1 || true
own=$(awk 'NR > 1 && /execve(at)?\(/ { exit } { print }' "$tmp/safexec.strace")
if ! grep -q '"/etc/passwd"' <<<"$own"; then bad "safexec never read /etc/passwd (strace log: $tmp/safexec.strace)"
elif grep -v 'O_PATH' <<<"$own" | grep -E 'nsswitch|libnss|\.so[".]'; then bad "safexec opened NSS files or shared objects"
else ok "safexec resolves users from /etc/passwd with no NSS access (strace)"
fi
# Stronger for the setuid binary: glibc's NSS code (which loads its modules as libnss_<name>) is
# not even linked. (The string nsswitch.conf is there: it is a path of the Landlock allowlist.)
if grep -aqE 'libnss_' "$tmp/deb/usr/bin/safexec"; then
    bad "safexec links glibc's NSS code (getpwnam, getgrouplist, getaddrinfo...)"
else
    ok "safexec links no NSS code (no libnss_ module names in the binary)"
fi
strace -f -qq -e trace=open,openat,openat2,execve -o "$tmp/crawler.strace" \
    "$tmp/deb/usr/bin/cache-preload" --no-recursive --no-progress http://localhost:9/ >/dev/null 2>&1 || true
# (localhost is answered as loopback without reading a file, RFC 6761; reading a name from
# /etc/hosts is what the glibc-free root above proves.)
if grep -E 'nsswitch|libnss|\.so[".]|gai\.conf' "$tmp/crawler.strace"; then
    bad "cache-preload opened NSS files or shared objects while resolving localhost (glibc getaddrinfo?)"
else
    ok "cache-preload resolves localhost with no NSS access (strace)"
fi

# ---- .deb: lintian and contents ----
if lintian --fail-on error "$deb" >"$tmp/lintian.log" 2>&1 &&
    ! grep -q '^E:' "$tmp/lintian.log"; then
    ok "lintian: no errors"
else
    sed 's/^/  /' "$tmp/lintian.log"
    bad "lintian reports errors"
fi
if dpkg-deb -I "$deb" | grep -Eq '^ +[0-9]+ bytes, +[0-9]+ lines +\*? *(pre|post)(inst|rm|)'; then
    bad ".deb has maintainer scripts"
else
    ok ".deb has no maintainer scripts (installs download nothing; the config is a conffile)"
fi
if [ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" = "/etc/safexec.conf" ]; then
    ok ".deb conffiles: /etc/safexec.conf"
else
    bad ".deb conffiles"
fi

# ---- .deb: install, smoke test as an unprivileged user, reinstall, upgrade, remove, purge ----
if dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then ok "dpkg -i"; else sed 's/^/  /' "$tmp/dpkg.log"; die "dpkg -i failed"; fi
modes=$(stat -c '%n %a %U:%G' /usr/bin/safexec /usr/bin/cache-preload /usr/bin/cache-purge /usr/bin/cache-purged \
    /usr/bin/cache-setup /usr/lib/npp/libnpp_norm.so /etc/safexec.conf)
want="/usr/bin/safexec 4755 root:root
/usr/bin/cache-preload 755 root:root
/usr/bin/cache-purge 755 root:root
/usr/bin/cache-purged 755 root:root
/usr/bin/cache-setup 755 root:root
/usr/lib/npp/libnpp_norm.so 644 root:root
/etc/safexec.conf 644 root:root"
if [ "$modes" = "$want" ]; then ok "installed modes and owners (safexec 4755 root:root)"; else bad "installed modes: $modes"; fi
for f in /usr/share/man/man1/safexec.1.gz /usr/share/man/man1/cache-preload.1.gz \
    /usr/share/bash-completion/completions/safexec /usr/share/bash-completion/completions/cache-preload \
    /usr/share/zsh/vendor-completions/_safexec /usr/share/fish/vendor_completions.d/cache-preload.fish \
    /usr/share/doc/safexec/copyright /usr/share/doc/safexec/changelog.gz /usr/share/doc/safexec/README.md \
    /usr/share/man/man1/cache-purge.1.gz /usr/share/man/man1/cache-setup.1.gz /usr/share/man/man8/cache-purged.8.gz \
    /lib/systemd/system/cache-purged.socket /lib/systemd/system/cache-purged.service \
    /lib/systemd/system/cache-purged-spinupwp.socket /lib/systemd/system/cache-preload@.service \
    /lib/systemd/system/cache-preload@.timer /usr/share/cache-purged/nginx/cache-purged-location.conf; do
    [ -f "$f" ] || missing="${missing:-} $f"
done
if [ -z "${missing:-}" ]; then ok "man pages, completions, docs, systemd units (disabled) and nginx snippets installed"; else bad "not installed:$missing"; fi
if zcat /usr/share/man/man1/safexec.1.gz | grep -q '^\.TH SAFEXEC 1' &&
    zcat /usr/share/man/man1/cache-preload.1.gz | grep -q '^\.TH cache-preload 1'; then
    ok "safexec(1) and cache-preload(1) are man pages"
else
    bad "safexec(1) or cache-preload(1) is not a man page"
fi

smoke() { # $1: what; runs the checks as the unprivileged user
    local v out err nobody_id
    v=$(as_user /usr/bin/safexec -v) || { bad "$1: safexec -v failed"; return; }
    [ "$(head -1 <<<"$v")" = "safexec 1.9.6" ] || { bad "$1: safexec -v says: $v"; return; }
    # A file only the job user (nobody) can read: the user cannot, safexec's job can.
    nobody_id=$(awk -F: '$1 == "nobody" { print $3 ":" $4 }' /etc/passwd)
    mkdir -p "$tmp/smoke" && chmod 0755 "$tmp" "$tmp/smoke"
    printf 'only nobody reads this\n' >"$tmp/smoke/secret"
    chown "$nobody_id" "$tmp/smoke/secret" && chmod 0400 "$tmp/smoke/secret"
    if as_user cat "$tmp/smoke/secret" >/dev/null 2>&1; then bad "$1: the test user can read nobody's file"; return; fi
    # Issue 15 class 1: the job must not read for the user what the user cannot read.
    if as_user /usr/bin/safexec sha256sum "$tmp/smoke/secret" >/dev/null 2>&1; then
        bad "$1: safexec let the job read nobody's file for the user"; return
    fi
    out=$(as_user /usr/bin/safexec sha256sum /dev/null 2>"$tmp/smoke.err") ||
        { bad "$1: safexec sha256sum failed: $(cat "$tmp/smoke.err")"; return; }
    err=$(cat "$tmp/smoke.err")
    [ "$out" = "$(sha256sum /dev/null)" ] || { bad "$1: sha256sum output: $out"; return; }
    if grep -q 'Pass-Through' <<<"$err"; then bad "$1: safexec ran in pass-through mode: $err"; return; fi
    if grep -q 'safexec.conf' <<<"$err"; then bad "$1: safexec complained about /etc/safexec.conf: $err"; return; fi
    grep -q "Summary: user=$nobody_id" <<<"$err" || { bad "$1: no drop to nobody: $err"; return; }
    out=$(as_user /usr/bin/safexec cache-preload --version 2>/dev/null) ||
        { bad "$1: safexec cache-preload --version failed"; return; }
    [ "$out" = "cache-preload $version" ] || { bad "$1: cache-preload --version: $out"; return; }
    ok "$1: user $user ran /usr/bin/safexec (-v, sha256sum as nobody, nobody's file refused, cache-preload --version)"
}
smoke "after dpkg -i"

# An administrator's edit survives a reinstall and an upgrade (dpkg keeps a changed conffile whose
# packaged version did not change, without asking).
printf 'pids_max = 32\n' >>/etc/safexec.conf
edited=$(sha256sum /etc/safexec.conf)
dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || { sed 's/^/  /' "$tmp/dpkg.log"; bad "dpkg -i (reinstall) failed"; }
if [ "$(sha256sum /etc/safexec.conf)" = "$edited" ]; then ok "reinstall keeps the edited /etc/safexec.conf"; else bad "reinstall overwrote /etc/safexec.conf"; fi
dpkg-deb -R "$deb" "$tmp/up"
sed -i "s/^Version: .*/Version: ${version}-2/" "$tmp/up/DEBIAN/control"
dpkg-deb --root-owner-group -b "$tmp/up" "$tmp/safexec_${version}-2_amd64.deb" >/dev/null
dpkg -i "$tmp/safexec_${version}-2_amd64.deb" </dev/null >"$tmp/dpkg.log" 2>&1 || { sed 's/^/  /' "$tmp/dpkg.log"; bad "dpkg -i (upgrade) failed"; }
if [ "$(dpkg-query -W -f='${Version}' safexec)" = "${version}-2" ] && [ "$(sha256sum /etc/safexec.conf)" = "$edited" ]; then
    ok "upgrade to ${version}-2 keeps the edited /etc/safexec.conf"
else
    bad "upgrade: version $(dpkg-query -W -f='${Version}' safexec), config $(sha256sum /etc/safexec.conf)"
fi
[ "$(stat -c '%a %U:%G' /usr/bin/safexec)" = "4755 root:root" ] || bad "upgrade lost the setuid mode"
smoke "after upgrade, with the edited config"

if dpkg -r safexec >"$tmp/dpkg.log" 2>&1; then ok "dpkg -r"; else sed 's/^/  /' "$tmp/dpkg.log"; bad "dpkg -r failed"; fi
left=$(dpkg-query -L safexec 2>/dev/null | while read -r f; do [ -f "$f" ] && echo "$f"; done || true)
if [ "$left" = "/etc/safexec.conf" ] && [ ! -e /usr/bin/safexec ] && [ ! -e /usr/lib/npp ] &&
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' safexec)" = "rc " ]; then
    ok "dpkg -r removed every file but the conffile (state rc)"
else
    bad "after dpkg -r: files left: $left"
fi
if dpkg --purge safexec >"$tmp/dpkg.log" 2>&1 && [ ! -e /etc/safexec.conf ] &&
    ! dpkg-query -W safexec >/dev/null 2>&1; then
    ok "dpkg --purge removed /etc/safexec.conf and the package"
else
    bad "dpkg --purge"
fi

# ---- .rpm ----
rpm -qplv "$rpmf" >"$tmp/rpm.log"
if grep -Eq '^-rwsr-xr-x +1 root +root +[0-9]+ .* /usr/bin/safexec$' "$tmp/rpm.log"; then
    ok "rpm -qplv: -rwsr-xr-x root root /usr/bin/safexec"
else
    sed 's/^/  /' "$tmp/rpm.log"
    bad "rpm -qplv does not show a setuid root safexec"
fi
if rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpmf" | grep -qx 'cn /etc/safexec.conf'; then
    ok "rpm: /etc/safexec.conf is %config(noreplace)"
else
    bad "rpm: /etc/safexec.conf is not %config(noreplace)"
fi
if grep -Eq '^-rw.r-.r-. +1 root +root .* /usr/lib/npp/libnpp_norm.so$' "$tmp/rpm.log"; then
    ok "rpm: shim at /usr/lib/npp/libnpp_norm.so, root-owned"
else
    bad "rpm: shim missing or not root-owned"
fi
if [ -z "$(rpm -qp --scripts "$rpmf")" ]; then ok "rpm has no scriptlets"; else bad "rpm has scriptlets"; fi
# Install into a private root (--nodeps: that root has no glibc package for the shim's
# requirements); no scriptlets, so rpm never chroots into it.
rr=$tmp/rpmroot
mkdir -p "$rr"
if rpm --root "$rr" --initdb 2>/dev/null && rpm --root "$rr" -i --nodeps "$rpmf" 2>/dev/null &&
    [ "$(stat -c '%a %U:%G' "$rr/usr/bin/safexec" "$rr/etc/safexec.conf")" = "4755 root:root
644 root:root" ]; then
    ok "rpm -i (private root): safexec 4755 root:root, /etc/safexec.conf 644"
else
    bad "rpm -i into a private root"
fi
printf 'pids_max = 32\n' >>"$rr/etc/safexec.conf"
edited=$(sha256sum <"$rr/etc/safexec.conf")
rpm --root "$rr" -U --replacepkgs --nodeps "$rpmf" 2>/dev/null || bad "rpm -U --replacepkgs"
if [ "$(sha256sum <"$rr/etc/safexec.conf")" = "$edited" ]; then ok "rpm reinstall keeps the edited /etc/safexec.conf"; else bad "rpm reinstall overwrote /etc/safexec.conf"; fi
rpm --root "$rr" -e --nodeps safexec 2>/dev/null || bad "rpm -e"
left=$(cd "$rr" && find . -path ./root -prune -o -path ./var -prune -o -type f -print)
if [ "$left" = "./etc/safexec.conf.rpmsave" ]; then
    ok "rpm -e removes every file and saves the edited config as .rpmsave"
else
    bad "after rpm -e: $left"
fi
if rpmlint -c packaging/rpmlint.toml "$rpmf" >"$tmp/rpmlint.log" 2>&1 && grep -q ' 0 errors' "$tmp/rpmlint.log"; then
    ok "rpmlint: $(grep -Eo '[0-9]+ errors, [0-9]+ warnings' "$tmp/rpmlint.log")"
else
    sed 's/^/  /' "$tmp/rpmlint.log"
    bad "rpmlint reports errors"
fi

echo "packages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
