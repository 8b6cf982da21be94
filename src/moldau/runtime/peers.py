"""Connections from this node to the other nodes of its cluster: the core's outbox, sent.

Theory of operation. The core queues `OutboundRequest`s (protocol/rpc.py); after every call
into the core the server hands them to `PeerManager.send`. One connection per (node, listener)
— the node's controller listener (from controller.quorum.voters) or its inter-broker listener
(from its registration) — carries any number of requests, each framed with its own correlation
id; responses are parsed with the request's kio schema and handed to the request's
`on_response` callback, on the event loop, as the core expects. A request to this node itself
is not sent over a socket: it is encoded, run through the core like any request and its
response decoded, on the next turn of the loop (so the core is never re-entered).

Links are secured as the listener they go to requires (runtime/outbound.py reads it from this
node's own config, as Kafka does): TLS when the inter-broker or controller listener is SSL or
SASL_SSL, then the SASL exchange (security/sasl_client.SaslExchange, sans-IO frames) before any
queued request is written; a refused login fails the link's requests and is logged.

A connection that fails (refused, reset, closed) fails every request on it with
`on_response(None, now)`; the next request opens a new one, after a short backoff so that a
dead node does not cost a connection attempt per request. A request that gets no answer within
its `timeout_ms` is failed the same way and its late answer, if any, ignored.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import TYPE_CHECKING, Any

from moldau.broker import apis
from moldau.protocol import codec
from moldau.protocol.rpc import OutboundRequest

if TYPE_CHECKING:
    from moldau.runtime.server import Server

log = logging.getLogger("moldau.peers")

_INT32 = struct.Struct(">i")
RECONNECT_BACKOFF_MS = 100
CONNECT_TIMEOUT_S = 5.0
# Connection ids the core sees for requests this node sends itself (below any real one).
LOOPBACK_CONNECTION_ID = -1


class _Pending:
    __slots__ = ("request", "timer")

    def __init__(self, request: OutboundRequest, timer: asyncio.TimerHandle):
        self.request = request
        self.timer = timer


class _Link(asyncio.Protocol):
    """One connection to one listener of one node."""

    def __init__(self, manager: "PeerManager", key: tuple[int, str], address: tuple[str, int], sasl=None):
        self.manager = manager
        self.key = key
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.queued: list[bytes] = []  # frames written once connected (and logged in)
        self.pending: dict[int, _Pending] = {}
        self.buffer = bytearray()
        self.closed = False
        # SASL: a security/sasl_client.SaslExchange until the login is done, then None
        self.sasl = sasl
        self.next_correlation_id = sasl.next_correlation_id + 8 if sasl is not None else 0

    def send(self, request: OutboundRequest, now_ms: int) -> None:
        self.next_correlation_id = (self.next_correlation_id + 1) & 0x7FFFFFFF
        correlation_id = self.next_correlation_id
        frame = codec.encode_request(request.api_key, request.api_version, correlation_id,
                                     self.manager.client_id, request.body)
        loop = self.manager.server.loop
        timer = loop.call_later(request.timeout_ms / 1000, self._timed_out, correlation_id)
        self.pending[correlation_id] = _Pending(request, timer)
        if self.transport is None or self.sasl is not None:
            self.queued.append(frame)
        else:
            self.transport.write(frame)

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.sasl is not None:
            transport.write(self.sasl.first_frame())
            return
        self._flush()

    def _flush(self) -> None:
        if self.queued:
            self.transport.writelines(self.queued)
            self.queued = []

    def _login(self, payload: bytes) -> None:
        from moldau.security.sasl_client import SaslClientError

        try:
            reply = self.sasl.receive(payload)
        except (SaslClientError, ValueError, struct.error) as error:
            log.error("cannot log in to node %d at %s:%d: %s", self.key[0], self.address[0], self.address[1], error)
            self.fail()
            return
        if reply is not None:
            self.transport.write(reply)
        elif self.sasl.done:
            self.sasl = None
            self._flush()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            (size,) = _INT32.unpack_from(self.buffer, 0)
            if len(self.buffer) < 4 + size:
                return
            payload = bytes(self.buffer[4 : 4 + size])
            del self.buffer[: 4 + size]
            if self.sasl is not None:
                self._login(payload)
            else:
                self._answered(payload)
            if self.closed:
                return

    def _answered(self, payload: bytes) -> None:
        pending = self.pending.pop(codec.response_correlation_id(payload), None)
        if pending is None:
            return  # answered after its timeout
        pending.timer.cancel()
        request = pending.request
        try:
            _cid, response = codec.read_response(request.api_key, request.api_version, payload)
        except Exception as error:
            log.warning("unreadable %s response from node %d: %s", request.api_key, self.key[0], error)
            response = None
        self.manager.deliver(request, response)

    def _timed_out(self, correlation_id: int) -> None:
        pending = self.pending.pop(correlation_id, None)
        if pending is not None:
            self.manager.deliver(pending.request, None)

    def connection_lost(self, exc) -> None:
        self.fail()

    def fail(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.manager.forget(self)
        pending, self.pending = self.pending, {}
        for entry in pending.values():
            entry.timer.cancel()
        for entry in pending.values():
            self.manager.deliver(entry.request, None)
        if self.transport is not None:
            self.transport.abort()


class PeerManager:
    def __init__(self, server: "Server", peer_filter=None):
        self.server = server
        # (source, destination) -> may they talk; None: always (moldau.Cluster.isolate sets one)
        self.peer_filter = peer_filter
        self.links: dict[tuple[int, str, str], _Link] = {}
        self.failed_at_ms: dict[tuple[int, str], int] = {}

    @property
    def client_id(self) -> str:
        core = self.server.core
        return f"moldau-node-{core.node_id}" if core is not None else "moldau-node"

    def send(self, request: OutboundRequest, now_ms: int) -> None:
        core = self.server.core
        if request.destination == core.node_id:
            self.server.loop.call_soon(self._loopback, request)
            return
        if self.peer_filter is not None and not self.peer_filter(core.node_id, request.destination):
            self.server.loop.call_later(RECONNECT_BACKOFF_MS / 1000, self.deliver, request, None)
            return
        key = (request.destination, request.listener, request.channel)
        link = self.links.get(key)
        if link is None:
            address = core.node_address(request.destination, request.listener)
            recently_failed = now_ms - self.failed_at_ms.get(key, -RECONNECT_BACKOFF_MS) < RECONNECT_BACKOFF_MS
            if address is None or recently_failed:
                self.server.loop.call_soon(self.deliver, request, None)
                return
            link = self._connect(key, address)
        link.send(request, now_ms)

    def _connect(self, key: tuple[int, str], address: tuple[str, int]) -> _Link:
        from moldau.security.sasl_client import SaslExchange

        from moldau.runtime.outbound import OutboundSecurityError

        try:
            security = self.server.outbound_security(key[1])
        except OutboundSecurityError as error:  # a configuration this node cannot connect with
            log.error("cannot connect to node %d: %s", key[0], error)
            link = _Link(self, key, address)
            self.links[key] = link
            self.server.loop.call_soon(link.fail)
            return link
        client = security.new_sasl_client()
        link = _Link(self, key, address, SaslExchange(client, self.client_id) if client is not None else None)
        self.links[key] = link
        loop = self.server.loop

        async def connect() -> None:
            context = security.ssl_context
            try:
                await asyncio.wait_for(loop.create_connection(
                    lambda: link, address[0], address[1], ssl=context,
                    server_hostname=address[0] if context is not None else None), CONNECT_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError) as error:
                log.debug("cannot reach node %d at %s:%d: %s", key[0], address[0], address[1], error)
                link.fail()

        loop.create_task(connect())
        return link

    def forget(self, link: _Link) -> None:
        if self.links.get(link.key) is link:
            del self.links[link.key]
        from moldau.runtime.server import now_ms

        self.failed_at_ms[link.key] = now_ms()

    def deliver(self, request: OutboundRequest, response: Any) -> None:
        """Hand a response (None: the request failed) to the core, then let the server send
        whatever the core queued in reaction."""
        from moldau.runtime.server import now_ms

        core = self.server.core
        if core is None:
            return
        if self.peer_filter is not None and not self.peer_filter(core.node_id, request.destination):
            response = None  # cut off since it was sent
        try:
            request.on_response(response, now_ms())
        except Exception:
            log.exception("handling a response from node %d failed", request.destination)
        self.server.after_core_call()

    def _loopback(self, request: OutboundRequest) -> None:
        """A request to this node itself: through the core as a request, without a socket."""
        from moldau.runtime.server import now_ms

        core = self.server.core
        if core is None:
            return
        payload = codec.encode_request(request.api_key, request.api_version, 0, self.client_id, request.body)[4:]
        core.open_internal_session(LOOPBACK_CONNECTION_ID)
        try:
            result = core.handle_request(payload, LOOPBACK_CONNECTION_ID, "127.0.0.1", now_ms())
        except Exception:
            log.exception("a request this node sent itself failed")
            self.deliver(request, None)
            return
        if isinstance(result, apis.Delayed):
            timer = self.server.loop.call_later(max(0.0, (result.deadline_ms - now_ms()) / 1000),
                                                self._expire_loopback, result)
            result.callback = lambda frame: (timer.cancel(), self._loopback_answered(request, frame))
            self.server.after_core_call()
        else:
            self._loopback_answered(request, result)

    def _expire_loopback(self, delayed: apis.Delayed) -> None:
        from moldau.runtime.server import now_ms

        if self.server.core is not None:
            self.server.core.expire(delayed, now_ms())
            self.server.after_core_call()

    def _loopback_answered(self, request: OutboundRequest, frame: Any) -> None:
        if frame is None:
            self.deliver(request, None)
            return
        data = b"".join(bytes(chunk) for chunk in frame) if isinstance(frame, list) else bytes(frame)
        try:
            _cid, response = codec.read_response(request.api_key, request.api_version, memoryview(data)[4:])
        except Exception:
            log.exception("unreadable answer to a request this node sent itself")
            response = None
        self.deliver(request, response)

    def close(self) -> None:
        for link in list(self.links.values()):
            link.fail()
