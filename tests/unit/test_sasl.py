"""The SASL state machine: mechanisms, failures, re-authentication (KIP-368), OAUTHBEARER's
unsecured tokens, and what a connection may send before and after."""

import base64
import json

import pytest
import scramp
from kio.schema.errors import ErrorCode

from moldau.broker.config import BrokerConfig, ConfigFileError
from moldau.controller.security_records import scram_credential_record
from moldau.security import jaas
from moldau.security.sasl import SaslAuthenticator, SaslSettings
from moldau.security.sasl_client import SaslClient, SaslClientError

CREDS = {("alice", 2): scram_credential_record("alice", 2, "alice-secret", b"salt" * 4)}


def _authenticator(reauth_ms=0, mechanisms=("PLAIN", "SCRAM-SHA-512", "OAUTHBEARER"), oauth=None):
    settings = SaslSettings(tuple(mechanisms), {"alice": "alice-secret"}, oauth or {}, reauth_ms)
    return SaslAuthenticator(settings, lambda user, mechanism: CREDS.get((user, mechanism)), lambda n: b"\x01" * n)


def _scram_login(auth, password="alice-secret", now_ms=0):
    client = SaslClient("SCRAM-SHA-512", "alice", password)
    client.handshake_done(auth.handshake("SCRAM-SHA-512"), [])
    while not client.done:
        result = auth.authenticate(client.next_token(), now_ms)
        client.authenticate_done(result.error_code, result.error_message, result.auth_bytes, result.session_lifetime_ms)
    return client


def test_scram_round_trip_with_our_client_and_scramp():
    auth = _authenticator()
    client = _scram_login(auth)
    assert auth.principal == "User:alice" and auth.state == "complete" and client.done


def test_scram_wrong_password_fails_and_the_machine_accepts_nothing_more():
    auth = _authenticator()
    with pytest.raises(SaslClientError, match="invalid credentials"):
        _scram_login(auth, "wrong")
    assert auth.failed and not auth.allows(36) and not auth.allows(17)


def test_plain_and_unknown_mechanism():
    auth = _authenticator()
    assert auth.handshake("PLAIN") == ErrorCode.none
    assert auth.authenticate(b"\0alice\0alice-secret", 0).error_code == ErrorCode.none
    other = _authenticator()
    assert other.handshake("GSSAPI") == ErrorCode.unsupported_sasl_mechanism and other.failed
    bad = _authenticator()
    bad.handshake("PLAIN")
    result = bad.authenticate(b"bob\0alice\0alice-secret", 0)  # authzid other than the user
    assert result.error_code == ErrorCode.sasl_authentication_failed


def test_reauthentication_keeps_the_principal_and_renews_the_lifetime():
    auth = _authenticator(reauth_ms=60_000)
    client = _scram_login(auth, now_ms=1_000)
    assert client.session_lifetime_ms == 60_000 and auth.expires_ms == 61_000
    _scram_login(auth, now_ms=50_000)  # re-authentication on the same connection
    assert auth.expires_ms == 110_000 and auth.principal == "User:alice"


def _jwt(claims, alg="none") -> bytes:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    token = f"{part({'alg': alg})}.{part(claims)}."
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def test_oauthbearer_unsecured_tokens():
    auth = _authenticator(reauth_ms=3_600_000, oauth={"unsecuredValidatorRequiredScope": "kafka"})
    auth.handshake("OAUTHBEARER")
    result = auth.authenticate(_jwt({"sub": "svc", "exp": 100, "scope": "kafka other"}), 10_000)
    assert result.error_code == ErrorCode.none and auth.principal == "User:svc"
    assert result.session_lifetime_ms == 90_000  # the token's expiry comes before connections.max.reauth.ms


@pytest.mark.parametrize("claims, alg", [({"sub": "svc", "exp": 5}, "none"), ({"exp": 100}, "none"),
                                         ({"sub": "svc", "exp": 100}, "RS256"), ({"sub": "svc", "exp": 100}, "none")])
def test_oauthbearer_bad_tokens_get_an_error_challenge_then_fail(claims, alg):
    auth = _authenticator(oauth={"unsecuredValidatorRequiredScope": "kafka"} if "scope" not in claims else {})
    auth.handshake("OAUTHBEARER")
    challenge = auth.authenticate(_jwt(claims, alg), 10_000)
    assert challenge.error_code == ErrorCode.none and json.loads(challenge.auth_bytes)["status"] == "invalid_token"
    assert auth.authenticate(b"\x01", 10_000).error_code == ErrorCode.sasl_authentication_failed


def test_jaas_parsing():
    module, options = jaas.parse('org.apache.kafka.common.security.plain.PlainLoginModule required '
                                 'username="admin" password="a\\"b" user_admin="x";')
    assert module.endswith("PlainLoginModule") and options == {"username": "admin", "password": 'a"b', "user_admin": "x"}
    with pytest.raises(jaas.JaasError):
        jaas.parse("PlainLoginModule required username=admin")  # no ';'


def test_sasl_settings_refuse_what_cannot_work():
    with pytest.raises(ConfigFileError, match="GSSAPI"):
        BrokerConfig.from_properties({"listeners": "SASL_PLAINTEXT://:9092"})
    with pytest.raises(ConfigFileError, match="enables PLAIN but has no users"):
        BrokerConfig.from_properties({"listeners": "SASL_PLAINTEXT://:9092", "sasl.enabled.mechanisms": "PLAIN"})
    config = BrokerConfig.from_properties({
        "listeners": "SASL_PLAINTEXT://:9092", "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            'org.apache.kafka.common.security.plain.PlainLoginModule required user_bob="pw";',
        "connections.max.reauth.ms": "30000"})
    settings = SaslSettings.from_config(config, "SASL_PLAINTEXT")
    assert settings.plain_users == {"bob": "pw"} and settings.reauth_ms == 30_000 and config.warnings == []


def test_core_closes_connections_that_skip_or_outlive_authentication():
    import struct
    import uuid

    from moldau.broker.core import CloseConnection
    from moldau.log import MemoryFileSystem
    from moldau.testing.node import local_core

    config = BrokerConfig.from_properties({
        "listeners": "SASL_PLAINTEXT://127.0.0.1:9092", "sasl.enabled.mechanisms": "PLAIN",
        "connections.max.reauth.ms": "1000",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="pw";'})
    config.data_dir = "/data"
    core = local_core(config, MemoryFileSystem(), uuid.uuid4, 0)
    metadata = struct.pack(">hhih", 3, 1, 1, 1) + b"t" + struct.pack(">i", -1)
    session = core.connection_opened(1, "SASL_PLAINTEXT", "127.0.0.1", now_ms=0)
    assert session.frame_bytes_max == 524288 and not session.authenticated
    with pytest.raises(CloseConnection, match="not done"):
        core.handle_request(metadata, 1, "127.0.0.1", 0)
    session.sasl.handshake("PLAIN")
    session.sasl.authenticate(b"\0alice\0pw", 0)
    session.authenticated = True  # (what SaslAuthenticate's handler does)
    assert isinstance(core.handle_request(metadata, 1, "127.0.0.1", 500), bytes)
    with pytest.raises(CloseConnection, match="expired"):
        core.handle_request(metadata, 1, "127.0.0.1", 1_500)


def test_sasl_exchange_frames_through_the_core():
    """What runtime/peers.py would do with SaslExchange, without sockets."""
    import uuid

    from moldau.log import MemoryFileSystem
    from moldau.security.sasl_client import SaslExchange
    from moldau.testing.node import local_core

    config = BrokerConfig.from_properties({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092",
                                           "sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    config.data_dir = "/data"
    core = local_core(config, MemoryFileSystem(), uuid.uuid4, 0)
    core.add_scram_credentials([("broker", 2, "broker-secret")])
    core.local_node.pump()
    session = core.connection_opened(5, "SASL_PLAINTEXT", "127.0.0.1", now_ms=0)
    exchange = SaslExchange(SaslClient("SCRAM-SHA-512", "broker", "broker-secret"), "node-2")
    frame = exchange.first_frame()
    while frame is not None:
        response = core.handle_request(frame[4:], 5, "127.0.0.1", 0)
        frame = exchange.receive(response[4:])
    assert exchange.done and session.authenticated and session.principal == "User:broker"
    assert exchange.next_correlation_id == 4  # handshake + two SCRAM rounds


def test_the_nodes_own_requests_are_internal():
    """Connection ids below 0 are the node's requests to itself: authenticated even where the
    first listener wants SASL, and allowed by the authorizer."""
    import struct
    import uuid

    from moldau.log import MemoryFileSystem
    from moldau.testing.node import committed, local_core

    config = BrokerConfig.from_properties({"listeners": "SASL_PLAINTEXT://127.0.0.1:9092",
                                           "sasl.enabled.mechanisms": "SCRAM-SHA-512",
                                           "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"})
    config.data_dir = "/data"
    core = local_core(config, MemoryFileSystem(), uuid.uuid4, 0)
    committed(core).create_topic("t", 1, 1)
    metadata = struct.pack(">hhih", 3, 1, 1, 1) + b"x" + struct.pack(">i", -1)
    response = core.handle_request(metadata, -1, "127.0.0.1", 0)
    assert isinstance(response, bytes) and b"\x00\x01t" in response  # the topic is listed
