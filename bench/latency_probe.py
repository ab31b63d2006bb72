#!/usr/bin/env python3
"""Per-request SET latency recorder for bench/snapshot_latency.sh (stdlib only).

  latency_probe.py record PORT SECONDS OUT     one connection, one SET in
      flight (like redis-benchmark -c 1 -P 1), overwriting random existing
      keys (key:%012d < KEYSPACE env, default 100000000) with 32-byte
      values; writes "<wall start s> <latency us>" per request to OUT
  latency_probe.py report OUT T_TRIGGER T_BUILT   Markdown rows: before the
      trigger, trigger -> snapshot built, built -> +2 s, and all requests
"""
import os
import random
import socket
import sys
import time


def record(port, seconds, out):
    space = int(os.environ.get("KEYSPACE", "100000000"))
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    val = b"v" * 32
    rows = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        key = b"key:%012d" % random.randrange(space)
        req = b"*3\r\n$3\r\nSET\r\n$16\r\n%s\r\n$32\r\n%s\r\n" % (key, val)
        w = time.time()
        t = time.perf_counter()
        s.sendall(req)
        buf = s.recv(64)
        while not buf.endswith(b"\r\n"):
            buf += s.recv(64)
        rows.append((w, (time.perf_counter() - t) * 1e6))
        if not buf.startswith(b"+OK"):
            sys.stderr.write(f"unexpected reply {buf!r}\n")
    with open(out, "w") as f:
        for w, us in rows:
            f.write(f"{w:.6f} {us:.0f}\n")


def stats(lat):
    if not lat:
        return "| 0 | - | - | - | - |"
    lat = sorted(lat)
    n = len(lat)
    pct = lambda q: lat[min(n - 1, int(q * n))] / 1000
    return f"| {n} | {pct(0.5):.2f} | {pct(0.99):.2f} | {pct(0.999):.2f} | {lat[-1] / 1000:.2f} |"


def report(out, t_trig, t_built):
    rows = [tuple(map(float, line.split())) for line in open(out)]
    # a request belongs to a window if it was in flight at any point of it
    def within(a, b):
        return [us for w, us in rows if w < b and w + us / 1e6 > a]
    first = rows[0][0]
    last = rows[-1][0] + rows[-1][1] / 1e6
    print("| window | requests | p50 ms | p99 ms | p99.9 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| before the snapshot ({t_trig - first:.1f} s) {stats(within(first, t_trig))}")
    print(f"| RAFTCACHE SNAPSHOT -> `snapshot built` ({(t_built - t_trig) * 1000:.0f} ms) {stats(within(t_trig, t_built))}")
    print(f"| after it is built (2 s) {stats(within(t_built, t_built + 2))}")
    print(f"| whole run ({last - first:.1f} s) {stats([us for _, us in rows])}")


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
    else:
        report(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
