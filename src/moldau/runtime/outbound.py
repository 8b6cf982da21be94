"""Connections this node opens to other nodes, secured as the listener they go to requires.

Theory of operation. Brokers reach each other on `inter.broker.listener.name` and the
controllers on the first of `controller.listener.names`; that listener's security protocol
says what the connection must speak. `outbound_security(config, role)` gathers it once from
this node's own settings, as Kafka does:
- TLS (SSL, SASL_SSL): a client `ssl.SSLContext` from the listener's truststore (and keystore,
  so the node presents its certificate when the listener asks for client certificates), host
  names checked unless `ssl.endpoint.identification.algorithm` is empty;
- SASL (SASL_PLAINTEXT, SASL_SSL): the mechanism of `sasl.mechanism.inter.broker.protocol` (or
  `sasl.mechanism.controller.protocol`), the node's own username and password from that
  listener's JAAS config for the mechanism (`listener.name.<l>.<mechanism>.sasl.jaas.config`,
  `username=… password=…`).
`open_connection(host, port, security)` then connects, wraps TLS, and runs the SASL exchange
(SaslHandshake v1, SaslAuthenticate v2) with the sans-IO `security/sasl_client.SaslExchange`,
and returns asyncio streams ready for Kafka requests. A connection written as an asyncio
Protocol (runtime/peers.py) uses `SaslExchange` directly: `ssl=security.ssl_context` in
`create_connection`, then `exchange.first_frame()`, then `exchange.receive(payload)` for each
response until `exchange.done`, then its own requests. Re-authentication (KIP-368): when
`connection.session_lifetime_ms` is set, open a new connection before it passes.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from dataclasses import dataclass

from moldau.broker.listeners import SASL_PLAINTEXT, SASL_SSL, SSL
from moldau.runtime import tls
from moldau.security import jaas
from moldau.security.sasl_client import SaslClient, SaslClientError, SaslExchange

BROKER, CONTROLLER = "broker", "controller"
_TLS_KEYS = ("ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password",
             "ssl.truststore.certificates", "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password",
             "ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.key.password", "ssl.enabled.protocols",
             "ssl.cipher.suites", "ssl.endpoint.identification.algorithm")


class OutboundSecurityError(ValueError):
    pass


@dataclass
class OutboundSecurity:
    listener_name: str
    security_protocol: str
    ssl_context: ssl.SSLContext | None = None
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None

    def new_sasl_client(self) -> SaslClient | None:
        if self.sasl_mechanism is None:
            return None
        return SaslClient(self.sasl_mechanism, self.username or "", self.password or "")


def outbound_security(config, role: str = BROKER) -> OutboundSecurity:
    """How this node must connect to other nodes' broker (or controller) listener."""
    settings = config.listener_settings
    name = settings.inter_broker_listener_name if role == BROKER else (settings.controller_listener_names or ("",))[0]
    protocol = settings.protocol_map.get(name)
    if protocol is None:
        raise OutboundSecurityError(f"no security protocol known for the {role} listener {name or '(none)'}")
    security = OutboundSecurity(name, protocol)
    if protocol in (SSL, SASL_SSL):
        props = {key: value for key in _TLS_KEYS if (value := config.listener_value(name, key)) is not None}
        security.ssl_context = tls.client_context(props)
    if protocol in (SASL_PLAINTEXT, SASL_SSL):
        key = "sasl.mechanism.inter.broker.protocol" if role == BROKER else "sasl.mechanism.controller.protocol"
        mechanism = (config.security.get(key) or "GSSAPI").strip().upper()
        jaas_key = f"{mechanism.lower()}.sasl.jaas.config"
        value = config.listener_value(name, jaas_key) or config.listener_value(name, "sasl.jaas.config")
        if mechanism == "GSSAPI" or not value:
            raise OutboundSecurityError(
                f"the {role} listener {name} uses {protocol}: set {key} (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and "
                f"listener.name.{name.lower()}.<mechanism>.sasl.jaas.config with username= and password=")
        options = jaas.parse(value, f"listener.name.{name.lower()}.{jaas_key}")[1]
        security.sasl_mechanism, security.username, security.password = (
            mechanism, options.get("username"), options.get("password"))
    return security


async def open_connection(host: str, port: int, security: OutboundSecurity, client_id: str = "moldau-node",
                          timeout_s: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """Connect, TLS and SASL as `security` says; returns (reader, writer, session lifetime ms)."""
    context = security.ssl_context
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host if context is not None else None),
        timeout_s)
    client = security.new_sasl_client()
    if client is None:
        return reader, writer, 0
    try:
        await asyncio.wait_for(authenticate(reader, writer, client, client_id), timeout_s)
    except BaseException:
        writer.close()
        raise
    return reader, writer, client.session_lifetime_ms


async def authenticate(reader, writer, client: SaslClient, client_id: str) -> None:
    """The SASL exchange on a fresh connection (SaslExchange's frames over asyncio streams)."""
    exchange = SaslExchange(client, client_id)
    frame = exchange.first_frame()
    while frame is not None:
        writer.write(frame)
        await writer.drain()
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        frame = exchange.receive(await reader.readexactly(size))
