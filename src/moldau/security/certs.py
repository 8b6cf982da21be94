"""Certificates for local use: a CA, a server certificate per node, a client certificate.

Theory of operation. `make_bundle` returns, as bytes per file name, everything a local secured
setup needs: the CA (`ca.crt`, and `ca.key` to issue more), per node a PEM keystore holding an
encrypted PKCS#8 key and its chain (Kafka 4.1's `ssl.keystore.type=PEM` file form) plus the same
as PKCS12, a client keystore in both forms, the client's key and certificate as separate
unencrypted files (what librdkafka and kcat take), and properties snippets for the server and
for Kafka clients. The caller (`moldau certs create`) writes them. Keys are EC P-256 (fast
handshakes); certificates are valid for `days`. Time arrives as an argument.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Moldau local"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(now: datetime.datetime, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Moldau local CA")
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def issue(ca_key, ca_cert: x509.Certificate, common_name: str, hosts: list[str], now: datetime.datetime,
          days: int, client: bool = False) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by the CA: for a server (its host names and addresses as subject
    alternative names) or for a client (its common name becomes the principal `User:CN=…`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def pem_keystore(key, chain: list[x509.Certificate], password: str) -> bytes:
    """Kafka's PEM keystore file: an encrypted PKCS#8 key followed by its certificate chain.
    The key is encrypted with PBE-SHA1-3DES (PKCS#12 PBE, what Kafka's docs use with
    `openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES`): Java 17, and so Kafka on it, cannot read the
    PBES2 encryption that libraries choose by default."""
    encrypted = pbe_sha1_3des_pkcs8(key, password, os.urandom(8))
    return encrypted + b"".join(c.public_bytes(_PEM) for c in chain)


_PBE_SHA1_3DES_OID = bytes.fromhex("2a864886f70d010c0103")  # 1.2.840.113549.1.12.1.3


def pbe_sha1_3des_pkcs8(key, password: str, salt: bytes, iterations: int = 2048) -> bytes:
    """EncryptedPrivateKeyInfo (RFC 5208) with pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292), as PEM."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    secret = password.encode("utf-16-be") + b"\0\0"
    des_key = _pkcs12_kdf(secret, salt, 1, iterations, 24)
    iv = _pkcs12_kdf(secret, salt, 2, iterations, 8)
    padder = padding.PKCS7(64).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(TripleDES(des_key), modes.CBC(iv)).encryptor()
    data = encryptor.update(padded) + encryptor.finalize()
    params = _der(0x30, _der(0x04, salt) + _der(0x02, iterations.to_bytes(2, "big")))
    algorithm = _der(0x30, _der(0x06, _PBE_SHA1_3DES_OID) + params)
    der = _der(0x30, algorithm + _der(0x04, data))
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + b"\n".join(lines) + b"\n-----END ENCRYPTED PRIVATE KEY-----\n"


def _pkcs12_kdf(password: bytes, salt: bytes, purpose: int, iterations: int, size: int) -> bytes:
    """RFC 7292 appendix B.2 with SHA-1 (u = 20, v = 64)."""
    u, v = 20, 64
    d = bytes([purpose]) * v
    s = (salt * ((v * ((len(salt) + v - 1) // v)) // len(salt) + 1))[: v * ((len(salt) + v - 1) // v)]
    p = (password * ((v * ((len(password) + v - 1) // v)) // len(password) + 1))[: v * ((len(password) + v - 1) // v)]
    i = bytearray(s + p)
    out = b""
    while len(out) < size:
        a = d + bytes(i)
        for _ in range(iterations):
            a = hashlib.sha1(a).digest()
        out += a
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (8 * v))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:size]


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + content


def pkcs12_keystore(alias: str, key, chain: list[x509.Certificate], password: str) -> bytes:
    # PBESv2 with AES: what Java 17 and OpenSSL 3 both read.
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(50_000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(hashes.SHA256())
                  .build(password.encode()))
    return pkcs12.serialize_key_and_certificates(alias.encode(), key, chain[0], chain[1:] or None, encryption)


def make_bundle(out_dir: str, hosts: list[str], nodes: int, password: str, now: datetime.datetime,
                days: int = 365) -> dict[str, bytes]:
    """File name -> contents of a local certificate set (see the module docstring). `out_dir`
    is where the files will live: the properties snippets name them by absolute path."""
    ca_key, ca_cert = make_ca(now, days)
    files: dict[str, bytes] = {
        "ca.crt": ca_cert.public_bytes(_PEM),
        "ca.key": ca_key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "password": password.encode() + b"\n",
    }
    for node in range(1, nodes + 1):
        name = f"node-{node}" if nodes > 1 else "server"
        key, cert = issue(ca_key, ca_cert, hosts[0] if hosts else "localhost", hosts, now, days)
        files[f"{name}.keystore.pem"] = pem_keystore(key, [cert, ca_cert], password)
        files[f"{name}.p12"] = pkcs12_keystore(name, key, [cert, ca_cert], password)
        files[f"{name}-ssl.properties"] = _server_properties(out_dir, name, password)
    key, cert = issue(ca_key, ca_cert, "client", [], now, days, client=True)
    files["client.keystore.pem"] = pem_keystore(key, [cert, ca_cert], password)
    files["client.p12"] = pkcs12_keystore("client", key, [cert, ca_cert], password)
    files["client.crt"] = cert.public_bytes(_PEM)
    files["client.key"] = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    files["client-ssl.properties"] = _client_properties(out_dir, password)
    return files


def _server_properties(out_dir: str, name: str, password: str) -> bytes:
    return (
        "# TLS settings for a Moldau or Kafka server (add them to server.properties)\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={out_dir}/{name}.keystore.pem\n"
        f"ssl.key.password={password}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={out_dir}/ca.crt\n"
    ).encode()


def _client_properties(out_dir: str, password: str) -> bytes:
    return (
        "# A Kafka client over mutual TLS (Java clients, moldau --command-config)\n"
        "security.protocol=SSL\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={out_dir}/ca.crt\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={out_dir}/client.keystore.pem\n"
        f"ssl.key.password={password}\n"
        "# librdkafka (confluent-kafka, kcat) takes these instead of the keystore:\n"
        f"# ssl.ca.location={out_dir}/ca.crt\n"
        f"# ssl.certificate.location={out_dir}/client.crt\n"
        f"# ssl.key.location={out_dir}/client.key\n"
    ).encode()
