"""TLS listeners: mutual TLS with real clients, the principal from the client certificate,
and what happens to clients that speak the wrong protocol or present a bad certificate."""

import datetime
import socket
import ssl
import struct
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from moldau import Broker
from moldau.security import certs as certmaker
from moldau.testing.security import make_certs

pytestmark = pytest.mark.integration

_API_VERSIONS = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


@pytest.fixture(scope="module")
def broker(certs, tmp_path_factory):
    config = {"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0", "ssl.client.auth": "required",
              "ssl.principal.mapping.rules": "RULE:^CN=(.*?),O=.*$/$1/,DEFAULT", **certs.server_properties()}
    with Broker(data_dir=str(tmp_path_factory.mktemp("data")), config=config) as broker:
        yield broker


def _closed_soon(sock: socket.socket, timeout_s: float = 10.0) -> bool:
    sock.settimeout(timeout_s)
    try:
        while True:
            if not sock.recv(4096):
                return True
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def test_mutual_tls_produce_consume_and_metadata_names_the_ssl_listener(broker, certs):
    ssl_port = broker.listener_port("SSL")
    settings = {"bootstrap.servers": f"127.0.0.1:{ssl_port}", "security.protocol": "SSL", **certs.librdkafka()}
    admin = AdminClient(settings)
    metadata = admin.list_topics(timeout=10)
    assert [(b.host, b.port) for b in metadata.brokers.values()] == [("127.0.0.1", ssl_port)]
    topic = f"tls-{uuid.uuid4().hex[:8]}"
    producer = Producer(settings)
    for i in range(20):
        producer.produce(topic, f"m{i}".encode())
    assert producer.flush(15) == 0
    consumer = Consumer({**settings, "group.id": "tls-group", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 20 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value())
    consumer.close()
    assert values == [f"m{i}".encode() for i in range(20)]
    principals = broker.call(lambda core: {s.listener_name: s.principal for s in core.sessions.values()})
    assert principals.get("SSL") == "User:client"  # CN=client,O=Moldau local, mapped by the rule


def test_plaintext_client_on_tls_port_is_closed(broker):
    with socket.create_connection(("127.0.0.1", broker.listener_port("SSL")), timeout=10) as sock:
        sock.sendall(_FRAME)
        assert _closed_soon(sock)


def test_tls_client_on_plaintext_port_is_closed(broker, certs):
    context = ssl.create_default_context(cafile=certs.ca)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, socket.timeout, OSError)):
            context.wrap_socket(raw, server_hostname="localhost")
    # the plaintext listener still serves
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as sock:
        sock.sendall(_FRAME)
        assert len(sock.recv(4, socket.MSG_WAITALL)) == 4


def _client_context(certs, cert_pem: bytes, key_pem: bytes, tmp_path) -> ssl.SSLContext:
    (tmp_path / "c.pem").write_bytes(cert_pem + key_pem)
    context = ssl.create_default_context(cafile=certs.ca)
    context.check_hostname = False
    context.load_cert_chain(str(tmp_path / "c.pem"))
    return context


def _handshake_refused(broker, context) -> bool:
    with socket.create_connection(("127.0.0.1", broker.listener_port("SSL")), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(_FRAME)  # TLS 1.3: the server's verdict arrives after the handshake
                return _closed_soon(tls)
        except (ssl.SSLError, ConnectionResetError):
            return True


@pytest.mark.parametrize("kind", ["untrusted", "expired", "none"])
def test_bad_client_certificates_are_refused(broker, certs, tmp_path, kind):
    from cryptography.hazmat.primitives import serialization

    now = datetime.datetime.now(datetime.timezone.utc)
    if kind == "none":
        context = ssl.create_default_context(cafile=certs.ca)
        context.check_hostname = False
    else:
        if kind == "untrusted":
            ca_key, ca_cert = certmaker.make_ca(now, 10)
            key, cert = certmaker.issue(ca_key, ca_cert, "mallory", [], now, 10, client=True)
        else:
            with open(certs.path("ca.key"), "rb") as f:
                ca_key = serialization.load_pem_private_key(f.read(), None)
            from cryptography import x509
            with open(certs.ca, "rb") as f:
                ca_cert = x509.load_pem_x509_certificate(f.read())
            key, cert = certmaker.issue(ca_key, ca_cert, "old", [], now - datetime.timedelta(days=30), 2, client=True)
        context = _client_context(certs, cert.public_bytes(serialization.Encoding.PEM),
                                  key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()), tmp_path)
    assert _handshake_refused(broker, context)
