"""redis-py against real raftcache nodes: RESP2 and RESP3, pipelines, errors."""
import pytest
import redis


@pytest.mark.parametrize("protocol", [2, 3])
def test_strings_and_keys(single, protocol):
    r = single.nodes[0].client(protocol=protocol, decode_responses=True)
    assert r.ping()
    assert r.set("k", "v") is True
    assert r.get("k") == "v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("k", "w", xx=True, get=True) == "v"
    assert r.incrby("n", 5) == 5
    assert r.decr("n") == 4
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "c") == ["1", "2", None]
    assert r.msetnx({"a": "x", "zz": "y"}) is False
    assert r.getdel("a") == "1"
    assert r.exists("a", "b") == 1
    assert r.type("b") == "string"
    assert r.strlen("k") == 1
    assert r.expire("b", 100) is True
    assert 0 < r.ttl("b") <= 100
    assert r.persist("b") is True
    assert r.dbsize() >= 3
    assert sorted(r.scan_iter(match="*")) == sorted(r.keys("*"))
    with pytest.raises(redis.ResponseError, match="^value is not an integer or out of range$"):
        r.incr("k")


def test_pipeline_and_transactions_off(single):
    r = single.nodes[0].client(decode_responses=True)
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.incr("ctr")
    p.get("ctr")
    out = p.execute()
    assert out[:500] == list(range(1, 501))
    assert out[-1] == "500"


def test_client_setinfo_and_hello(single):
    # redis-py sends CLIENT SETINFO on connect; RESP3 uses HELLO 3.
    r = single.nodes[0].client(protocol=3, decode_responses=True)
    r.client_setname("tester")
    assert r.client_getname() == "tester"
    assert any(c["name"] == "tester" for c in r.client_list())
    info = r.info()
    assert info["cluster_enabled"] == 1
    assert "redis_version" in info


def test_redis_cluster_client(trio):
    """RedisCluster discovers the topology from CLUSTER SLOTS and follows MOVED."""
    from redis.cluster import RedisCluster, ClusterNode

    follower = next(n for n in trio.nodes if n.role() != "master")
    rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", follower.port)], decode_responses=True)
    for i in range(100):
        assert rc.set(f"pk{i}", i) is True
    assert [rc.get(f"pk{i}") for i in range(100)] == [str(i) for i in range(100)]
    # Multi-key on one slot, and a pipeline.
    assert rc.mset_nonatomic({"{u}a": "1", "{u}b": "2"}) == [True]
    assert rc.mget_nonatomic("{u}a", "{u}b") == ["1", "2"]
    p = rc.pipeline()
    for i in range(50):
        p.incr("{u}ctr")
    assert p.execute()[-1] == 50
    assert rc.get_primaries()[0].port == trio.leader().port


def test_tls_client(tls_single):
    """ssl=True with the test CA and a client certificate; none is refused."""
    node = tls_single.nodes[0]
    r = node.tls_client(decode_responses=True)
    assert r.ping()
    assert r.set("tk", "tv") is True
    assert r.get("tk") == "tv"
    p = r.pipeline(transaction=False)
    for i in range(300):
        p.incr("tctr")
    assert p.execute()[-1] == 300
    # The same data through the plain port.
    assert node.client(decode_responses=True).get("tctr") == "300"
    # tls-auth-clients yes (the default): no client certificate, no service.
    with pytest.raises(redis.ConnectionError):
        node.tls_client(client_cert=False).ping()
    # The node keeps serving TLS clients.
    assert r.get("tk") == "tv"


def test_redis_cluster_client_over_tls(tls_trio):
    """With tls-cluster yes, RedisCluster(ssl=True) follows CLUSTER SLOTS and MOVED over TLS."""
    from redis.cluster import RedisCluster, ClusterNode

    certs = tls_trio.certs
    follower = next(n for n in tls_trio.nodes if n.role() != "master")
    rc = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", follower.tls_port)],
        ssl=True, ssl_ca_certs=certs["ca"], ssl_certfile=certs["client_crt"], ssl_keyfile=certs["client_key"],
        decode_responses=True,
    )
    for i in range(50):
        assert rc.set(f"tpk{i}", i) is True
    assert [rc.get(f"tpk{i}") for i in range(50)] == [str(i) for i in range(50)]
    assert rc.get_primaries()[0].port == tls_trio.leader().tls_port
