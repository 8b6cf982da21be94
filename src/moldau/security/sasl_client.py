"""SASL on the client side, sans-IO: what a node sends to authenticate to another node.

Theory of operation. `SaslClient` is the client's half of the exchange that
`security/sasl.py` serves: it names its mechanism in SaslHandshake, then produces one token per
SaslAuthenticate request and consumes the server's answer, until `done` (or raises
`SaslClientError`). The caller moves the bytes (runtime/outbound.py does, over asyncio streams):

    client = SaslClient("SCRAM-SHA-512", "admin", "admin-secret")
    send SaslHandshake(mechanism=client.mechanism); client.handshake_done(error_code, mechanisms)
    while not client.done:
        token = client.next_token()                       # bytes for SaslAuthenticate.auth_bytes
        send SaslAuthenticate(auth_bytes=token)
        client.authenticate_done(error_code, error_message, auth_bytes, session_lifetime_ms)

`session_lifetime_ms` (KIP-368) says when the server wants the client to authenticate again
(0: never). PLAIN takes one round; SCRAM two (via `scramp`, which also checks the server's
signature, so a node is never fooled by a server that does not know the credential).
"""

from __future__ import annotations

import scramp

from moldau.security.sasl import PLAIN, SCRAM_SHA_256, SCRAM_SHA_512


class SaslClientError(Exception):
    pass


class SaslClient:
    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None):
        if mechanism not in (PLAIN, SCRAM_SHA_256, SCRAM_SHA_512):
            raise SaslClientError(f"unsupported SASL mechanism {mechanism} for connections between nodes")
        self.mechanism = mechanism
        self.username, self.password = username, password
        self._scram = scramp.ScramClient([mechanism], username, password, c_nonce=nonce) if mechanism != PLAIN else None
        self._round = 0
        self._handshaken = False
        self.done = False
        self.session_lifetime_ms = 0

    def handshake_done(self, error_code: int, mechanisms: list[str]) -> None:
        if int(error_code) != 0:
            raise SaslClientError(f"the server refused SASL mechanism {self.mechanism} (error {int(error_code)}); "
                                  f"it offers {', '.join(mechanisms) or 'none'}")
        self._handshaken = True

    def next_token(self) -> bytes:
        if not self._handshaken or self.done:
            raise SaslClientError("no token is due (handshake first, or already done)")
        if self._scram is None:
            return b"\0" + self.username.encode() + b"\0" + self.password.encode()
        if self._round == 0:
            return self._scram.get_client_first().encode()
        return self._scram.get_client_final().encode()

    def authenticate_done(self, error_code: int, error_message: str | None, auth_bytes: bytes,
                          session_lifetime_ms: int = 0) -> None:
        if int(error_code) != 0:
            raise SaslClientError(f"SASL authentication as {self.username} failed: {error_message or int(error_code)}")
        try:
            if self._scram is not None and self._round == 0:
                self._scram.set_server_first(bytes(auth_bytes).decode())
                self._round = 1
                return
            if self._scram is not None:
                self._scram.set_server_final(bytes(auth_bytes).decode())
        except (scramp.ScramException, UnicodeDecodeError) as error:
            raise SaslClientError(f"the server's SCRAM answer is not valid: {error}") from None
        self.done = True
        self.session_lifetime_ms = session_lifetime_ms
