"""TLS contexts from Kafka's ssl.* settings, for listeners (server side) and for connections
this node opens to other nodes (client side).

Theory of operation. Kafka names key material by store: a keystore (this side's private key and
certificate chain) and a truststore (the CAs whose certificates the other side may present).
Both come as PKCS12 files or as PEM — a file (`ssl.keystore.location`: an encrypted PKCS#8 key
and its chain, the key's password in `ssl.key.password`) or the PEM text itself in the config
(`ssl.keystore.certificate.chain` + `ssl.keystore.key`, the only form that may hold an
unencrypted key; `ssl.truststore.certificates`). `load_keystore`/`load_truststore` turn any of
these into PEM bytes with the `cryptography` package; Python's `ssl` then does the transport.
`ssl.load_cert_chain` reads only files, so the key is written to a private temporary file,
re-encrypted with a one-time password, and removed at once.

Server side, `ssl.client.auth` (required | requested | none) asks for client certificates;
on SASL_SSL listeners only its listener-prefixed form counts, as in Kafka. JKS stores are not
readable here: the error says how to convert one to PKCS12.

Client side, `client_context(props)` takes a Kafka client's properties (what a user puts in
`--command-config`, or what the inter-broker listener's settings are) and returns an
`ssl.SSLContext` that verifies the server against the truststore and checks its host name
unless `ssl.endpoint.identification.algorithm` is empty.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from moldau.broker.listeners import SASL_SSL, Listener


class TlsConfigError(ValueError):
    """Key material or a TLS setting that cannot be used; the text names the key."""


_PROTOCOL_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"required": ssl.CERT_REQUIRED, "requested": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


# --- contexts ---------------------------------------------------------------------------------
def server_context(config, listener: Listener) -> ssl.SSLContext:
    """The TLS context of one listener, from its settings (listener prefix beats the plain key)."""
    def get(key: str, default: str | None = None) -> str | None:
        return config.listener_value(listener.name, key, default)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _apply_protocols(context, get)
    chain, key = load_keystore(get)
    if chain is None:
        raise TlsConfigError(f"listener {listener.name} uses {listener.security_protocol} but has no keystore: "
                             "set ssl.keystore.location (PKCS12 or PEM) or ssl.keystore.certificate.chain "
                             "and ssl.keystore.key")
    _load_cert_chain(context, chain, key)
    client_auth = _client_auth(config, listener)
    context.verify_mode = _CLIENT_AUTH[client_auth]
    if client_auth != "none":
        trusted = load_truststore(get)
        if trusted is None:
            raise TlsConfigError(f"ssl.client.auth={client_auth} on listener {listener.name} needs a truststore: "
                                 "set ssl.truststore.location or ssl.truststore.certificates")
        context.load_verify_locations(cadata=trusted.decode("ascii"))
    return context


def client_context(props: dict[str, str]) -> ssl.SSLContext:
    """A client-side TLS context from Kafka client properties (ssl.truststore.*, and
    ssl.keystore.* for mutual TLS)."""
    def get(key: str, default: str | None = None) -> str | None:
        return props.get(key, default)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _apply_protocols(context, get)
    trusted = load_truststore(get)
    if trusted is not None:
        context.load_verify_locations(cadata=trusted.decode("ascii"))
    else:
        context.load_default_certs()
    context.check_hostname = (get("ssl.endpoint.identification.algorithm", "https") or "").lower() == "https"
    chain, key = load_keystore(get)
    if chain is not None:
        _load_cert_chain(context, chain, key)
    return context


def _client_auth(config, listener: Listener) -> str:
    prefixed = config.security.get(listener.config_prefix + "ssl.client.auth")
    value = prefixed if prefixed is not None or listener.security_protocol == SASL_SSL else config.security.get("ssl.client.auth")
    value = (value or "none").strip().lower()
    if value not in _CLIENT_AUTH:
        raise TlsConfigError(f"invalid value {value!r} for ssl.client.auth: expected required, requested or none")
    return value


def _apply_protocols(context: ssl.SSLContext, get: Callable[..., str | None]) -> None:
    enabled = [p.strip() for p in (get("ssl.enabled.protocols") or "TLSv1.2,TLSv1.3").split(",") if p.strip()]
    versions = []
    for name in enabled:
        if name not in _PROTOCOL_VERSIONS:
            raise TlsConfigError(f"unsupported protocol {name!r} in ssl.enabled.protocols: expected TLSv1.2 and/or TLSv1.3")
        versions.append(_PROTOCOL_VERSIONS[name])
    context.minimum_version, context.maximum_version = min(versions), max(versions)
    suites = get("ssl.cipher.suites")
    if suites:
        names = [openssl_cipher_name(s.strip()) for s in suites.split(",") if s.strip()]
        tls12 = [n for n in names if not n.startswith("TLS_")]  # TLS 1.3 suites are not selectable in Python
        if tls12:
            try:
                context.set_ciphers(":".join(tls12))
            except ssl.SSLError:
                raise TlsConfigError(f"no usable cipher suite in ssl.cipher.suites ({suites})") from None


def openssl_cipher_name(name: str) -> str:
    """Kafka (Java) names cipher suites the IANA way; OpenSSL has its own names:
    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 → ECDHE-RSA-AES256-GCM-SHA384. TLS 1.3 suites
    (TLS_AES_128_GCM_SHA256) and names already in OpenSSL form pass unchanged."""
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return name
    exchange, cipher = name[4:].split("_WITH_", 1)
    cipher = cipher.replace("AES_128", "AES128").replace("AES_256", "AES256").replace("CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305")
    exchange = "" if exchange == "RSA" else exchange.replace("_", "-")  # plain RSA key exchange has no prefix
    return "-".join(p for p in (exchange, cipher.replace("_", "-")) if p)


def _load_cert_chain(context: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    """ssl reads key material only from files: a private temporary file holds the chain and
    the key, encrypted with a one-time password, for the duration of the call."""
    password = secrets.token_hex(16).encode()
    private_key = serialization.load_pem_private_key(key, None)
    encrypted = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(password))
    handle, path = tempfile.mkstemp(prefix="moldau-tls-", suffix=".pem")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(chain + b"\n" + encrypted)
        context.load_cert_chain(path, password=password)
    finally:
        os.unlink(path)


# --- key material -----------------------------------------------------------------------------
def load_keystore(get: Callable[..., str | None]) -> tuple[bytes | None, bytes | None]:
    """(certificate chain PEM, unencrypted private key PEM) of the keystore settings, or
    (None, None) when there is no keystore."""
    location, inline_chain = get("ssl.keystore.location"), get("ssl.keystore.certificate.chain")
    if not location and not inline_chain:
        return None, None
    store_type = (get("ssl.keystore.type") or _type_of(location, inline_chain)).upper()
    key_password = get("ssl.key.password")
    if inline_chain:
        if store_type != "PEM":
            raise TlsConfigError("ssl.keystore.certificate.chain needs ssl.keystore.type=PEM")
        inline_key = get("ssl.keystore.key")
        if not inline_key:
            raise TlsConfigError("ssl.keystore.certificate.chain is set but ssl.keystore.key is not: set both")
        return _pem_chain(inline_chain.encode(), "ssl.keystore.certificate.chain"), _pem_key(
            inline_key.encode(), key_password, "ssl.keystore.key")
    if store_type not in ("PEM", "PKCS12"):
        raise _unsupported_type("ssl.keystore.type", store_type)
    data = _read(location, "ssl.keystore.location")
    if store_type == "PEM":
        if not key_password:
            raise TlsConfigError("ssl.keystore.location of type PEM needs ssl.key.password (its key must be an "
                                 "encrypted PKCS#8 key; an unencrypted key is accepted only inline in ssl.keystore.key)")
        return _pem_chain(data, "ssl.keystore.location"), _pem_key(data, key_password, "ssl.keystore.location")
    if store_type == "PKCS12":
        return _pkcs12_keystore(data, get("ssl.keystore.password"), key_password)
    raise _unsupported_type("ssl.keystore.type", store_type)


def load_truststore(get: Callable[..., str | None]) -> bytes | None:
    """The trusted certificates (PEM) of the truststore settings, or None when there are none."""
    location, inline = get("ssl.truststore.location"), get("ssl.truststore.certificates")
    if not location and not inline:
        return None
    store_type = (get("ssl.truststore.type") or _type_of(location, inline)).upper()
    if inline:
        if store_type != "PEM":
            raise TlsConfigError("ssl.truststore.certificates needs ssl.truststore.type=PEM")
        return _pem_chain(inline.encode(), "ssl.truststore.certificates")
    if store_type not in ("PEM", "PKCS12"):
        raise _unsupported_type("ssl.truststore.type", store_type)
    data = _read(location, "ssl.truststore.location")
    if store_type == "PEM":
        return _pem_chain(data, "ssl.truststore.location")
    if store_type == "PKCS12":
        password = get("ssl.truststore.password")
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        except ValueError as error:
            raise TlsConfigError(f"cannot read the PKCS12 truststore ssl.truststore.location ({error}); "
                                 "check ssl.truststore.password") from None
        certs = ([cert] if cert is not None else []) + list(extra)
        if not certs:
            raise TlsConfigError("the PKCS12 truststore in ssl.truststore.location holds no certificates")
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    raise _unsupported_type("ssl.truststore.type", store_type)


def _type_of(location: str | None, inline: str | None) -> str:
    """Kafka's default store type is JKS; a PEM or PKCS12 file is recognised by its name."""
    if inline:
        return "PEM"
    lowered = (location or "").lower()
    if lowered.endswith((".pem", ".crt", ".cer")):
        return "PEM"
    if lowered.endswith((".p12", ".pfx", ".pkcs12")):
        return "PKCS12"
    return "JKS"


def _unsupported_type(key: str, store_type: str) -> TlsConfigError:
    if store_type == "JKS":
        return TlsConfigError(f"{key} JKS is not supported: use PKCS12 or PEM (convert with keytool -importkeystore "
                              "-srcstoretype JKS -deststoretype PKCS12 -srckeystore X.jks -destkeystore X.p12)")
    return TlsConfigError(f"invalid value {store_type!r} for {key}: expected PKCS12 or PEM")


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise TlsConfigError(f"cannot read {key} {path}: {error.strerror}") from None


def _pem_chain(data: bytes, key: str) -> bytes:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TlsConfigError(f"{key} holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _pem_key(data: bytes, password: str | None, key: str) -> bytes:
    start = data.find(b"-----BEGIN ")
    while start >= 0 and data.startswith(b"-----BEGIN CERTIFICATE-----", start):
        start = data.find(b"-----BEGIN ", start + 1)
    if start < 0:
        raise TlsConfigError(f"{key} holds no PEM private key")
    end_marker = data.find(b"-----END ", start)
    end = data.find(b"-----", end_marker + 9) + 5
    block = data[start:end]
    encrypted = b"ENCRYPTED" in block.split(b"\n", 1)[0]
    try:
        private_key = serialization.load_pem_private_key(
            block, password.encode() if (password and encrypted) else None)
    except (ValueError, TypeError) as error:
        hint = "check ssl.key.password" if encrypted else "it must be a PKCS#8 PEM key"
        raise TlsConfigError(f"cannot read the private key in {key} ({error}); {hint}") from None
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def _pkcs12_keystore(data: bytes, store_password: str | None, key_password: str | None) -> tuple[bytes, bytes]:
    last_error = None
    for password in dict.fromkeys(p for p in (store_password, key_password, None)):
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
            break
        except ValueError as error:
            last_error = error
    else:
        raise TlsConfigError(f"cannot read the PKCS12 keystore ssl.keystore.location ({last_error}); "
                             "check ssl.keystore.password") from None
    if key is None or cert is None:
        raise TlsConfigError("the PKCS12 keystore in ssl.keystore.location holds no private key with its certificate")
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *extra])
    return chain, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
