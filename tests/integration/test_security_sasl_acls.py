"""SASL_SSL with SCRAM-SHA-512 and ACLs, end to end: real clients authenticate, and every
denial of the security issue gets Kafka's error, sees no data and leaves other clients alone."""

import socket
import struct
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_authenticate.v2.response import SaslAuthenticateResponse
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from kio.schema.sasl_handshake.v1.response import SaslHandshakeResponse
from kio.serial import entity_reader

from moldau import Broker
from tests.integration.rawclient import encode, frame

pytestmark = pytest.mark.integration
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("data")), security="SASL_PLAINTEXT", users=USERS,
                authorizer=True, super_users=["admin"],
                config={"connection.failed.authentication.delay.ms": "500"}) as broker:
        admin = AdminClient(broker.client_config("admin"))
        for future in admin.create_topics([NewTopic("orders", 1, 1), NewTopic("orders-secret", 1, 1)]).values():
            future.result(15)
        _acls(admin, [
            # alice reads and writes orders*, except orders-secret (a prefixed DENY beats the literal ALLOW)
            (ResourceType.TOPIC, "orders", ResourcePatternType.PREFIXED, "User:alice", AclOperation.ALL, AclPermissionType.ALLOW),
            (ResourceType.TOPIC, "orders-secret", ResourcePatternType.LITERAL, "User:alice", AclOperation.READ, AclPermissionType.ALLOW),
            (ResourceType.TOPIC, "orders-s", ResourcePatternType.PREFIXED, "User:alice", AclOperation.READ, AclPermissionType.DENY),
            (ResourceType.GROUP, "alice-", ResourcePatternType.PREFIXED, "User:alice", AclOperation.READ, AclPermissionType.ALLOW),
            # bob may only read orders, and see (DESCRIBE) but not use (READ) his group
            (ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob", AclOperation.READ, AclPermissionType.ALLOW),
            (ResourceType.GROUP, "bobs-group", ResourcePatternType.LITERAL, "User:bob", AclOperation.DESCRIBE, AclPermissionType.ALLOW),
        ])
        producer = Producer(broker.client_config("admin"))
        for topic in ("orders", "orders-secret"):
            for i in range(5):
                producer.produce(topic, f"{topic}-{i}".encode())
        assert producer.flush(15) == 0
        yield broker


def _acls(admin, entries) -> None:
    bindings = [AclBinding(rt, name, pt, principal, "*", op, perm) for rt, name, pt, principal, op, perm in entries]
    for future in admin.create_acls(bindings).values():
        future.result(15)


def _consume(settings: dict, topic: str, group: str, count: int, timeout_s: float = 20, stop_on_error: bool = True):
    consumer = Consumer({**settings, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values, errors = [], []
    deadline = time.monotonic() + timeout_s
    while len(values) < count and time.monotonic() < deadline and not (errors and stop_on_error):
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            errors.append(message.error())
        else:
            values.append(message.value())
    return consumer, values, errors


def test_scram_user_reads_what_acls_allow_and_commits_in_its_group(broker):
    consumer, values, errors = _consume(broker.client_config("alice"), "orders", "alice-g", 5)
    try:
        assert errors == [] and values == [f"orders-{i}".encode() for i in range(5)]
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()


def test_prefixed_deny_overrides_literal_allow(broker):
    consumer, values, errors = _consume(broker.client_config("alice"), "orders-secret", "alice-g2", 1, 10)
    consumer.close()
    assert values == [] and errors and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_user_without_write_cannot_produce(broker):
    failures = []
    producer = Producer({**broker.client_config("bob"), "enable.idempotence": False,
                         "message.timeout.ms": 10_000})
    producer.produce("orders", b"from bob", on_delivery=lambda err, msg: failures.append(err))
    producer.flush(15)
    assert failures and failures[0] is not None and failures[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    _c, values, _e = _consume(broker.client_config("admin"), "orders", "admin-check", 6, 5)
    assert b"from bob" not in values  # nothing was written


def test_user_without_read_on_group_cannot_commit(broker):
    consumer, values, errors = _consume(broker.client_config("bob"), "orders", "bobs-group", 5, stop_on_error=False)
    try:
        assert len(values) == 5  # reading the topic is allowed...
        with pytest.raises(KafkaException) as failure:  # ...committing in a group it may not read is not
            consumer.commit(offsets=[TopicPartition("orders", 0, 5)], asynchronous=False)
        assert failure.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    finally:
        consumer.close()


def test_non_super_user_cannot_alter_acls_and_metadata_hides_topics(broker):
    admin = AdminClient(broker.client_config("bob"))
    binding = AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob", "*",
                         AclOperation.WRITE, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as failure:
        admin.create_acls([binding])[binding].result(15)
    assert failure.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert sorted(admin.list_topics(timeout=10).topics) == ["orders"]  # orders-secret is not his to see


# --- the SASL exchange, byte by byte -------------------------------------------------------------
def _request(sock, api_key, version, request, response_cls, flexible_header):
    sock.sendall(frame(api_key, version, encode(request), type(request).__flexible__))
    size = struct.unpack(">i", _recv(sock, 4))[0]
    payload = _recv(sock, size)
    return entity_reader(response_cls)(payload, 4 + (1 if flexible_header else 0))[0]


def _recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _closed_within(sock, seconds: float) -> float:
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(1024):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    return time.monotonic() - started


def test_wrong_password_fails_and_closes_after_the_delay(broker):
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        response = _request(sock, 17, 1, SaslHandshakeRequest(mechanism="PLAIN"), SaslHandshakeResponse, False)
        assert response.error_code.value == 0 and "SCRAM-SHA-512" in response.mechanisms
        response = _request(sock, 36, 2, SaslAuthenticateRequest(auth_bytes=b"\0alice\0wrong"),
                            SaslAuthenticateResponse, True)
        assert response.error_code.value == 58  # SASL_AUTHENTICATION_FAILED
        waited = _closed_within(sock, 10)
        assert 0.3 < waited < 5, waited  # connection.failed.authentication.delay.ms=500


def test_unknown_mechanism_is_refused(broker):
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        response = _request(sock, 17, 1, SaslHandshakeRequest(mechanism="GSSAPI"), SaslHandshakeResponse, False)
        assert response.error_code.value == 33  # UNSUPPORTED_SASL_MECHANISM
        assert _closed_within(sock, 10) < 5


def test_requests_before_authentication_and_oversized_frames_close_the_connection(broker):
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 600_000) + b"\0" * 1024)  # over sasl.server.max.receive.size
        assert _closed_within(sock, 10) < 5
    metadata = struct.pack(">hhih", 3, 1, 1, 4) + b"test" + struct.pack(">i", -1)
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(metadata)) + metadata)  # Metadata before SASL
        assert _closed_within(sock, 10) < 5
    # none of it disturbed anyone else
    assert AdminClient(broker.client_config("alice")).list_topics(timeout=10).topics


def test_oauthbearer_unsecured_tokens_from_librdkafka(tmp_path):
    config = {"sasl.enabled.mechanisms": "PLAIN,OAUTHBEARER", "connections.max.reauth.ms": "60000",
              "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config":
                  "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                  'unsecuredValidatorRequiredScope="kafka";'}
    with Broker(data_dir=str(tmp_path / "d"), security="SASL_PLAINTEXT", users={"admin": "x"}, config=config) as b:
        client = {"bootstrap.servers": b.bootstrap_servers, "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": True,
                  "sasl.oauthbearer.config": "principal=svc scope=kafka"}
        admin = AdminClient(client)  # kept: its connections stay open while the broker is asked
        sessions = []
        deadline = time.monotonic() + 15
        while ("User:svc", True) not in sessions and time.monotonic() < deadline:
            assert admin.list_topics(timeout=10).brokers  # (librdkafka may reconnect between calls)
            sessions = b.call(lambda core: [(s.principal, s.sasl.expires_ms is not None)
                                            for s in core.sessions.values() if s.authenticated and s.sasl is not None])
        assert ("User:svc", True) in sessions  # a session lifetime was given (KIP-368)


def test_clients_reauthenticate_when_the_session_lifetime_ends(tmp_path):
    """KIP-368: with connections.max.reauth.ms=2000 a producer keeps producing for 7 s on
    connections that re-authenticate (their expiry moves on) instead of being dropped."""
    with Broker(data_dir=str(tmp_path / "d"), security="SASL_PLAINTEXT", users={"alice": "pw"},
                config={"connections.max.reauth.ms": "2000"}) as b:
        errors, acked = [], [0]
        producer = Producer({**b.client_config("alice"), "error_cb": lambda e: errors.append(str(e))})
        started_ms = time.time() * 1000
        while time.time() * 1000 - started_ms < 7000:
            producer.produce("reauth", b"x", on_delivery=lambda e, m: acked.__setitem__(0, acked[0] + (e is None)))
            producer.poll(0.05)
        assert producer.flush(15) == 0
        expiries = b.call(lambda core: [s.sasl.expires_ms for s in core.sessions.values() if s.authenticated and s.sasl is not None])
        assert acked[0] > 50 and not [e for e in errors if "uthenticat" in e]
        assert expiries and max(expiries) > started_ms + 4000  # re-authenticated at least twice
