"""redis-py authenticating as a named ACL user (AUTH user pass in RESP2,
HELLO 3 AUTH user pass in RESP3)."""
import pytest
import redis


@pytest.mark.parametrize("protocol", [2, 3])
def test_named_user(single, protocol):
    admin = single.nodes[0].client()
    assert admin.acl_setuser("alice", enabled=True, passwords=["+secret"], keys=["cache:*"], commands=["+@read", "+acl|whoami"])
    admin.set("cache:x", "1")
    admin.set("other:x", "2")
    alice = single.nodes[0].client(username="alice", password="secret", protocol=protocol)
    assert alice.acl_whoami() in ("alice", b"alice")
    assert alice.get("cache:x") == b"1"
    with pytest.raises(redis.exceptions.NoPermissionError, match="User alice has no permissions to run the 'set' command"):
        alice.set("cache:x", "2")
    with pytest.raises(redis.exceptions.NoPermissionError, match="No permissions to access a key"):
        alice.get("other:x")
    with pytest.raises(redis.exceptions.AuthenticationError):
        single.nodes[0].client(username="alice", password="wrong", protocol=protocol).ping()
    users = admin.acl_users()
    assert b"alice" in users or "alice" in users
    log = admin.acl_log()
    assert any(e["reason"] == "command" and e["object"] == "set" and e["username"] == "alice" for e in log), log
