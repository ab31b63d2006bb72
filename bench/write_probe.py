#!/usr/bin/env python3
"""Raw-socket write prober for bench/failover.sh (stdlib only).

  write_probe.py failover PID PORT...   kill -9 PID, then keep one SET in
      flight on each surviving PORT (re-sent as soon as a reply that is not
      +OK arrives, reconnecting on errors) until the first +OK; prints
      "<ms from kill to first +OK> <port that answered> <non-OK replies>
      <reply kinds, e.g. -MOVEDx12>"
  write_probe.py waitget PORT KEY VALUE   poll GET until it returns VALUE;
      prints the wall clock in ns (restart time in snapshot_latency.sh)
  write_probe.py overhead PORT [N]      mean/p99 round trip (us) of one
      SET on an open socket (the probe's resolution, minus the server's time)
"""
import os
import select
import signal
import socket
import sys
import time

KEY = b"failover:probe"


def cmd(i):
    v = str(i).encode()
    return b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(KEY), KEY, len(v), v)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=0.2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def failover(pid, ports, deadline_s=30.0):
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    socks = {}  # port -> socket
    others = 0
    kinds = {}  # first word of each non-OK reply -> count
    i = 0
    while time.monotonic() - t0 < deadline_s:
        for p in ports:
            if p not in socks:
                try:
                    socks[p] = connect(p)
                    i += 1
                    socks[p].send(cmd(i))
                except OSError:
                    socks.pop(p, None)
        if not socks:
            time.sleep(0.001)
            continue
        ready, _, _ = select.select(list(socks.values()), [], [], 0.05)
        for s in ready:
            p = next(k for k, v in socks.items() if v is s)
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                s.close()
                socks.pop(p)
                continue
            if data.startswith(b"+OK"):
                ms = (time.monotonic() - t0) * 1000
                k = ",".join(f"{w}x{c}" for w, c in sorted(kinds.items())) or "-"
                print(f"{ms:.1f} {p} {others} {k}")
                return 0
            others += 1
            w = data.split(b" ", 1)[0].split(b"\r", 1)[0].decode(errors="replace")
            kinds[w] = kinds.get(w, 0) + 1
            time.sleep(0.001)  # ~1 ms between retries on a node that said no
            try:
                i += 1
                s.send(cmd(i))
            except OSError:
                s.close()
                socks.pop(p)
    print(f"timeout - {others}")
    return 1


def waitget(port, key, value, deadline_s=120.0):
    """Poll GET key (new connection on every failure, 2 ms apart) until it
    answers value; print the wall clock (ns) at that moment."""
    key, value = key.encode(), value.encode()
    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
    want = b"$%d\r\n%s\r\n" % (len(value), value)
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                while True:
                    s.sendall(req)
                    if s.recv(4096) == want:
                        print(time.time_ns())
                        return 0
                    time.sleep(0.002)
        except OSError:
            time.sleep(0.002)
    return 1


def overhead(port, n=2000):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        s.sendall(cmd(i))
        s.recv(4096)
        lat.append((time.perf_counter() - t) * 1e6)
    lat.sort()
    print(f"{sum(lat) / n:.0f} {lat[int(n * 0.99)]:.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "failover":
        sys.exit(failover(int(sys.argv[2]), [int(p) for p in sys.argv[3:]]))
    if sys.argv[1] == "waitget":
        sys.exit(waitget(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    overhead(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2000)
