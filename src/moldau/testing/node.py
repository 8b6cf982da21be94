"""`LocalNode`: one broker core on virtual time, for unit tests — no sockets, no event loop.

A `BrokerCore` talks to its controller (itself, on one node) through requests in its outbox;
the runtime delivers them over a socket. Here `pump()` delivers every request the core sent
itself — encoded and decoded like real ones, through `handle_request` — and runs every
deadline that is due, until nothing is left to do; `advance(ms)` moves the clock and pumps.
A fresh node pumps until its broker is registered and running, as `moldau server` waits.

    node = LocalNode()                       # an in-memory file system unless one is given
    node.create_topic("t", partitions=3)     # committed and applied when it returns
    node.core.partition("t", 0)

Requests to another node id cannot be delivered here (use the cluster simulation in
tests/sim, or `moldau.Cluster`); they fail as an unreachable node's would — or, with
`node.hold_remote = True`, wait in `node.remote` for the test to answer them by hand
(`request.on_response(kio_response, now)`), playing the other node.
"""

from __future__ import annotations

import random
import uuid
from typing import Any, Callable

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log.memory_fs import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.rpc import OutboundRequest

LOOPBACK_CONNECTION_ID = -1
_PUMP_ROUNDS_MAX = 10_000


def counting_uuids(start: int = 1) -> Callable[[], uuid.UUID]:
    counter = iter(range(start, 10**12))
    return lambda: uuid.UUID(int=next(counter))


class LocalNode:
    def __init__(self, fs: Any = None, config: BrokerConfig | None = None, now_ms: int = 1_000_000,
                 new_uuid: Callable[[], uuid.UUID] | None = None, seed: int = 0, wait_running: bool = True,
                 disk_usage: Callable[[], tuple[int, int]] | None = None):
        self.fs = fs if fs is not None else MemoryFileSystem()
        self.config = config or BrokerConfig(data_dir="/data")
        self.now_ms = now_ms
        self.new_uuid = new_uuid or counting_uuids()
        self.waiting: list[tuple[apis.Delayed, OutboundRequest]] = []
        self.hold_remote = False
        self.remote: list[OutboundRequest] = []  # requests to other nodes, when held
        self.disk_usage = disk_usage or (lambda: (-1, -1))
        self.core = BrokerCore(self.config, self.fs, self.new_uuid, now_ms, self.disk_usage, rng=random.Random(seed))
        if wait_running:
            self.pump()
            assert self.core.running, f"the node did not start: {self.core.lifecycle.state}"

    # --- driving ----------------------------------------------------------------------------
    def pump(self) -> None:
        """Deliver the core's requests to itself and run due deadlines until it is quiet."""
        core = self.core
        for _ in range(_PUMP_ROUNDS_MAX):
            if core.outbox:
                outbox, core.outbox = core.outbox, []
                for request in outbox:
                    self._deliver(request)
                continue
            deadline = core.next_deadline_ms()
            if deadline is not None and deadline <= self.now_ms:
                core.run_deadlines(self.now_ms)
                continue
            return
        raise AssertionError("the core never went quiet (a deadline that does not move?)")

    def advance(self, ms: int, step_ms: int = 50) -> None:
        """Move the clock forward by `ms`, running what falls due along the way."""
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms = min(end, self.now_ms + step_ms)
            self._expire_waiting()
            self.core.tick(self.now_ms)
            self.pump()

    def advance_to(self, now_ms: int, step_ms: int = 1_000) -> None:
        """Move the clock to `now_ms` (if it is ahead), running what falls due along the way:
        the node's own heartbeats keep it registered, as its runtime would."""
        if now_ms > self.now_ms:
            self.advance(now_ms - self.now_ms, step_ms)

    def _expire_waiting(self) -> None:
        for delayed, request in list(self.waiting):
            if delayed.done:
                self.waiting.remove((delayed, request))
            elif delayed.deadline_ms <= self.now_ms:
                self.core.expire(delayed, self.now_ms)

    def _deliver(self, request: OutboundRequest) -> None:
        core = self.core
        if request.destination != core.node_id:
            if self.hold_remote:
                self.remote.append(request)
            else:
                request.on_response(None, self.now_ms)  # no other node here
            return
        payload = codec.encode_request(request.api_key, request.api_version, 0, "local", request.body)[4:]
        core.open_internal_session(LOOPBACK_CONNECTION_ID)
        result = core.handle_request(payload, LOOPBACK_CONNECTION_ID, "127.0.0.1", self.now_ms)
        if isinstance(result, apis.Delayed):
            result.callback = lambda frame, request=request: self._answer(request, frame)
            self.waiting.append((result, request))
        else:
            self._answer(request, result)

    def _answer(self, request: OutboundRequest, frame: Any) -> None:
        if frame is None:
            request.on_response(None, self.now_ms)
            return
        data = b"".join(bytes(c) for c in frame) if isinstance(frame, list) else bytes(frame)
        _cid, response = codec.read_response(request.api_key, request.api_version, memoryview(data)[4:])
        request.on_response(response, self.now_ms)

    # --- conveniences for tests -----------------------------------------------------------------
    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 1,
                     configs: dict[str, str | None] | None = None, **kwargs: Any) -> Any:
        """Create a topic through the controller and return its image once it is applied."""
        self.core.controller.create_topic(name, partitions, replication_factor, configs or {},
                                          now_ms=self.now_ms, **kwargs)
        self.pump()
        return self.core.image.topic(name)

    def request(self, api_key: int, api_version: int, body: Any, connection_id: int = 1) -> Any:
        """Send one request as a client would and return the decoded response (pumping until a
        delayed response is ready, advancing the clock up to its deadline if needed)."""
        payload = codec.encode_request(api_key, api_version, 7, "test-client", body)[4:]
        frame = self.handle(payload, connection_id)
        if frame is None:
            return None
        return codec.read_response(api_key, api_version, memoryview(frame)[4:])[1]

    def handle(self, payload: bytes, connection_id: int = 1) -> bytes | None:
        """`core.handle_request` as the runtime runs it: the response frame (size prefix
        included) once it is ready — pumping, and advancing the clock up to a delayed
        response's deadline if needed — or None when there is no response."""
        result = self.core.handle_request(payload, connection_id, "127.0.0.1", self.now_ms)
        self.pump()
        if isinstance(result, apis.Delayed):
            frames: list = []
            result.callback = frames.append
            while not frames:
                if result.deadline_ms <= self.now_ms:
                    self.core.expire(result, self.now_ms)
                    self.pump()
                    break
                self.advance(10, step_ms=10)
            result = frames[0]
        if result is None:
            return None
        return b"".join(bytes(c) for c in result) if isinstance(result, list) else bytes(result)

    def restart(self, crash: str | None = None) -> "LocalNode":
        """A new core on the same files: after close (clean), or after `fs.crash(crash)`."""
        if crash is None:
            self.core.close()
        else:
            self.fs.crash(crash)
        self.waiting = []
        self.core = BrokerCore(self.config, self.fs, self.new_uuid, self.now_ms, self.disk_usage, rng=random.Random(1))
        self.pump()
        return self


class _Committing:
    """The controller's operations, each followed by a pump: committed and applied on return."""

    def __init__(self, node: LocalNode):
        self._node = node

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._node.core.controller, name)
        if not callable(operation):
            return operation

        def call(*args: Any, **kwargs: Any) -> Any:
            result = operation(*args, **kwargs)
            self._node.pump()
            return result

        return call


def local_core(config: BrokerConfig | None = None, fs: Any = None, new_uuid: Callable[[], uuid.UUID] | None = None,
               now_ms: int = 1_000_000, disk_usage: Callable[[], tuple[int, int]] | None = None) -> BrokerCore:
    """A running single-node core (LocalNode's); `committed(core)` reaches its controller."""
    node = LocalNode(fs, config, now_ms, new_uuid, disk_usage=disk_usage)
    node.core.local_node = node  # type: ignore[attr-defined]
    return node.core


def committed(core: BrokerCore) -> Any:
    """`committed(core).create_topic(...)`: the controller call, committed and applied."""
    return _Committing(core.local_node)  # type: ignore[attr-defined]
