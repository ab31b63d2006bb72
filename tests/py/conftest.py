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


def make_certs(root):
    """A CA, a server certificate for 127.0.0.1/localhost and a client
    certificate signed by it, made by openssl in `root`."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=root, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=test CA")
    exts = {
        "server": "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        "client": "extendedKeyUsage=clientAuth\n",
    }
    for name, ext in exts.items():
        with open(os.path.join(root, f"{name}.ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n" + ext)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")
    return {k: os.path.join(root, f) for k, f in [
        ("ca", "ca.crt"), ("server_crt", "server.crt"), ("server_key", "server.key"), ("client_crt", "client.crt"), ("client_key", "client.key")]}


class Node:
    def __init__(self, node_id, root, join=None, certs=None, tls_cluster=False):
        self.id = node_id
        self.port = free_port()
        self.bus_port = free_port()
        self.dir = os.path.join(root, f"node{node_id}")
        self.log = os.path.join(root, f"node{node_id}.log")
        self.join = join
        self.proc = None
        # With certs: a TLS port too (tls-auth-clients yes, the test CA).
        self.certs = certs
        self.tls_port = free_port() if certs else None
        self.tls_cluster = tls_cluster

    def start(self):
        args = [BIN, "--node-id", str(self.id), "--port", str(self.port), "--bus-port", str(self.bus_port), "--metrics-port", "0", "--dir", self.dir]
        if self.join:
            args += ["--join", self.join]
        else:
            args += ["--cluster-bootstrap", "yes"]  # the seed founds the cluster
        if self.certs:
            args += ["--tls-port", str(self.tls_port), "--tls-cert-file", self.certs["server_crt"], "--tls-key-file", self.certs["server_key"], "--tls-ca-cert-file", self.certs["ca"]]
            args += ["--tls-cluster", "yes" if self.tls_cluster else "no"]
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

    def tls_client(self, client_cert=True, **kw):
        """A TLS connection to tls-port, trusting the test CA."""
        if client_cert:
            kw.update(ssl_certfile=self.certs["client_crt"], ssl_keyfile=self.certs["client_key"])
        return redis.Redis(host="127.0.0.1", port=self.tls_port, socket_timeout=10, ssl=True, ssl_ca_certs=self.certs["ca"], **kw)

    def role(self):
        return self.client().info("replication")["role"]


class Cluster:
    def __init__(self, n, tls=False, tls_cluster=False):
        self.tmp = tempfile.TemporaryDirectory()
        self.certs = make_certs(self.tmp.name) if tls else None
        self.nodes = []
        for i in range(n):
            join = None if i == 0 else f"127.0.0.1:{self.nodes[0].port}@{self.nodes[0].bus_port}"
            node = Node(i + 1, self.tmp.name, join=join, certs=self.certs, tls_cluster=tls_cluster)
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


@pytest.fixture
def tls_single():
    """One node with a TLS port (client certificates required)."""
    c = Cluster(1, tls=True)
    yield c
    c.stop()


@pytest.fixture
def tls_trio():
    """Three nodes with tls-cluster yes: MOVED and CLUSTER SLOTS name TLS ports."""
    c = Cluster(3, tls=True, tls_cluster=True)
    yield c
    c.stop()
