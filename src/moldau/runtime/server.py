"""The network shell around the broker core: asyncio, sockets, timers. No broker logic here.

Theory of operation. One `_Connection` (an asyncio Protocol) per client frames the byte stream
into requests and hands each, synchronously, to `BrokerCore.handle_request`. Responses go
back in request order: each request takes a slot in the connection's queue; a slot is filled
at once (most requests) or later (a delayed fetch completes, or its timer fires), and the
queue is flushed from the head while slots are filled. Because the core runs inside the
callback, no state change spans an await. A Fetch response's record sets are file regions of
the segments, read when the response is written (runtime/transmit.py; by sendfile instead on
plain sockets with socket.sendfile.enable).

Listeners: one server socket per listener in `listeners` (broker and controller listeners
alike: the controller is served by the same core, combined mode). A connection knows its
listener; TLS listeners wrap the socket in TLS (runtime/tls.py) and the session is opened with
the core once the handshake is done, handing over the client certificate. The core's session
(security/session.py) holds the principal and the SASL state and sets the largest frame the
connection may send (small until a SASL connection has authenticated).

Memory: connections read into one buffer the server shares; complete frames go to the core
from there, and only an incomplete frame moves into a buffer of the connection's own, grown as
its bytes arrive and dropped once it is complete. All those buffers together are bounded by
queued.max.request.bytes (runtime/memory.py): past it, connections that need more stop
reading until memory frees. An idle connection holds no read buffer.

Limits: a frame over socket.request.max.bytes, a malformed request or an unknown API version
closes that connection (Kafka does the same); past `inflight_requests_per_connection_max`
queued responses, or when the socket's write buffer is full, the connection stops reading
until it drains. Every other connection keeps being served.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable
import logging
import os
import socket
import struct
import time
import uuid

from moldau import limits
from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore, CloseConnection
from moldau.broker.listeners import Listener
from moldau.protocol.codec import MalformedRequest
from moldau.runtime import data_dir, memory, tls
from moldau.runtime.disk import OsFileSystem
from moldau.runtime.loop_health import LoopHealth
from moldau.runtime.transmit import RegionGone, Transmitter
from moldau.security.session import Session

log = logging.getLogger("moldau.server")

_TICK_INTERVAL_S = 0.5
# The read buffer all connections share (a read lands there when a connection holds no
# incomplete frame), and the smallest buffer of a connection's own for an incomplete frame;
# it doubles as the frame's bytes arrive, up to the frame's size.
_SHARED_READ_BYTES = 256 * 1024
_OWN_BUFFER_MIN_BYTES = 16 * 1024
# A frame up to this size gets its whole buffer at once (a producer's request: Java's
# max.request.size and librdkafka's message.max.bytes are 1 MB; franz-go groups partitions).
_EAGER_FRAME_BYTES = 4 * 1024 * 1024
_INT32 = struct.Struct(">i")
_PRODUCE = 0  # api key


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Slot:
    __slots__ = ("frame", "ready")

    def __init__(self) -> None:
        self.frame: bytes | None = None
        self.ready = False


class _Connection(asyncio.BufferedProtocol):
    """One client. The socket reads straight into `buffer` (a BufferedProtocol: no copy per
    read); each complete frame is copied out once, as the request handed to the core.
    `buffer[start:end]` holds bytes received and not yet handled."""

    def __init__(self, server: "Server", connection_id: int, listener: Listener):
        self.server = server
        self.connection_id = connection_id
        self.listener = listener
        self.session: Session | None = None  # opened with the core in connection_made
        self.muted = False  # reading paused while a quota throttles this client
        # An incomplete frame (or, while muted, frames not handled yet): its bytes are
        # buffer[start:end]; `charged` of the pool's bytes pay for `buffer`. Empty otherwise.
        self.buffer = bytearray()
        self.start = 0
        self.end = 0
        self.charged = 0
        self.shared_read = False  # the last get_buffer handed out the shared read buffer
        self.paused_for_memory = False
        self.handling = False  # inside buffer_updated: responses are flushed once at its end
        self.slots: collections.deque[_Slot] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.transmitter: Transmitter | None = None
        self.client_host = "?"
        self.paused_for_writes = False
        self.paused_for_inflight = False
        self.closed = False
        # delayed operations still pending for this connection, with their deadline timers
        self.pending: dict[apis.Delayed, asyncio.TimerHandle] = {}
        self.last_request_ms = now_ms()  # the idle check of Server._close_idle

    def connection_made(self, transport) -> None:
        self.transport = transport
        # socket.sendfile.enable: Fetch record sets leave plain sockets by sendfile from the
        # segment files; TLS encrypts in user space, so there they are always read and written.
        self.transmitter = Transmitter(transport, use_sendfile=self.server.config.socket_sendfile_enable
                                       and not self.listener.uses_tls)
        peer = transport.get_extra_info("peername")
        self.client_host = str(peer[0]) if peer else "?"
        self.server.connections.add(self)
        self.server.core.metrics.connection_opened(self.listener.name)
        certificate = None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # TLS: called once the handshake is done
            certificate = ssl_object.getpeercert(binary_form=True)
        try:
            self.session = self.server.core.connection_opened(self.connection_id, self.listener.name,
                                                              self.client_host, certificate, now_ms())
        except Exception as error:  # e.g. a client certificate the principal mapping rejects
            log.warning("closing connection %s on %s: %s", self.client_host, self.listener.name, error)
            self.abort()

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._drop_buffer()
        self.server.request_memory.forget(self)
        core = self.server.core
        for delayed, timer in list(self.pending.items()):
            timer.cancel()
            if core is not None:
                core.cancel(delayed)
        self.pending.clear()
        if core is not None:
            core.connection_closed(self.connection_id)
            core.metrics.connection_closed(self.listener.name)

    def pause_writing(self) -> None:
        self.paused_for_writes = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.paused_for_writes = False
        self._update_reading()

    def _update_reading(self) -> None:
        if self.closed or self.transport is None:
            return
        if self.paused_for_writes or self.paused_for_inflight or self.muted or self.paused_for_memory:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        """The shared read buffer while no frame is partly received (only a frame's size while
        request memory is exhausted), else the room left in the connection's own buffer,
        which buffer_updated keeps non-empty whenever the connection reads."""
        server = self.server
        if self.end == self.start:
            self.shared_read = True
            if server.request_memory.may_read_fully(self):
                return server.shared_view
            return server.shared_view[:4]
        self.shared_read = False
        if self.end == len(self.buffer):  # not expected: reading should have been paused
            self._grow(self._wanted_capacity(self.buffer, self.start, self.end), force=True)
        return memoryview(self.buffer)[self.end :]

    def _wanted_capacity(self, data: bytearray, start: int, end: int, current: int = -1) -> int:
        """For the incomplete frame data[start:end]: the whole frame at once when it is at
        most _EAGER_FRAME_BYTES (what producers send: growing a 1 MiB frame by doubling cost
        three allocations and copies per request, a third of the broker's produce time), else
        twice what it or the `current` buffer holds (at least _OWN_BUFFER_MIN_BYTES), never more
        than the whole frame — so a client announcing a huge frame holds what it sent, not what
        it announced."""
        received = end - start
        current = len(self.buffer) if current < 0 else current
        wanted = max(_OWN_BUFFER_MIN_BYTES, 2 * max(current, received))
        if received >= 4:
            (size,) = _INT32.unpack_from(data, start)
            if 0 <= size <= self.frame_bytes_max():
                wanted = 4 + size if 4 + size <= _EAGER_FRAME_BYTES else min(wanted, 4 + size)
        return max(received + 1, wanted)

    def _grow(self, capacity: int, force: bool = False) -> bool:
        """A bigger own buffer, if the pool grants the difference (always when `force`)."""
        more = capacity - len(self.buffer)
        pool = self.server.request_memory
        if force:
            pool.force_charge(more)
        elif not pool.try_charge(self, more):
            return False
        bigger = bytearray(capacity)
        bigger[: self.end - self.start] = memoryview(self.buffer)[self.start : self.end]
        self.buffer, self.end, self.start = bigger, self.end - self.start, 0
        self.charged += more
        return True

    def _shrink(self, capacity: int) -> None:
        smaller = bytearray(capacity)
        left = self.end - self.start
        smaller[:left] = memoryview(self.buffer)[self.start : self.end]
        freed = len(self.buffer) - capacity
        self.buffer, self.start, self.end = smaller, 0, left
        self.charged -= freed
        self.server.request_memory.release(self, freed, done=False)

    def _drop_buffer(self) -> None:
        charged = self.charged
        self.buffer, self.start, self.end, self.charged = bytearray(), 0, 0, 0
        if charged:  # after the reset: releasing may wake this very connection (retry_memory)
            self.server.request_memory.release(self, charged, done=True)

    def _keep_incomplete(self, data: bytearray, start: int, end: int) -> None:
        """After the complete frames: keep the incomplete one's bytes (from the shared buffer
        into the connection's own), with room for more — or stop reading until the pool has
        it (runtime/memory.py)."""
        left = end - start
        if data is not self.buffer:  # the shared read buffer
            if left == 0:
                return
            if not self._grow(self._wanted_capacity(data, start, end)):
                self._grow(left, force=True)
            self.buffer[:left] = memoryview(data)[start:end]
            self.end = left
        elif left == 0:
            self._drop_buffer()
            return
        elif start:  # the next frame began after a complete one: keep it, in a fitting buffer
            capacity = self._wanted_capacity(self.buffer, start, end, current=0)
            self.start, self.end = start, end
            if len(self.buffer) > 2 * capacity:  # shrink after a large frame
                self._shrink(capacity)
            else:
                self.buffer[:left] = self.buffer[start:end]
                self.start, self.end = 0, left
        if self.end == len(self.buffer) and not self._grow(
                self._wanted_capacity(self.buffer, self.start, self.end)):
            self.paused_for_memory = True
            self.server.request_memory.wait(self)
            self._update_reading()

    def retry_memory(self) -> bool:
        """RequestMemoryPool: memory was freed; grow and read again if it is enough."""
        needs_more = self.end > self.start and self.end == len(self.buffer)
        if needs_more and not self._grow(self._wanted_capacity(self.buffer, self.start, self.end)):
            return False
        self.paused_for_memory = False
        self._update_reading()
        return True

    def frame_bytes_max(self) -> int:
        """socket.request.max.bytes, or less before a SASL connection has authenticated."""
        session = self.session
        return session.frame_bytes_max if session is not None else self.server.config.socket_request_max_bytes

    def buffer_updated(self, nbytes: int) -> None:
        self.last_request_ms = now_ms()
        if self.closed:
            return
        if self.shared_read:
            self.shared_read = False
            self._process(self.server.shared_read, 0, nbytes)
        else:
            self.end += nbytes
            self._process(self.buffer, self.start, self.end)

    def _process(self, data: bytearray, start: int, end: int) -> None:
        """Handle the complete frames of data[start:end], keep the rest, send the responses."""
        self.handling = True
        try:
            start = self._handle_frames(data, start, end)
        finally:
            self.handling = False
        if start < 0:
            return  # the connection was closed
        self._keep_incomplete(data, start, end)
        self.flush()
        self.server.after_core_call()
        if len(self.slots) >= limits.inflight_requests_per_connection_max:
            self.paused_for_inflight = True
            self._update_reading()

    def _handle_frames(self, data: bytearray, start: int, end: int) -> int:
        """Hand every complete frame of data[start:end] to the core; where the rest starts, or
        -1 when the connection was closed."""
        while end - start >= 4:
            if self.session is not None and self.session.muted_until_ms > now_ms():
                self._mute()  # a quota throttled this client (KIP-219): read nothing until then
                break
            (size,) = _INT32.unpack_from(data, start)
            maximum = self.frame_bytes_max()
            if size < 0 or size > maximum:
                log.warning("closing connection %s: frame of %d bytes (limit %d)", self.client_host, size, maximum)
                self.abort()
                return -1
            frame_end = start + 4 + size
            if frame_end > end:
                break
            if size >= 2 and data[start + 4] == 0 and data[start + 5] == _PRODUCE:
                # A produce is parsed (kio copies its record sets out) and written before the
                # core returns: it reads the received bytes in place, read-only, and the view is
                # released after, so that nothing can keep it past this buffer's reuse.
                with memoryview(data) as view, view[start + 4 : frame_end].toreadonly() as payload:
                    handled = self.handle(payload)
            else:
                with memoryview(data) as view:
                    payload = bytes(view[start + 4 : frame_end])
                handled = self.handle(payload)
            start = frame_end
            if not handled:
                return -1
        return start

    def _mute(self) -> None:
        """Stop reading until the session's throttle ends, then handle what was buffered."""
        if self.muted or self.transport is None or self.closed:
            return
        self.muted = True
        self.transport.pause_reading()
        delay_s = max(0.0, (self.session.muted_until_ms - now_ms()) / 1000)

        def unmute() -> None:
            self.muted = False
            if not self.closed:
                self._update_reading()
                if self.end > self.start:
                    self._process(self.buffer, self.start, self.end)

        self.server.loop.call_later(delay_s, unmute)

    def handle(self, payload: bytes) -> bool:
        server = self.server
        metrics = server.core.metrics
        started_ns = time.perf_counter_ns()  # request latency, per API key (broker/metrics.py)
        api_key = (payload[0] << 8 | payload[1]) if len(payload) >= 2 else -1
        try:
            result = server.core.handle_request(payload, self.connection_id, self.client_host, now_ms())
        except (MalformedRequest, CloseConnection, struct.error, UnicodeDecodeError) as error:
            metrics.request(api_key, time.perf_counter_ns() - started_ns, error=True)
            log.info("closing connection %s: %s", self.client_host, error)
            self.abort()
            return False
        except Exception:
            metrics.request(api_key, time.perf_counter_ns() - started_ns, error=True)
            log.exception("request from %s failed; closing its connection", self.client_host)
            self.abort()
            return False
        # request_percentage quotas count the time the core spent on the request
        server.core.request_time(self.connection_id, time.perf_counter_ns() - started_ns, now_ms())
        if result is None:
            metrics.request(api_key, time.perf_counter_ns() - started_ns)
            return True  # acks=0: no response
        slot = _Slot()
        self.slots.append(slot)
        if isinstance(result, apis.Delayed):
            self.defer(slot, result, api_key, started_ns)
        else:
            metrics.request(api_key, time.perf_counter_ns() - started_ns)
            slot.frame, slot.ready = result, True
            if not self.handling:
                self.flush()
        if self.session is not None and self.session.failed:
            self.close_after_failed_authentication()
            return False
        return True

    def close_after_failed_authentication(self) -> None:
        """Send the failure, read nothing more, close after connection.failed.authentication.
        delay.ms (Kafka's brake on password guessing; other connections are not delayed)."""
        self.flush()
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()
            self.paused_for_inflight = True  # keeps reading paused through _update_reading
            # abort, not close: a TLS close waits for the peer's close_notify, which a client
            # that is being refused may never send; the response left well before the delay.
            self.server.loop.call_later(self.session.failed_delay_ms / 1000, self.abort)

    def defer(self, slot: _Slot, delayed: apis.Delayed, api_key: int, started_ns: int) -> None:
        loop = self.server.loop
        timer = loop.call_later(max(0.0, (delayed.deadline_ms - now_ms()) / 1000), self._expire, delayed)
        self.pending[delayed] = timer

        def done(frame: bytes) -> None:
            self.server.core.metrics.request(api_key, time.perf_counter_ns() - started_ns)
            timer.cancel()
            self.pending.pop(delayed, None)
            slot.frame, slot.ready = frame, True
            self.flush()

        delayed.callback = done

    def _expire(self, delayed: apis.Delayed) -> None:
        self.server.core.expire(delayed, now_ms())
        self.server.after_core_call()

    def flush(self) -> None:
        if self.closed or self.transport is None:
            return
        slots = self.slots
        frames: list = []
        while slots and slots[0].ready:
            frame = slots.popleft().frame
            if isinstance(frame, list):  # a response in chunks (fetch: header, record sets, ...)
                frames.extend(frame)
            else:
                frames.append(frame)
        if frames:
            try:
                self.transmitter.write(frames)
            except RegionGone as error:  # a deleted or truncated segment under a fetch in flight
                log.warning("closing connection %s on %s: a response's records are gone (%s)",
                            self.client_host, self.listener.name, error)
                self.abort()
                return
        if self.paused_for_inflight and len(slots) < limits.inflight_requests_per_connection_max // 2:
            self.paused_for_inflight = False
            self._update_reading()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.abort()


class ListenError(Exception):
    """The listener cannot be opened (address in use, not an address of this host, ...)."""


class Server:
    def __init__(self, config: BrokerConfig, fs: Any = None,
                 peer_filter: Callable[[int, int], bool] | None = None):
        """`fs`: the file system (the real disk unless given: moldau.Cluster gives a crashable
        one); `peer_filter(source, destination)`: whether two nodes can talk (a simulated
        network partition, moldau.Cluster.isolate)."""
        self.config = config
        self.fs = fs
        self.core: BrokerCore | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: set[_Connection] = set()
        # The read buffer every connection without an incomplete frame reads into, and the
        # bound on all connections' own buffers (queued.max.request.bytes; runtime/memory.py).
        self.shared_read = bytearray(_SHARED_READ_BYTES)
        self.shared_view = memoryview(self.shared_read)
        self.request_memory = memory.RequestMemoryPool(config.queued_max_request_bytes)
        # listener name -> its listening socket server
        self._servers: dict[str, asyncio.base_events.Server] = {}
        self._outbound_security: dict = {}  # role -> runtime/outbound.OutboundSecurity
        self._tick_task: asyncio.Task | None = None
        self._next_connection_id = 0
        self.port: int = 0
        # The one timer armed for the core's earliest deadline (BrokerCore.next_deadline_ms).
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_ms: int | None = None
        self._data_dir_lock: data_dir.DataDirLock | None = None
        self.metrics_server = None  # runtime/metrics.py, when metrics.port is set
        from moldau.runtime.peers import PeerManager

        self.peers = PeerManager(self, peer_filter)  # connections to the other nodes of the cluster
        # Set when the node cannot go on (a misconfigured quorum, a duplicate node.id): the
        # reason, one line; `moldau server` prints it and exits.
        self.fatal_error: str | None = None
        self.failed: asyncio.Event | None = None
        self.health: LoopHealth | None = None  # event-loop lag, GC, tick and disk-write times

    async def start(self) -> tuple[str, int]:
        """Lock the data directory (held until stop), bind every listener, then start the core
        (it registers the bound ports), then accept connections. Returns the first broker
        listener's (host, port). DataDirError and ListenError carry one-line messages that name
        the real cause (the directory, or the address)."""
        self.loop = asyncio.get_running_loop()
        # (a file system of the caller's — moldau.Cluster's in-memory disks — has nothing to lock)
        self._data_dir_lock = data_dir.take(self.config.data_dir) if self.fs is None else None
        config = self.config
        try:
            await self.start_metrics()  # early, so that /health/ready says "not yet" meanwhile
            for listener in list(config.listeners):
                await self._bind(listener)
            if any(l.host in ("", "0.0.0.0", "::") for l in config.listeners):
                config.wildcard_advertised_host = socket.getfqdn()
            config.check_voter_address()
            self.core = BrokerCore(config, self.fs or OsFileSystem(), uuid.uuid4, now_ms(), self._disk_usage)
            if config.bootstrap_scram:  # --add-scram: written once by whichever node becomes controller
                self.core.add_scram_credentials(config.bootstrap_scram)
            self.failed = asyncio.Event()
        except BaseException:
            for server in self._servers.values():
                server.close()
            if self._data_dir_lock is not None:
                self._data_dir_lock.release()
            raise
        run_background_on = getattr(self.core.fs, "run_background_on", None)
        if run_background_on is not None:  # rolled segments are flushed off the loop's thread
            run_background_on(self.loop.call_soon_threadsafe)
        for server in self._servers.values():
            await server.start_serving()
        self.port = config.port
        self._tick_task = asyncio.create_task(self._tick_forever())
        self.after_core_call()
        self.health = LoopHealth(self.loop)
        self.health.start()
        return config.host, self.port

    async def wait_running(self, timeout_s: float | None = None) -> bool:
        """Wait until the broker is registered, unfenced and acting on its partitions (a quorum
        of one gets there in milliseconds; a cluster node once a quorum of controllers is up).
        False on a fatal error or when `timeout_s` passed first."""
        deadline = None if timeout_s is None else self.loop.time() + timeout_s
        while self.core is not None and not self.core.running:
            if self.fatal_error is not None or (deadline is not None and self.loop.time() >= deadline):
                return False
            await asyncio.sleep(0.01)
        return self.core is not None

    async def controlled_shutdown(self, timeout_s: float) -> None:
        """Ask the controller to move this broker's leaderships away, and wait until it says
        the broker may stop (or `timeout_s` passed): clients see a clean handover instead of
        a dead leader."""
        core = self.core
        if core is None or core.lifecycle is None:
            return
        from moldau.broker.lifecycle import SHUTTING_DOWN

        core.lifecycle.begin_controlled_shutdown(now_ms())
        self.after_core_call()
        deadline = self.loop.time() + timeout_s
        while core.lifecycle.state != SHUTTING_DOWN and self.loop.time() < deadline and self.fatal_error is None:
            await asyncio.sleep(0.02)

    async def _bind(self, listener: Listener) -> None:
        context = tls.server_context(self.config, listener) if listener.uses_tls else None
        try:
            server = await self.loop.create_server(
                lambda: self._new_connection(listener), listener.host or None, listener.port,
                reuse_address=True, backlog=1024, ssl=context, start_serving=False,
            )
        except OSError as error:
            raise ListenError(f"cannot listen on {listener.host or '0.0.0.0'}:{listener.port} "
                              f"(listener {listener.name}): {error.strerror or error}") from None
        self._servers[listener.name] = server
        if listener.port == 0:
            self.config.listener_settings.rebind(listener.name, port=server.sockets[0].getsockname()[1])

    def outbound_security(self, role: str):
        """How this node connects to another node's broker or controller listener (role
        "broker" / "controller", protocol/rpc.py's BROKER / CONTROLLER): the TLS context and
        the SASL credentials (runtime/outbound.py). Built once per role."""
        from moldau.runtime.outbound import outbound_security

        if role not in self._outbound_security:
            self._outbound_security[role] = outbound_security(self.config, role)
        return self._outbound_security[role]

    def outbound_tls_context(self, role: str):
        """The TLS context for a connection to another node's listener (None: plaintext)."""
        return self.outbound_security(role).ssl_context

    def listener_port(self, name: str) -> int:
        """The port a listener is bound to (its configured one, or the one port 0 got)."""
        listener = self.config.listener_settings.listener(name)
        if listener is None:
            raise KeyError(name)
        return listener.port

    async def start_metrics(self) -> None:
        """Serve /metrics and /health/* on metrics.port (runtime/metrics.py), when it is set."""
        if self.config.metrics_port is None or self.metrics_server is not None:
            return
        from moldau.runtime.metrics import MetricsServer

        self.metrics_server = MetricsServer(self.config.host, self.config.metrics_port, lambda: self, self.ready)
        self.config.metrics_port = await self.metrics_server.start()

    def ready(self) -> tuple[bool, str]:
        """Whether this node serves Kafka requests (its /health/ready), and why not."""
        if not self._servers or not all(server.is_serving() for server in self._servers.values()):
            return False, "the Kafka listeners are not accepting connections"
        if self.core is None:
            return False, "recovering the logs and replaying the metadata log"
        # In a cluster the core says when it is registered, unfenced and caught up with the
        # metadata log (BrokerCore.running); a single node's core serves as soon as it exists.
        if getattr(self.core, "running", True) is False:
            return False, "registering with the controller and catching up with the metadata log"
        return True, "serving requests"

    def _new_connection(self, listener: Listener) -> _Connection:
        if len(self.connections) >= limits.connections_max:
            raise ConnectionRefusedError("too many connections")
        self._next_connection_id += 1
        return _Connection(self, self._next_connection_id, listener)

    def _disk_usage(self) -> tuple[int, int]:
        stats = os.statvfs(self.config.data_dir)
        return stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(_TICK_INTERVAL_S)
            try:
                self.health.timed_tick(self.core.tick, now_ms())
            except Exception:
                log.exception("periodic broker work failed")
            self.after_core_call()
            self._close_idle(now_ms())
            self._give_memory_back()

    def _give_memory_back(self) -> None:
        """After a storm of large requests, once their buffers are all free: hand the memory
        back to the OS (runtime/memory.py), so the broker's size returns to what it was."""
        pool = self.request_memory
        if pool.used_bytes == 0 and pool.peak_bytes >= limits.memory_trim_after_bytes:
            pool.peak_bytes = 0
            memory.trim()

    def after_core_call(self) -> None:
        """Send what the core queued for other nodes, and keep a timer armed for the core's
        earliest deadline. Called after every entry into the core (requests, responses from
        other nodes, timers, ticks), since any of them may queue messages or move a deadline."""
        core = self.core
        if core is None:
            return
        if core.outbox:
            outbox, core.outbox = core.outbox, []
            now = now_ms()
            for request in outbox:
                self.peers.send(request, now)
        self._check_fatal(core)
        deadline = core.next_deadline_ms()
        if deadline == self._deadline_ms:
            return
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._deadline_ms = deadline
        if deadline is not None:
            # At least a millisecond: a part whose deadline did not move cannot spin the loop.
            delay_s = max(0.001, (deadline - now_ms()) / 1000)
            self._deadline_timer = self.loop.call_later(delay_s, self._run_deadlines)

    def _check_fatal(self, core) -> None:
        reason = core.fatal_error()
        if reason is not None and self.fatal_error is None:
            self.fatal_error = reason
            log.error("%s", reason)
            if self.failed is not None:
                self.failed.set()

    def _run_deadlines(self) -> None:
        self._deadline_timer = None
        self._deadline_ms = None
        if self.core is None:
            return
        try:
            self.core.run_deadlines(now_ms())
        except Exception:
            log.exception("timed broker work failed")
        self.after_core_call()

    def _close_idle(self, now: int) -> None:
        """Close connections that sent nothing for connections.max.idle.ms and wait for nothing."""
        idle_ms = self.config.connections_max_idle_ms
        if idle_ms < 0:
            return
        for connection in [c for c in self.connections if now - c.last_request_ms > idle_ms]:
            if not connection.pending and not connection.slots:
                log.info("closing connection %s: idle for over %d ms", connection.client_host, idle_ms)
                connection.abort()

    async def abort(self) -> None:
        """Stop at once, as a killed process would: nothing is flushed or closed cleanly."""
        core, self.core = self.core, None
        await self._close_sockets()
        del core

    async def _close_sockets(self) -> None:
        self.peers.close()
        if self.health is not None:
            self.health.stop()
        if self._tick_task is not None:
            self._tick_task.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        for server in self._servers.values():
            server.close()
        for connection in list(self.connections):
            connection.abort()
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            self.metrics_server = None
        if self._data_dir_lock is not None:
            self._data_dir_lock.release()  # as the OS would for a killed process
            self._data_dir_lock = None

    async def stop(self) -> None:
        self.peers.close()
        if self.health is not None:
            self.health.stop()
        if self._tick_task is not None:
            self._tick_task.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        for server in self._servers.values():
            server.close()
        for connection in list(self.connections):
            connection.abort()
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()
        if self.core is not None:
            self.core.close()
            self.core = None
        if self.metrics_server is not None:
            await self.metrics_server.stop()
            self.metrics_server = None
        if self._data_dir_lock is not None:
            self._data_dir_lock.release()  # last: nothing writes to the directory any more
