"""One connection's security state: its listener, its principal, what it may send next.

Theory of operation. The runtime opens a session when a connection is accepted (after the TLS
handshake, on TLS listeners), naming the listener and handing over the client certificate if
one was presented. On a PLAINTEXT or SSL listener the connection is authenticated at once: its
principal is `User:ANONYMOUS`, or on SSL the client certificate's distinguished name mapped by
`ssl.principal.mapping.rules`. On a SASL listener it starts unauthenticated: until SASL
completes only ApiVersions, SaslHandshake and SaslAuthenticate are accepted, and frames are
capped at `sasl.server.max.receive.size` (Kafka closes the connection otherwise, and so do we).

Invariants: `principal` is only ever set by authentication; a session that failed
authentication accepts nothing more (the runtime closes it after the failure delay).
"""

from __future__ import annotations

from dataclasses import dataclass

from moldau.broker.listeners import Listener

ANONYMOUS = "User:ANONYMOUS"
# API keys a SASL connection may send before it has authenticated.
PRE_AUTHENTICATION_APIS = frozenset({17, 18, 36})  # SaslHandshake, ApiVersions, SaslAuthenticate


@dataclass(eq=False)
class Session:
    connection_id: int
    listener: Listener
    client_host: str
    principal: str = ANONYMOUS
    authenticated: bool = True
    # Largest frame the runtime reads from this connection now.
    frame_bytes_max: int = 0

    @property
    def listener_name(self) -> str:
        return self.listener.name

    @property
    def security_protocol(self) -> str:
        return self.listener.security_protocol
