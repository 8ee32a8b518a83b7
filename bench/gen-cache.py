#!/usr/bin/env python3
"""Writes a synthetic nginx FastCGI cache in nginx's real on-disk format, for the purge benchmarks.

usage: gen-cache.py DIR N [--sections S] [--vary-every K] [--host H]

N entries with keys "httpsGET<host>/s<i % S>/<i>/" (so the prefix /s7/ selects about N/S
entries), levels=1:2, each file a version-5 LP64 header (nginx-cache's header.rs layout), the
"\\nKEY: <key>\\n" line and a ~2 KB FastCGI response. Every K-th URL varies on Accept-Encoding:
its main file records Vary and two more files hold the variants nginx names
md5(md5(key) + "accept-encoding:" + value + "\\r\\n") for "gzip, deflate, br" and
"gzip, deflate, br, zstd" (normalised with ","), as a live nginx does. Prints the number of
files written. Independent of the Rust code on purpose: the benchmark also checks that both
agree on the format.
"""
import hashlib
import os
import struct
import sys
import zlib


def header(key, vary=b"", variant=b"\0" * 16, etag=b'"5f2a-1"'):
    h = bytearray(336)
    struct.pack_into("<Q", h, 0, 5)  # version
    struct.pack_into("<q", h, 8, 4102444800)  # valid_sec: 2100-01-01
    struct.pack_into("<q", h, 40, 1764806400)  # date
    struct.pack_into("<I", h, 48, zlib.crc32(key) & 0xFFFFFFFF)
    hs = 336 + 6 + len(key) + 1
    struct.pack_into("<H", h, 54, hs)
    struct.pack_into("<H", h, 56, hs + 60)
    h[58] = len(etag)
    h[59:59 + len(etag)] = etag
    h[187] = len(vary)
    h[188:188 + len(vary)] = vary
    h[316:332] = variant
    return bytes(h) + b"\nKEY: " + key + b"\n"


BODY = (b"Status: 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\nVary: Accept-Encoding\r\n\r\n"
        + b"<!doctype html><title>bench</title>" + b"x" * 1900)


def variant(main_md5, value):
    toks = [t for t in value.replace(b" ", b",").split(b",") if t]
    return hashlib.md5(main_md5 + b"accept-encoding:" + b",".join(toks) + b"\r\n").digest()


def path_of(root, hexname):
    return os.path.join(root, hexname[31], hexname[29:31], hexname)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    root, n = args[0], int(args[1])
    opts = dict(zip(args[2::2], args[3::2]))
    sections = int(opts.get("--sections", 50))
    vary_every = int(opts.get("--vary-every", 10))
    host = opts.get("--host", "bench.example").encode()
    os.makedirs(root, exist_ok=True)
    for a in "0123456789abcdef":
        for b in range(256):
            os.makedirs(os.path.join(root, a, "%02x" % b), exist_ok=True)
    files = 0
    for i in range(n):
        key = b"httpsGET" + host + b"/s%d/%d/" % (i % sections, i)
        main = hashlib.md5(key).digest()
        if vary_every and i % vary_every == 0:
            vals = [b"gzip, deflate, br", b"gzip, deflate, br, zstd"]
            with open(path_of(root, main.hex()), "wb") as f:
                f.write(header(key, b"Accept-Encoding", variant(main, b"")) + BODY)
            files += 1
            for v in vals:
                var = variant(main, v)
                with open(path_of(root, var.hex()), "wb") as f:
                    f.write(header(key, b"Accept-Encoding", var) + BODY)
                files += 1
        else:
            with open(path_of(root, main.hex()), "wb") as f:
                f.write(header(key) + BODY)
            files += 1
    print(files)


if __name__ == "__main__":
    main()
