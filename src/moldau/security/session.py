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
from typing import Any

from moldau.broker.listeners import Listener

ANONYMOUS = "User:ANONYMOUS"
# The node itself (requests it runs through its own core, connection ids below 0): authenticated
# and allowed everything. No authentication yields it: SASL and TLS principals are "User:…".
INTERNAL = "Internal:node"
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
    # The SASL exchange (security/sasl.py SaslAuthenticator) on SASL listeners, else None.
    sasl: Any = None
    # A quota throttled this client: the runtime reads nothing from it until then (KIP-219).
    muted_until_ms: int = 0
    client_id: str = ""  # of the last request (quotas are per user and client id)
    # Counted by the connection limits (security/quotas.py), so closing it uncounts it.
    admitted: bool = False

    @property
    def failed(self) -> bool:
        """Authentication failed: the runtime closes the connection after the failure delay."""
        return self.sasl is not None and self.sasl.failed

    @property
    def failed_delay_ms(self) -> int:
        return self.sasl.settings.failed_delay_ms if self.sasl is not None else 0

    def allows(self, api_key: int, now_ms: int) -> bool:
        """Whether the connection may send this request now: before SASL authentication only
        the exchange itself; after the session's lifetime (KIP-368) only re-authentication."""
        sasl = self.sasl
        if sasl is None:
            return True
        if not self.authenticated or sasl.state == "authenticate":
            return sasl.allows(api_key)
        if sasl.expires_ms is not None and now_ms >= sasl.expires_ms:
            return api_key in PRE_AUTHENTICATION_APIS
        return True

    @property
    def listener_name(self) -> str:
        return self.listener.name

    @property
    def security_protocol(self) -> str:
        return self.listener.security_protocol
