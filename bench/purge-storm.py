#!/usr/bin/env python3
"""Storm client for bench/purge-storm.sh: REQUESTS purge requests for URLS distinct URLs from
CLIENTS concurrent connections to the purge service's Unix socket.

mode "closed": each client sends one request and waits for its answer (answer time = what one
caller waits); mode "pipelined": each client sends all its requests at once (throughput).
Prints one line: requests, seconds, requests/s, p50/p99/max answer ms, and status counts.
"""
import json
import socket
import sys
import threading
import time

sock_path, mode, clients, requests, urls_n, host = sys.argv[1:7]
clients, requests, urls_n = int(clients), int(requests), int(urls_n)
urls = [f"http://{host}/p/{i}/" for i in range(urls_n)]
lat = []
status = {}
lock = threading.Lock()


def run(c):
    ids = list(range(c, requests, clients))
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rb")
    mine = []
    counts = {}
    if mode == "pipelined":
        sent = {}

        def writer():
            for i in ids:
                sent[i] = time.perf_counter()
                s.sendall((json.dumps({"id": i, "op": "purge", "urls": [urls[(i * 7) % urls_n]], "rewarm": False}) + "\n").encode())

        t = threading.Thread(target=writer)
        t.start()
        for _ in ids:
            a = json.loads(f.readline())
            mine.append(time.perf_counter() - sent[a["id"]])
            st = a["results"][0]["status"] if a.get("ok") else "refused"
            counts[st] = counts.get(st, 0) + 1
        t.join()
    else:
        for i in ids:
            t0 = time.perf_counter()
            s.sendall((json.dumps({"id": i, "op": "purge", "urls": [urls[(i * 7) % urls_n]], "rewarm": False}) + "\n").encode())
            a = json.loads(f.readline())
            mine.append(time.perf_counter() - t0)
            st = a["results"][0]["status"] if a.get("ok") else "refused"
            counts[st] = counts.get(st, 0) + 1
    with lock:
        lat.extend(mine)
        for k, v in counts.items():
            status[k] = status.get(k, 0) + v


t0 = time.perf_counter()
threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
secs = time.perf_counter() - t0
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1000
print(f"{mode}: {len(lat)} requests in {secs:.2f} s = {len(lat) / secs:.0f} requests/s; "
      f"answer p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {lat[-1] * 1000:.1f} ms; "
      f"{json.dumps(status, sort_keys=True)}")
