"""Quota resolution in Kafka's order, the throttle a meter asks for, and connection limits."""

from moldau.security.quotas import ConnectionLimits, QuotaManager, quota_entity_error, resolve

Q = "producer_byte_rate"


def test_resolution_follows_kafkas_precedence():
    quotas = {
        (("client-id", None),): {Q: 8.0},
        (("client-id", "app"),): {Q: 7.0},
        (("user", None),): {Q: 6.0},
        (("user", None), ("client-id", None)): {Q: 5.0},
        (("user", None), ("client-id", "app")): {Q: 4.0},
        (("user", "alice"),): {Q: 3.0},
        (("user", "alice"), ("client-id", None)): {Q: 2.0},
        (("user", "alice"), ("client-id", "app")): {Q: 1.0},
    }
    expected = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    for bound in expected:
        assert resolve(quotas, "alice", "app", Q)[0] == bound
        del quotas[next(k for k, v in quotas.items() if v[Q] == bound)]
    assert resolve(quotas, "alice", "app", Q) is None


def test_a_user_quota_is_shared_by_its_clients_a_default_one_is_not():
    assert resolve({(("user", "alice"),): {Q: 1.0}}, "alice", "a", Q)[1] == ("alice", "")
    assert resolve({(("client-id", None),): {Q: 1.0}}, "alice", "a", Q)[1] == ("", "a")


def test_throttle_time_repays_the_debt_at_the_quota_rate():
    quotas = {(("client-id", "c"),): {Q: 1000.0}}  # 1000 B/s, 1 s of burst
    manager = QuotaManager(Q, samples=11, window_ms=1000)
    assert manager.throttle_ms(quotas, "u", "c", 1000, now_ms=0) == 0  # the burst
    assert manager.throttle_ms(quotas, "u", "c", 500, now_ms=0) == 500  # 500 B in debt: 0.5 s
    assert manager.throttle_ms(quotas, "u", "c", 0, now_ms=500) == 0  # repaid
    assert manager.throttle_ms(quotas, "u", "c", 10**9, now_ms=500, record=False) == 11_000  # capped
    assert manager.throttle_ms(quotas, "u", "other", 10**9, now_ms=500) == 0  # no quota for it


def test_quota_validation():
    assert quota_entity_error({"user": "a"}, Q, 10, False) is None
    assert "whole number" in quota_entity_error({"user": "a"}, Q, 1.5, False)
    assert "ip" in quota_entity_error({"ip": "1.2.3.4", "user": "a"}, "connection_creation_rate", 1, False)
    assert "Invalid configuration key" in quota_entity_error({"ip": None}, Q, 1, False)
    assert "Invalid quota entity types" in quota_entity_error({"group": "g"}, Q, 1, False)


def test_connection_limits():
    limits = ConnectionLimits.from_security({"max.connections.per.ip": "2",
                                             "max.connections.per.ip.overrides": "10.0.0.9:0"})
    assert limits.admit("1.1.1.1", 0) is None and limits.admit("1.1.1.1", 0) is None
    assert "max.connections.per.ip (2)" in limits.admit("1.1.1.1", 0)
    assert limits.admit("2.2.2.2", 0) is None  # another address is not affected
    limits.closed("1.1.1.1")
    assert limits.admit("1.1.1.1", 0) is None
    assert limits.admit("10.0.0.9", 0) is not None  # override: none at all


def test_per_listener_connection_limits():
    limits = ConnectionLimits.from_security({"listener.name.external.max.connections": "1"})
    assert limits.admit("1.1.1.1", 0, listener="EXTERNAL") is None
    assert "listener.name.external.max.connections (1)" in limits.admit("2.2.2.2", 0, listener="EXTERNAL")
    assert limits.admit("2.2.2.2", 0, listener="INTERNAL") is None  # other listeners are not limited
    limits.closed("1.1.1.1", "EXTERNAL")
    assert limits.admit("2.2.2.2", 0, listener="EXTERNAL") is None


def test_security_records_survive_the_metadata_log_encoding():
    import uuid

    from moldau.controller import records as r
    from moldau.controller.image import MetadataImage

    written = [
        r.UserScramCredentialRecord(name="alice", mechanism=2, salt=b"\x00s", stored_key=b"k", server_key=b"v",
                                    iterations=4096),
        r.AccessControlEntryRecord(id=uuid.UUID(int=7), resource_type=2, resource_name="t", pattern_type=4,
                                   principal="User:alice", host="*", operation=3, permission_type=3),
        r.ClientQuotaRecord(entity=(r.EntityData(entity_type="user", entity_name="alice"),
                                    r.EntityData(entity_type="client-id", entity_name=None)), key=Q, value=1024.0),
    ]
    image = MetadataImage()
    for record in written:
        replayed = r.decode(r.encode(record))
        assert replayed == record
        image.apply(replayed)
    assert image.scram_credentials[("alice", 2)].salt == b"\x00s"
    assert str(uuid.UUID(int=7)) in image.acls
    assert image.client_quotas == {(("user", "alice"), ("client-id", None)): {Q: 1024.0}}
    image.apply(r.decode(r.encode(r.RemoveAccessControlEntryRecord(id=uuid.UUID(int=7)))))
    assert image.acls == {}
