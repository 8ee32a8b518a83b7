#!/usr/bin/env python3
"""Checks an apk v2 package independently of the code that wrote it (packaging/mkapk.py).

Reads the raw gzip members, checks the segment layout (control: a tar segment holding only
.PKGINFO with no end-of-archive blocks; data: a complete tar), the .PKGINFO fields, that
`datahash` is the SHA-256 of the data member as stored, every file's
`APK-TOOLS.checksum.SHA1` PAX header, the expected files with owner and mode, that nothing
else is installed, and that there are no install scripts. Optionally extracts the files for
further checks (readelf).

Usage: check_apk.py FILE.apk --version V [--extract DIR]
Prints one `ok - ...` line per check and exits 1 at the first failure.
"""

import argparse
import hashlib
import io
import os
import sys
import tarfile
import zlib

BLOCK = 512

# Every file of the package: path -> mode. Directories are checked separately.
EXPECTED = {
    "usr/bin/safexec": 0o4755,
    "usr/bin/cache-preload": 0o755,
    "usr/bin/cache-purge": 0o755,
    "usr/bin/cache-purged": 0o755,
    "usr/bin/cache-setup": 0o755,
    "usr/share/man/man1/cache-purge.1.gz": 0o644,
    "usr/share/man/man1/cache-setup.1.gz": 0o644,
    "usr/share/man/man8/cache-purged.8.gz": 0o644,
    "usr/share/doc/safexec/cache-purged-PROTOCOL.md": 0o644,
    "usr/share/cache-purged/nginx/cache-purged-http.conf": 0o644,
    "usr/share/cache-purged/nginx/cache-purged-location.conf": 0o644,
    "usr/share/cache-purged/nginx/cache-purged-refresh.conf": 0o644,
    # Alpine has no systemd: the units ship as reference files, not in a unit directory.
    "usr/share/cache-purged/systemd/cache-purged.socket": 0o644,
    "usr/share/cache-purged/systemd/cache-purged.service": 0o644,
    "usr/share/cache-purged/systemd/cache-purged-spinupwp.socket": 0o644,
    "usr/share/cache-purged/systemd/cache-preload@.service": 0o644,
    "usr/share/cache-purged/systemd/cache-preload@.timer": 0o644,
    "etc/safexec.conf": 0o644,
    "usr/share/man/man1/safexec.1.gz": 0o644,
    "usr/share/man/man1/cache-preload.1.gz": 0o644,
    "usr/share/bash-completion/completions/safexec": 0o644,
    "usr/share/bash-completion/completions/cache-preload": 0o644,
    "usr/share/zsh/site-functions/_safexec": 0o644,
    "usr/share/zsh/site-functions/_cache-preload": 0o644,
    "usr/share/fish/vendor_completions.d/safexec.fish": 0o644,
    "usr/share/fish/vendor_completions.d/cache-preload.fish": 0o644,
    "usr/share/doc/safexec/README.md": 0o644,
    "usr/share/doc/safexec/CHANGELOG.md": 0o644,
    "usr/share/licenses/safexec/LICENSE": 0o644,
}


def fail(msg):
    print(f"FAIL - apk: {msg}")
    sys.exit(1)


def ok(msg):
    print(f"ok - apk: {msg}")


def gzip_members(raw):
    """Splits the file into its gzip members: (compressed bytes, decompressed bytes) each."""
    members = []
    pos = 0
    while pos < len(raw):
        if raw[pos : pos + 2] != b"\x1f\x8b":
            fail(f"no gzip member at byte {pos}")
        d = zlib.decompressobj(wbits=31)
        try:
            plain = d.decompress(raw[pos:])
        except zlib.error as e:
            fail(f"corrupt gzip member at byte {pos}: {e}")
        if not d.eof:
            fail(f"truncated gzip member at byte {pos}")
        end = len(raw) - len(d.unused_data)
        members.append((raw[pos:end], plain))
        pos = end
    return members


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("apk")
    ap.add_argument("--version", required=True)
    ap.add_argument("--extract")
    a = ap.parse_args()

    with open(a.apk, "rb") as f:
        raw = f.read()
    members = gzip_members(raw)
    signed = members and members[0][1][:6] == b".SIGN."
    want = 3 if signed else 2
    if len(members) != want:
        fail(f"{len(members)} gzip members, expected {want} (signature?, control, data)")
    ok(f"{len(members)} gzip segments ({'signed' if signed else 'unsigned: apk add --allow-untrusted'})")

    control, data = members[-2], members[-1]
    ctl = control[1]
    # A tar *segment*: one header, the padded .PKGINFO, and no end-of-archive zero blocks.
    if len(ctl) % BLOCK or len(ctl) < 2 * BLOCK:
        fail(f"control segment is {len(ctl)} bytes, not whole tar blocks")
    with tarfile.open(fileobj=io.BytesIO(ctl + b"\0" * 2 * BLOCK)) as t:
        names = t.getnames()
        if names != [".PKGINFO"]:
            fail(f"control segment holds {names}, expected only .PKGINFO")
        info = t.getmember(".PKGINFO")
        body = t.extractfile(info).read()
    padded = BLOCK + (info.size + BLOCK - 1) // BLOCK * BLOCK
    if len(ctl) != padded:
        fail(f"control segment has {len(ctl) - padded} bytes after .PKGINFO (end-of-archive blocks?)")
    ok("control segment: a tar segment of .PKGINFO only, without end-of-archive blocks")

    fields = {}
    for line in body.decode("utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            fail(f".PKGINFO line {line!r} is not `key = value`")
        fields.setdefault(key, []).append(value)
    required = ["pkgname", "pkgver", "pkgdesc", "url", "builddate", "packager", "size", "arch",
                "origin", "license", "datahash"]
    for key in required:
        if len(fields.get(key, [])) != 1 or not fields[key][0]:
            fail(f".PKGINFO: {key} missing, empty or repeated")
    f1 = {k: v[0] for k, v in fields.items()}
    checks = {
        "pkgname": "safexec",
        "pkgver": f"{a.version}-r0",
        "arch": "x86_64",
        "origin": "safexec",
        "license": "GPL-2.0-or-later",
    }
    for key, value in checks.items():
        if f1[key] != value:
            fail(f".PKGINFO {key} = {f1[key]!r}, expected {value!r}")
    if not f1["builddate"].isdigit():
        fail(f".PKGINFO builddate {f1['builddate']!r} is not a Unix time")
    if "depend" in fields:
        fail(f".PKGINFO depends on {fields['depend']}: the static binaries need nothing")
    ok(f".PKGINFO fields: {', '.join(required)}")

    datahash = hashlib.sha256(data[0]).hexdigest()
    if f1["datahash"] != datahash:
        fail(f"datahash {f1['datahash']} != sha256 of the data segment {datahash}")
    ok("datahash is the SHA-256 of the data segment")

    dat = data[1]
    if len(dat) % BLOCK or dat[-2 * BLOCK :] != b"\0" * 2 * BLOCK:
        fail("data segment is not a complete tar (end-of-archive blocks missing)")
    seen = {}
    total = 0
    with tarfile.open(fileobj=io.BytesIO(dat)) as t:
        for m in t.getmembers():
            name = m.name.rstrip("/")
            if m.uid != 0 or m.gid != 0:
                fail(f"{name}: owner {m.uid}:{m.gid}, expected root:root")
            if m.isdir():
                if m.mode != 0o755:
                    fail(f"{name}/: mode {m.mode:o}, expected 755")
                continue
            if not m.isfile():
                fail(f"{name}: unexpected entry type {m.type!r}")
            content = t.extractfile(m).read()
            sha1 = m.pax_headers.get("APK-TOOLS.checksum.SHA1")
            if sha1 != hashlib.sha1(content).hexdigest():
                fail(f"{name}: APK-TOOLS.checksum.SHA1 {sha1!r} does not match the content")
            seen[name] = m.mode
            total += len(content)
            if a.extract:
                dest = os.path.join(a.extract, name)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as out:
                    out.write(content)
                os.chmod(dest, m.mode & 0o777)
    ok("data segment: a complete tar; every file has a matching APK-TOOLS.checksum.SHA1")
    if seen != EXPECTED:
        extra = sorted(set(seen) - set(EXPECTED))
        missing = sorted(set(EXPECTED) - set(seen))
        wrong = sorted(n for n in set(seen) & set(EXPECTED) if seen[n] != EXPECTED[n])
        fail(f"files differ: extra {extra}, missing {missing}, wrong mode {wrong}")
    ok("files and modes (safexec 4755, cache-preload 755, /etc/safexec.conf 644, root:root)")
    if any(n.startswith("usr/lib/npp") for n in seen):
        fail("the glibc shim must not be in the Alpine package")
    ok("no glibc libnpp_norm.so (musl cannot preload it)")
    if int(f1["size"]) != total:
        fail(f".PKGINFO size {f1['size']} != {total} bytes of files")
    ok(f".PKGINFO size = {total} bytes of files")


if __name__ == "__main__":
    main()
