#!/usr/bin/env python3
"""A visitor for the benchmarks: requests uncached pages one after another on one keep-alive
connection (like a browser tab) until a stop file appears or a duration passes, then prints
"count p50_ms p95_ms" of the response times. Each URL carries a unique ?nocache= value, so
nginx bypasses the cache and PHP renders every request.

usage: visitor.py URL_BASE (--seconds N | --stop-file PATH) [--pause-ms N] [--urls FILE]
With --urls, the pages come from FILE (absolute URLs, one a line), taken in turn.
"""
import http.client
import os
import sys
import time
import urllib.parse


def main():
    base = sys.argv[1]
    seconds = None
    paths = None
    stop_file = None
    pause = 0.05
    args = sys.argv[2:]
    while args:
        flag, value = args[0], args[1]
        args = args[2:]
        if flag == "--seconds":
            seconds = float(value)
        elif flag == "--stop-file":
            stop_file = value
        elif flag == "--pause-ms":
            pause = float(value) / 1000
        elif flag == "--urls":
            paths = []
            for line in open(value):
                p = urllib.parse.urlsplit(line.strip())
                if p.path:
                    paths.append(p.path + ("?" + p.query if p.query else ""))
    u = urllib.parse.urlsplit(base)
    if u.hostname not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("visitor.py: loopback only")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    samples = []
    start = time.monotonic()
    i = 0
    while True:
        if seconds is not None and time.monotonic() - start >= seconds:
            break
        if stop_file is not None and os.path.exists(stop_file):
            break
        i += 1
        if paths:
            page = paths[i % len(paths)]
        else:
            page = "/p/%d/" % (i % 997)
        sep = "&" if "?" in page else "?"
        path = "%s%snocache=%d-%d" % (page, sep, os.getpid(), i)
        t0 = time.monotonic()
        conn.request("GET", path, headers={"User-Agent": "bench-visitor", "Accept-Encoding": "gzip"})
        r = conn.getresponse()
        r.read()
        samples.append((time.monotonic() - t0) * 1000)
        if r.status != 200 or r.getheader("X-FastCGI-Cache") not in ("BYPASS", None):
            sys.exit("visitor.py: unexpected %d %s" % (r.status, r.getheader("X-FastCGI-Cache")))
        time.sleep(pause)
    samples.sort()
    if not samples:
        print("0 0 0")
        return
    p = lambda q: samples[min(len(samples) - 1, int(round(q * (len(samples) - 1))))]
    print("%d %.2f %.2f" % (len(samples), p(0.50), p(0.95)))


if __name__ == "__main__":
    main()
