"""Start real raftcache processes for the redis-py tests."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

BIN = os.environ.get("RAFTCACHE_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "debug", "raftcache"))


# Sockets holding the ports free_port() handed out, for the whole session.
_RESERVED = []


def free_port():
    """A loopback port that stays reserved: bound (SO_REUSEADDR, never
    listening) for the session, so no other bind(0) or outgoing connection
    takes it before the node binds it (its listener sets SO_REUSEADDR too)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    _RESERVED.append(s)
    return s.getsockname()[1]


def wait_for(what, fn, timeout=30.0):
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception:
            pass
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Node:
    def __init__(self, node_id, root, join=None):
        self.id = node_id
        self.port = free_port()
        self.bus_port = free_port()
        self.dir = os.path.join(root, f"node{node_id}")
        self.log = os.path.join(root, f"node{node_id}.log")
        self.join = join
        self.proc = None

    def start(self):
        args = [BIN, "--node-id", str(self.id), "--port", str(self.port), "--bus-port", str(self.bus_port), "--dir", self.dir]
        if self.join:
            args += ["--join", self.join]
        else:
            args += ["--cluster-bootstrap", "yes"]  # the seed founds the cluster
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        wait_for(f"node {self.id} up", self._accepting)

    def _accepting(self):
        if self.proc.poll() is not None:
            with open(self.log, errors="replace") as f:
                tail = "".join(f.readlines()[-20:])
            raise SystemExit(f"node {self.id} exited with {self.proc.returncode}:\n{tail}")
        socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        return True

    def kill9(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kw)

    def role(self):
        return self.client().info("replication")["role"]


class Cluster:
    def __init__(self, n):
        self.tmp = tempfile.TemporaryDirectory()
        self.nodes = []
        for i in range(n):
            node = Node(i + 1, self.tmp.name, join=None if i == 0 else f"127.0.0.1:{self.nodes[0].port}@{self.nodes[0].bus_port}")
            self.nodes.append(node)
            node.start()
            if i == 0:
                wait_for("bootstrap leader", lambda: node.role() == "master")
        if n > 1:
            wait_for(f"{n} voters", lambda: self.leader().client().cluster("info")["cluster_size"] == str(n), timeout=60)

    def leader(self):
        return wait_for("a leader", lambda: next((n for n in self.nodes if n.proc and n.role() == "master"), None))

    def stop(self):
        for n in self.nodes:
            n.kill9()
        self.tmp.cleanup()


@pytest.fixture
def single():
    c = Cluster(1)
    yield c
    c.stop()


@pytest.fixture
def trio():
    c = Cluster(3)
    yield c
    c.stop()
