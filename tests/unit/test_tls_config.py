"""Key material as Kafka 4.1 takes it: PEM files, inline PEM, PKCS12; clear errors otherwise."""

import ssl

import pytest

from moldau.broker.config import BrokerConfig
from moldau.runtime import tls
from moldau.testing.security import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def _context(props):
    config = BrokerConfig.from_properties({"listeners": "SSL://127.0.0.1:0", **props})
    return tls.server_context(config, config.listeners[0])


def test_pem_file_keystore(certs):
    assert isinstance(_context(certs.server_properties()), ssl.SSLContext)


def test_pkcs12_keystore_and_required_client_auth(certs):
    context = _context({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": certs.path("server.p12"),
                        "ssl.keystore.password": certs.password, "ssl.truststore.type": "PEM",
                        "ssl.truststore.location": certs.ca, "ssl.client.auth": "required"})
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_inline_pem_with_unencrypted_key(certs):
    chain = open(certs.path("client.crt")).read() + open(certs.ca).read()
    context = _context({"ssl.keystore.type": "PEM", "ssl.keystore.certificate.chain": chain,
                        "ssl.keystore.key": open(certs.path("client.key")).read(),
                        "ssl.truststore.type": "PEM", "ssl.truststore.certificates": open(certs.ca).read(),
                        "ssl.client.auth": "requested", "ssl.enabled.protocols": "TLSv1.3"})
    assert context.verify_mode == ssl.CERT_OPTIONAL and context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_sasl_ssl_listener_ignores_unprefixed_client_auth(certs):
    config = BrokerConfig.from_properties({"listeners": "SASL_SSL://127.0.0.1:0", "ssl.client.auth": "required",
                                           "sasl.enabled.mechanisms": "SCRAM-SHA-256",
                                           **certs.server_properties()})
    assert tls.server_context(config, config.listeners[0]).verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("props, message", [
    ({"ssl.keystore.location": "/x/server.jks"}, "ssl.keystore.type JKS is not supported"),
    ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "KEYSTORE"}, "needs ssl.key.password"),
    ({"ssl.keystore.type": "PEM", "ssl.keystore.location": "KEYSTORE", "ssl.key.password": "wrong"}, "check ssl.key.password"),
    ({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": "P12", "ssl.keystore.password": "wrong"}, "check ssl.keystore.password"),
    ({"ssl.keystore.location": "/nonexistent.pem", "ssl.key.password": "x"}, "cannot read ssl.keystore.location"),
    ({}, "has no keystore"),
    ({"ssl.enabled.protocols": "TLSv1.1"}, "unsupported protocol 'TLSv1.1'"),
])
def test_unusable_key_material_names_the_key(certs, props, message):
    props = {k: v.replace("KEYSTORE", certs.path("server.keystore.pem")).replace("P12", certs.path("server.p12"))
             for k, v in props.items()}
    if "ssl.keystore.location" not in props:
        props = {**certs.server_properties(), **props} if message != "has no keystore" else props
    with pytest.raises(tls.TlsConfigError, match=message):
        _context(props)


def test_client_context_for_other_nodes(certs):
    context = tls.client_context({"security.protocol": "SSL", **certs.java()})
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False


def test_java_cipher_names_become_openssl_names():
    assert tls.openssl_cipher_name("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384") == "ECDHE-RSA-AES256-GCM-SHA384"
    assert tls.openssl_cipher_name("TLS_RSA_WITH_AES_128_GCM_SHA256") == "AES128-GCM-SHA256"
    assert tls.openssl_cipher_name("TLS_AES_128_GCM_SHA256") == "TLS_AES_128_GCM_SHA256"
