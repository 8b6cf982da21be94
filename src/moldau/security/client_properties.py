"""Kafka (Java) client properties as librdkafka takes them, for every tool built on
confluent-kafka (the CLI, Connect, the console, perf): users keep one client.properties for
Kafka's tools and ours. Java's JAAS logins, TLS stores (PEM, PKCS12) and spellings become
librdkafka's settings; a value that cannot be used raises ValueError naming the key.
"""

from __future__ import annotations

import re
from typing import Mapping


def librdkafka_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """Kafka (Java) client properties as librdkafka takes them.

    `sasl.jaas.config`'s username and password become librdkafka's `sasl.username`/
    `sasl.password` (OAUTHBEARER's unsecured login, `unsecuredLoginStringClaim_sub`, becomes
    librdkafka's unsecure-JWT config). Java's TLS stores become librdkafka's PEM settings: the
    truststore (PEM or PKCS12) → `ssl.ca.pem`, a PEM keystore → `ssl.certificate.pem` and
    `ssl.key.pem`, a PKCS12 keystore → `ssl.keystore.location`; an empty
    `ssl.endpoint.identification.algorithm` (Java's "do not check host names") → `none`.
    Java-only keys librdkafka would refuse are dropped.
    """
    result = dict(properties)
    jaas = result.pop("sasl.jaas.config", None)
    if jaas is not None:
        _jaas_login(jaas, result)
    if any(key.startswith(("ssl.truststore.", "ssl.keystore.")) for key in result):
        _java_tls(result)
    if result.get("ssl.endpoint.identification.algorithm", None) == "":
        result["ssl.endpoint.identification.algorithm"] = "none"
    for key in ("ssl.enabled.protocols", "ssl.protocol", "ssl.truststore.type", "ssl.keystore.type",
                "sasl.login.callback.handler.class", "ssl.engine.factory.class"):
        result.pop(key, None)
    return result


def _jaas_login(jaas: str, result: dict[str, str]) -> None:
    if "OAuthBearerLoginModule" in jaas:
        match = re.search(r'\bunsecuredLoginStringClaim_sub\s*=\s*"((?:[^"\\]|\\.)*)"', jaas)
        if match is None:
            raise ValueError("sasl.jaas.config: OAUTHBEARER needs unsecuredLoginStringClaim_sub=\"…\" "
                             "(only unsecured development tokens are supported)")
        result.setdefault("enable.sasl.oauthbearer.unsecure.jwt", "true")
        result.setdefault("sasl.oauthbearer.config", f"principal={match.group(1)}")
        return
    for key in ("username", "password"):
        match = re.search(rf'\b{key}\s*=\s*"((?:[^"\\]|\\.)*)"', jaas)
        if match is None:
            raise ValueError(f"sasl.jaas.config: no {key}=\"…\" (only username/password logins are supported)")
        result.setdefault(f"sasl.{key}", match.group(1).replace('\\"', '"'))


def _java_tls(result: dict[str, str]) -> None:
    from moldau.runtime import tls

    settings = dict(result)  # (tls.TlsConfigError is a ValueError naming the key)
    trusted = tls.load_truststore(settings.get)
    if (settings.get("ssl.keystore.type") or "").upper() == "PKCS12" or (
            settings.get("ssl.keystore.location", "").lower().endswith((".p12", ".pfx"))):
        chain = key = None  # librdkafka reads PKCS12 keystores itself
    else:
        chain, key = tls.load_keystore(settings.get)
    for name in [k for k in result if k.startswith("ssl.truststore.")]:
        del result[name]
    if trusted is not None:
        result["ssl.ca.pem"] = trusted.decode("ascii")
    if chain is not None:
        for name in ("ssl.keystore.location", "ssl.keystore.password", "ssl.keystore.certificate.chain",
                     "ssl.keystore.key", "ssl.key.password"):
            result.pop(name, None)
        result["ssl.certificate.pem"], result["ssl.key.pem"] = chain.decode("ascii"), key.decode("ascii")
