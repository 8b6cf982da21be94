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


class SaslExchange:
    """The whole client exchange as frames, sans-IO, for a connection protocol that moves bytes:

        exchange = SaslExchange(client, client_id="moldau-node-2")
        transport.write(exchange.first_frame())                 # SaslHandshake v1
        ... for each response frame payload (size prefix removed):
        reply = exchange.receive(payload)                       # raises SaslClientError on refusal
        if reply: transport.write(reply)                        # the next SaslAuthenticate v2
        if exchange.done: send the queued Kafka requests

    Correlation ids 1, 2, … are used; start the connection's own requests above `next_correlation_id`.
    """

    def __init__(self, client: SaslClient, client_id: str = "moldau-node"):
        self.client = client
        self.client_id = client_id
        self.next_correlation_id = 1
        self._expected: tuple[int, type] | None = None

    @property
    def done(self) -> bool:
        return self.client.done

    @property
    def session_lifetime_ms(self) -> int:
        return self.client.session_lifetime_ms

    def first_frame(self) -> bytes:
        from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
        from kio.schema.sasl_handshake.v1.response import SaslHandshakeResponse

        return self._frame(17, 1, SaslHandshakeRequest(mechanism=self.client.mechanism), SaslHandshakeResponse)

    def receive(self, payload: bytes) -> bytes | None:
        import struct

        from kio.serial import entity_reader

        if self._expected is None:
            raise SaslClientError("no SASL response expected")
        correlation_id, response_cls = self._expected
        (got,) = struct.unpack_from(">i", payload)
        if got != correlation_id:
            raise SaslClientError(f"SASL response to correlation id {got}, expected {correlation_id}")
        response = entity_reader(response_cls)(payload, 4 + (1 if response_cls.__flexible__ else 0))[0]
        self._expected = None
        if response_cls.__api_key__ == 17:
            self.client.handshake_done(response.error_code.value, list(response.mechanisms))
        else:
            self.client.authenticate_done(response.error_code.value, response.error_message,
                                          bytes(response.auth_bytes),
                                          int(response.session_lifetime.total_seconds() * 1000))
        if self.client.done:
            return None
        from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
        from kio.schema.sasl_authenticate.v2.response import SaslAuthenticateResponse

        return self._frame(36, 2, SaslAuthenticateRequest(auth_bytes=self.client.next_token()), SaslAuthenticateResponse)

    def _frame(self, api_key: int, version: int, request, response_cls) -> bytes:
        import io
        import struct

        from kio.serial import entity_writer

        correlation_id = self.next_correlation_id
        self.next_correlation_id += 1
        self._expected = (correlation_id, response_cls)
        body = io.BytesIO()
        entity_writer(type(request))(body, request)
        encoded_id = self.client_id.encode()
        header = struct.pack(">hhih", api_key, version, correlation_id, len(encoded_id)) + encoded_id
        payload = header + (b"\x00" if type(request).__flexible__ else b"") + body.getvalue()
        return struct.pack(">i", len(payload)) + payload
