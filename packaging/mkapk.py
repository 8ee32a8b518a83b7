#!/usr/bin/env python3
"""Builds an Alpine (apk v2) package without abuild.

An apk v2 file is concatenated gzip members that together read as one tar stream:

1. (optional) signature segment: .SIGN.RSA.<key>.rsa.pub (not written here: the package is
   unsigned and installs with `apk add --allow-untrusted`);
2. control segment: a tar holding only .PKGINFO, with its end-of-archive blocks cut off so the
   stream continues into the next member;
3. data segment: a complete tar of the installed tree (end-of-archive blocks kept); each regular
   file is preceded by a PAX header `APK-TOOLS.checksum.SHA1=<hex>`, the per-file checksum apk
   records in its database.

.PKGINFO's `datahash` is the SHA-256 of the gzip'd data member, so a signature over the control
member alone covers the data too.

Usage: mkapk.py --manifest FILE --var NAME=DIR ... --version V --arch A --out FILE.apk
Manifest lines: `MODE DEST SOURCE` (octal mode, absolute install path, source path in which
`{NAME}` is replaced by the --var of that name); `#` starts a comment line.
"""

import argparse
import gzip
import hashlib
import io
import os
import sys
import tarfile

BLOCK = 512


def fail(msg):
    print(f"mkapk: {msg}", file=sys.stderr)
    sys.exit(1)


def read_manifest(path, variables):
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 3:
                fail(f"{path}:{n}: expected `MODE DEST SOURCE`")
            mode, dest, src = parts
            try:
                mode = int(mode, 8)
            except ValueError:
                fail(f"{path}:{n}: bad octal mode {mode!r}")
            if not dest.startswith("/") or ".." in dest.split("/"):
                fail(f"{path}:{n}: DEST must be an absolute normal path")
            try:
                src = src.format(**variables)
            except KeyError as e:
                fail(f"{path}:{n}: no --var {e.args[0]}")
            if not os.path.isfile(src):
                fail(f"{path}:{n}: missing source file {src}")
            entries.append((mode, dest.lstrip("/"), src))
    if not entries:
        fail(f"{path}: no files")
    return entries


def tar_info(name, mtime, mode, kind, size=0):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = mtime
    ti.size = size
    return ti


def data_tar(entries, mtime):
    """The data segment (a complete tar) and the installed size."""
    buf = io.BytesIO()
    installed = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({os.path.dirname(d) for _, d, _ in entries} - {""})
        every = set()
        for d in dirs:
            parts = d.split("/")
            every.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        for d in sorted(every):
            tar.addfile(tar_info(d, mtime, 0o755, tarfile.DIRTYPE))
        for mode, dest, src in sorted(entries, key=lambda e: e[1]):
            with open(src, "rb") as f:
                content = f.read()
            ti = tar_info(dest, mtime, mode, tarfile.REGTYPE, len(content))
            ti.pax_headers = {"APK-TOOLS.checksum.SHA1": hashlib.sha1(content).hexdigest()}
            tar.addfile(ti, io.BytesIO(content))
            installed += len(content)
    return buf.getvalue(), installed


def control_segment(pkginfo, mtime):
    """The control segment: a tar of .PKGINFO without its end-of-archive blocks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        ti = tar_info(".PKGINFO", mtime, 0o644, tarfile.REGTYPE, len(pkginfo))
        tar.addfile(ti, io.BytesIO(pkginfo))
    raw = buf.getvalue()
    # header block + data rounded up to whole blocks; tarfile pads the rest with zeros.
    keep = BLOCK + (len(pkginfo) + BLOCK - 1) // BLOCK * BLOCK
    if any(raw[keep:]):
        fail("internal: unexpected bytes after the .PKGINFO member")
    return raw[:keep]


def gz(data, mtime):
    return gzip.compress(data, compresslevel=9, mtime=mtime)


def main():
    ap = argparse.ArgumentParser(description="Build an unsigned apk v2 package.")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--var", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--name", required=True)
    ap.add_argument("--version", required=True, help="upstream version; -r0 is appended")
    ap.add_argument("--arch", required=True)
    ap.add_argument("--description", required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("--license", required=True)
    ap.add_argument("--packager", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    variables = {}
    for v in a.var:
        name, sep, value = v.partition("=")
        if not sep:
            fail(f"--var {v!r}: expected NAME=DIR")
        variables[name] = value
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0)
    entries = read_manifest(a.manifest, variables)

    data, installed = data_tar(entries, mtime)
    data_gz = gz(data, mtime)
    fields = [
        ("pkgname", a.name),
        ("pkgver", f"{a.version}-r0"),
        ("pkgdesc", a.description),
        ("url", a.url),
        ("builddate", str(mtime)),
        ("packager", a.packager),
        ("size", str(installed)),
        ("arch", a.arch),
        ("origin", a.name),
        ("license", a.license),
        ("datahash", hashlib.sha256(data_gz).hexdigest()),
    ]
    for key, value in fields:
        if "\n" in value or not value:
            fail(f".PKGINFO {key}: empty or multi-line value")
    pkginfo = "# Generated by packaging/mkapk.py\n" + "".join(
        f"{k} = {v}\n" for k, v in fields
    )
    control_gz = gz(control_segment(pkginfo.encode(), mtime), mtime)

    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(control_gz)
        f.write(data_gz)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
