"""The deterministic simulation's machinery: virtual time, a faulty network, crashable nodes.

Theory of operation
-------------------
Everything runs in one thread on virtual time. `EventQueue` is a heap of (time, sequence,
callback); `run_until(t)` pops events in order and calls `after_step` after each one (that is
where invariants are checked). Nothing reads the wall clock and every random choice comes from
one `random.Random` seeded by the scenario's seed, so a seed replays exactly.

`Network` moves Kafka frames (bytes, see sim_wire.py) between nodes. Each transmission is
dropped with probability `loss`, delayed uniformly in [delay_min_ms, delay_max_ms] (so messages
reorder), and duplicated with probability `duplicate` (the receiver handles the request twice;
the sender's runtime matches the first answer by correlation id and drops the rest, as a real
connection does). A partition blocks node pairs both when a message is sent and when it would
arrive (`cut_one_way` blocks one direction only). A request that gets no answer within its
`timeout_ms` is failed: the sender's `on_response(None, now)` runs, as the runtime does on a
timeout or a broken connection.

`SimNode` is the runtime of one node around a sans-I/O core (anything with `outbox`,
`next_deadline_ms()`, `run_deadlines(now)` and a request handler): after every call into the
core it drains the outbox into the network, re-tries held requests when the core's `version`
changed, and keeps one timer armed at the core's next deadline. `crash(mode)` drops the core
and makes its `MemoryFileSystem` lose what a power loss ("drop"/"tear") or a process kill
("keep") would lose; `start()` builds a new core on the same file system. Messages addressed
to an earlier incarnation (answers to its requests, its timers) are discarded. Every call
into the core sets `touched`, so invariant checks may skip the nodes a step did not touch.

Subclasses say how to build the core and how to hand it a request (`make_core`,
`handle(api_key, version, body, now, expired)`); the Raft simulation is raft_sim.py, and the
whole-cluster simulation builds on the same pieces. `FaultPlan` holds the knobs of a
scenario's fault schedule (a simulation maps each kind in `weights` to a `_fault_<kind>`).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import multiprocessing
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from moldau.log.memory_fs import MemoryFileSystem
from moldau.protocol.rpc import OutboundRequest

import sim_wire


class EventQueue:
    def __init__(self) -> None:
        self.now_ms = 0
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._sequence = 0
        self.steps = 0

    def at(self, time_ms: int, callback: Callable[[], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (max(time_ms, self.now_ms), self._sequence, callback))

    def after(self, delay_ms: int, callback: Callable[[], None]) -> None:
        self.at(self.now_ms + delay_ms, callback)

    def run_until(self, time_ms: int, after_step: Callable[[], None] | None = None) -> None:
        heap = self._heap
        while heap and heap[0][0] <= time_ms:
            when, _, callback = heapq.heappop(heap)
            self.now_ms = when
            callback()
            self.steps += 1
            if after_step is not None:
                after_step()
        self.now_ms = max(self.now_ms, time_ms)


@dataclass
class NetConfig:
    delay_min_ms: int = 1
    delay_max_ms: int = 10
    loss: float = 0.0
    duplicate: float = 0.0


@dataclass
class _Pending:
    source: "SimNode"
    incarnation: int
    request: OutboundRequest
    answered: bool = False


class Network:
    def __init__(self, queue: EventQueue, rng: random.Random, config: NetConfig | None = None) -> None:
        self.queue = queue
        self.rng = rng
        self.config = config or NetConfig()
        self.nodes: dict[int, SimNode] = {}
        self.blocked: set[tuple[int, int]] = set()
        self._correlation = 0
        self._pending: dict[int, _Pending] = {}
        self.messages = 0

    # --- partitions -------------------------------------------------------------------------
    def can_talk(self, a: int, b: int) -> bool:
        return (a, b) not in self.blocked

    def isolate(self, node_id: int) -> None:
        for other in sorted(self.nodes):
            if other != node_id:
                self.blocked |= {(node_id, other), (other, node_id)}

    def split(self, group: set[int]) -> None:
        """Cut `group` off from the other nodes (both directions)."""
        for a in sorted(group):
            for b in sorted(set(self.nodes) - group):
                self.blocked |= {(a, b), (b, a)}

    def cut_one_way(self, sender: int, receiver: int) -> None:
        """An asymmetric fault: `sender`'s messages no longer reach `receiver`."""
        self.blocked.add((sender, receiver))

    def heal(self) -> None:
        self.blocked.clear()

    # --- requests and responses -------------------------------------------------------------
    def send(self, source: "SimNode", request: OutboundRequest) -> None:
        self._correlation += 1
        correlation = self._correlation
        frame = sim_wire.encode_request(request.api_key, request.api_version, correlation,
                                        f"node-{source.node_id}", request.body)
        self._pending[correlation] = _Pending(source, source.incarnation, request)
        self.queue.after(request.timeout_ms, lambda: self._complete(correlation, None))
        destination = self.nodes.get(request.destination)
        if destination is None:
            return  # no such node: the request times out

        # One connection per (sender incarnation, listener, channel), as the runtime keeps them:
        # the receiver answers a connection's requests in the order they arrived.
        connection = (source.node_id, source.incarnation, request.listener, request.channel)

        def arrive() -> None:
            if destination.alive:
                destination.receive(source.node_id, frame,
                                    lambda reply: self._reply(destination.node_id, source.node_id,
                                                              correlation, reply),
                                    connection=connection)

        self._transmit(source.node_id, request.destination, arrive)

    def _reply(self, sender: int, receiver: int, correlation: int, frame: bytes) -> None:
        self._transmit(sender, receiver, lambda: self._complete(correlation, frame))

    def _transmit(self, sender: int, receiver: int, arrive: Callable[[], None]) -> None:
        config = self.config
        self.messages += 1
        if not self.can_talk(sender, receiver) or self.rng.random() < config.loss:
            return
        copies = 2 if self.rng.random() < config.duplicate else 1
        for _ in range(copies):
            delay = self.rng.randint(config.delay_min_ms, config.delay_max_ms)

            def deliver() -> None:
                if self.can_talk(sender, receiver):
                    arrive()

            self.queue.after(delay, deliver)

    def _complete(self, correlation: int, frame: bytes | None) -> None:
        pending = self._pending.get(correlation)
        if pending is None or pending.answered:
            return
        pending.answered = True
        del self._pending[correlation]
        source = pending.source
        if not source.alive or source.incarnation != pending.incarnation:
            return
        body = None
        if frame is not None:
            request = pending.request
            _, body = sim_wire.decode_response(frame, request.api_key, request.api_version)
        source.deliver_response(pending.request, body)


@dataclass
class _Held:
    api_key: int
    api_version: int
    body: Any
    reply: Callable[[Any], None]
    deadline_ms: int
    version: int
    done: bool = False


class SimNode:
    """One node's runtime around a sans-I/O core; subclasses build and call the core."""

    def __init__(self, node_id: int, queue: EventQueue, network: Network, rng: random.Random) -> None:
        self.node_id = node_id
        self.queue = queue
        self.network = network
        self.rng = rng
        self.fs = MemoryFileSystem()
        self.core: Any = None
        self.incarnation = 0
        self._held: list[_Held] = []
        self._timer_at: int | None = None
        # Set by every call into the core: invariant checks need only look at touched nodes.
        self.touched = True
        network.nodes[node_id] = self

    # --- to be provided by the subclass -----------------------------------------------------
    def make_core(self, now_ms: int) -> Any:
        raise NotImplementedError

    def handle(self, api_key: int, api_version: int, body: Any, now_ms: int, expired: bool) -> Any:
        raise NotImplementedError

    def max_wait_ms(self, api_key: int, body: Any) -> int:
        """How long a request the core did not answer yet may be held."""
        raise NotImplementedError

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.core is not None

    def start(self) -> None:
        assert self.core is None, f"node {self.node_id} is already running"
        self.incarnation += 1
        self._timer_at = None
        self.core = self.make_core(self.queue.now_ms)
        self.after_call()

    def crash(self, mode: str) -> None:
        """Kill the node: the core is gone, unsynced bytes are lost per `mode`."""
        if self.core is None:
            return
        self.core = None
        self._held = []
        self.incarnation += 1
        self.fs.crash(mode, self.rng)

    # --- calls into the core --------------------------------------------------------------------
    def receive(self, source: int, frame: bytes, reply: Callable[[bytes], None], connection: Any = None) -> None:
        header, body = sim_wire.decode_request(frame)
        key, version = header.api_key, header.api_version

        def send_reply(response: Any) -> None:
            reply(sim_wire.encode_response(key, version, header.correlation_id, response))

        response = self.handle(key, version, body, self.queue.now_ms, False)
        if response is None:
            held = _Held(key, version, body, send_reply,
                         self.queue.now_ms + self.max_wait_ms(key, body), self.core.version)
            self._held.append(held)
            incarnation = self.incarnation
            self.queue.at(held.deadline_ms, lambda: self._expire(held, incarnation))
        else:
            send_reply(response)
        self.after_call()

    def deliver_response(self, request: OutboundRequest, body: Any) -> None:
        request.on_response(body, self.queue.now_ms)
        self.after_call()

    def _expire(self, held: _Held, incarnation: int) -> None:
        if held.done or incarnation != self.incarnation or self.core is None:
            return
        held.done = True
        self._held.remove(held)
        held.reply(self.handle(held.api_key, held.api_version, held.body, self.queue.now_ms, True))
        self.after_call()

    def _on_timer(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.core is None:
            return
        self._timer_at = None
        deadline = self.core.next_deadline_ms()
        if deadline is not None and deadline <= self.queue.now_ms:
            self.core.run_deadlines(self.queue.now_ms)
            after = self.core.next_deadline_ms()
            # The runtime's contract: after run_deadlines(now) the next deadline lies after now
            # (otherwise a real event loop would spin).
            assert after is None or after > self.queue.now_ms, (
                f"node {self.node_id}: deadline {after} still due after run_deadlines({self.queue.now_ms})")
        self.after_call()

    def after_call(self) -> None:
        """Drain the outbox, retry held requests if the core changed, arm the timer."""
        self.touched = True
        core = self.core
        if core is None:
            return
        for _ in range(16):
            outbox, core.outbox = core.outbox, []
            for request in outbox:
                self.network.send(self, request)
            if not self._retry_held() and not core.outbox:
                break
        deadline = core.next_deadline_ms()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._timer_at = deadline
            incarnation = self.incarnation
            self.queue.at(deadline, lambda: self._on_timer(incarnation))

    def _retry_held(self) -> bool:
        answered = False
        for held in list(self._held):
            if held.done or held.version == self.core.version:
                continue
            held.version = self.core.version
            response = self.handle(held.api_key, held.api_version, held.body, self.queue.now_ms, False)
            if response is not None:
                held.done = True
                self._held.remove(held)
                held.reply(response)
                answered = True
        return answered


@dataclass
class FaultPlan:
    """What a scenario may do to the cluster while faults are on."""

    crash_modes: tuple[str, ...] = ("drop", "tear", "keep")
    step_ms: tuple[int, int] = (100, 700)  # time between two fault actions
    down_ms: tuple[int, int] = (50, 1500)  # how long a crashed node stays down
    losses: tuple[float, ...] = (0.0, 0.0, 0.01, 0.05, 0.2)
    duplicates: tuple[float, ...] = (0.0, 0.0, 0.02)
    delays_ms: tuple[tuple[int, int], ...] = ((1, 5), (1, 20), (5, 60))
    weights: dict[str, int] = field(default_factory=lambda: {
        "crash": 3, "isolate": 2, "split": 2, "one_way": 1, "heal": 2, "network": 2, "resign": 1,
        "idle": 2})


@contextlib.contextmanager
def forked_pool(workers: int) -> Iterator[Any]:
    """A fork-based process pool whose children never garbage-collect what they inherit: the
    test process holds librdkafka handles of earlier tests, and a child that collects one
    destroys it without the threads it belongs to — a segmentation fault (a CI run's cluster
    simulation died so). gc.freeze() moves every object to the permanent generation first."""
    gc.freeze()
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield pool
    finally:
        gc.unfreeze()
