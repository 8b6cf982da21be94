"""The whole cluster under simulation: N `BrokerCore`s — metadata quorum, controller, brokers,
partition replication — on the simulated network, with acks=all producers, crashes, restarts,
partitions and a faulty network, checked after every step.

Theory of operation
-------------------
Each node is a real `BrokerCore` (combined broker and controller) on its own crashable
`MemoryFileSystem`; requests reach it as Kafka frames through `handle_request`, exactly as from
a socket, and its outbox goes out on the simulated network (sim_harness.py). A client node
creates one topic (2 partitions, RF 3, min.insync.replicas 2) through the active controller,
then keeps sending acks=all Produce requests (one single-record batch each, a unique value) to
the leader the freshest metadata image names; a batch is acknowledged when its answer says so.

A seed picks the scenario, including its durability model: either the topic keeps Kafka's
default (no fsync: durability comes from replication) and crashes are process kills, which keep
what was written; or the topic sets flush.messages=1 and crashes may also be power losses that
drop or tear unsynced bytes. The metadata quorum fsyncs in both, and may lose power in both.

After every event, `ClusterInvariants.check` asserts the quorum's invariants (raft_sim's, on
each node's Raft client) and the cluster's:
- every committed image has leader ∈ ISR ⊆ replicas for every partition;
- a leader's high watermark never moves back within its leader epoch;
- the committed prefix of each partition never changes: every replica's log below its high
  watermark matches one global committed log, batch by batch (offsets, CRC);
- no acknowledged record is lost: every acknowledged batch is in the global committed log at
  its offset (checked as the run goes, and again on every replica at the end).
Then faults stop and within `converge_ms` the cluster must converge: every node running and
unfenced, every partition led, its ISR every replica, every replica's log identical to the
leader's up to a high watermark equal to the log end.
"""

from __future__ import annotations

import collections
import datetime
import random
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.produce.v9 import request as produce_request

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.protocol import codec
from moldau.protocol.rpc import OutboundRequest
from moldau.records import Record, build_batch, iterate_batches

import sim_wire
from raft_sim import SIM_CONFIG as RAFT_TIMING, RaftInvariants, SimulationFailure
from sim_harness import EventQueue, FaultPlan, NetConfig, Network, SimNode

TOPIC = "t"
PARTITIONS = 2
CLIENT_ID = 1000
CLUSTER_ID = "MoldauSimCluster00000A"
# Kafka's broker timings scaled down about ten times, so a few virtual seconds hold many
# fencings, elections and ISR changes.
SIM_TIMING = {
    "broker.heartbeat.interval.ms": "50", "broker.session.timeout.ms": "400",
    "replica.lag.time.max.ms": "1000", "replica.fetch.wait.max.ms": "50", "replica.fetch.backoff.ms": "50",
    "leader.imbalance.check.interval.seconds": "1", "replica.socket.timeout.ms": "500",
    "controller.socket.timeout.ms": "500", **RAFT_TIMING,
}
TICK_MS = 100
_CRC = struct.Struct(">I")


def batch_crc(batch: bytes) -> int:
    return _CRC.unpack_from(batch, 17)[0]


class ClusterSimNode(SimNode):
    def __init__(self, node_id: int, voters: dict[int, tuple[str, int]], queue: EventQueue, network: Network,
                 rng: random.Random) -> None:
        super().__init__(node_id, queue, network, rng)
        voter_text = ",".join(f"{i}@sim:{port}" for i, (_h, port) in sorted(voters.items()))
        self.properties = {"node.id": str(node_id), "process.roles": "broker,controller",
                           "listeners": f"PLAINTEXT://sim:{9092 + node_id},CONTROLLER://sim:{9192 + node_id}",
                           "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voter_text,
                           "cluster.id": CLUSTER_ID, "default.replication.factor": "3",
                           "offsets.topic.replication.factor": "3", **SIM_TIMING}
        self._uuids = random.Random(rng.getrandbits(64))
        self._answers: dict[tuple, collections.deque] = {}  # per connection, answers in request order

    def make_core(self, now_ms: int) -> BrokerCore:
        config = BrokerConfig.from_properties(self.properties)
        config.data_dir = "/data"
        core = BrokerCore(config, self.fs, lambda: uuid.UUID(int=self._uuids.getrandbits(128)), now_ms,
                          rng=random.Random(self.rng.getrandbits(64)))
        incarnation = self.incarnation  # start() counted this incarnation before make_core
        self.queue.after(TICK_MS, lambda: self._tick(incarnation))
        return core

    def _tick(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.core is None:
            return
        self.core.tick(self.queue.now_ms)
        self.after_call()
        self.queue.after(TICK_MS, lambda: self._tick(incarnation))

    def receive(self, source: int, frame: bytes, reply, connection: Any = None) -> None:
        """Hand a request to the core; answers leave in the order their connection's requests
        came, as a real broker's do: an answer waits behind an earlier one still held."""
        core = self.core
        result = core.handle_request(memoryview(frame)[4:], source, f"node-{source}", self.queue.now_ms)
        if result is None:  # acks=0
            self.after_call()
            return
        answers = self._answers.setdefault((self.incarnation, connection), collections.deque())
        slot = [reply, None]
        answers.append(slot)
        if isinstance(result, apis.Delayed):
            incarnation = self.incarnation

            def done(answer: Any) -> None:
                if incarnation == self.incarnation:
                    slot[1] = _joined(answer)
                    self._flush(answers)
            result.callback = done
            self.queue.at(result.deadline_ms, lambda: self._expire_delayed(result, incarnation))
        else:
            slot[1] = _joined(result)
            self._flush(answers)
        self.after_call()

    @staticmethod
    def _flush(answers: "collections.deque[list]") -> None:
        while answers and answers[0][1] is not None:
            reply, frame = answers.popleft()
            reply(frame)

    def crash(self, mode: str) -> None:
        super().crash(mode)
        self._answers.clear()

    def _expire_delayed(self, delayed: apis.Delayed, incarnation: int) -> None:
        if incarnation != self.incarnation or self.core is None or delayed.done:
            return
        self.core.expire(delayed, self.queue.now_ms)
        self.after_call()


def _joined(frame: Any) -> bytes:
    return b"".join(bytes(chunk) for chunk in frame) if isinstance(frame, list) else bytes(frame)


class ClientNode(SimNode):
    """The producing client: it has no core; responses come back through `deliver_response`."""

    def __init__(self, queue: EventQueue, network: Network, rng: random.Random) -> None:
        super().__init__(CLIENT_ID, queue, network, rng)
        self.core = object()  # alive; nothing to drive
        self.incarnation = 1

    def after_call(self) -> None:
        pass

    def deliver_response(self, request: OutboundRequest, body: Any) -> None:
        request.on_response(body, self.queue.now_ms)


@dataclass
class _View:
    """A node as RaftInvariants sees it: its Raft client as `core`."""

    node: ClusterSimNode

    @property
    def node_id(self) -> int:
        return self.node.node_id

    @property
    def incarnation(self) -> int:
        return self.node.incarnation

    @property
    def core(self) -> Any:
        return self.node.core.raft if self.node.core is not None else None


@dataclass
class ClusterInvariants:
    sim: "ClusterSimulation"
    raft: RaftInvariants = None  # type: ignore[assignment]
    # partition -> {base offset: (last offset, crc)}: the committed log as far as seen
    committed: dict[int, dict[int, tuple[int, int]]] = field(default_factory=dict)
    committed_end: dict[int, int] = field(default_factory=dict)
    checked: dict[tuple[int, int, int], int] = field(default_factory=dict)  # (node, incarnation, partition)
    leader_hw: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)
    acknowledged: dict[int, tuple[int, int]] = field(default_factory=dict)  # crc -> (partition, offset)
    image_checked: dict[tuple[int, int], int] = field(default_factory=dict)  # (node, incarnation) -> offset
    signatures: dict[int, tuple] = field(default_factory=dict)  # node -> state at the last check

    def __post_init__(self) -> None:
        self.raft = RaftInvariants(_RaftSim(self.sim))
        self.raft_views = self.raft.sim.nodes

    def fail(self, message: str) -> None:
        raise SimulationFailure(f"t={self.sim.queue.now_ms}ms: {message}")

    def check(self) -> None:
        """Every invariant, after every step; a node whose state did not move since the last
        step (most nodes, most steps) is skipped — nothing about it can have broken."""
        for node_id, node in sorted(self.sim.nodes.items()):
            core = node.core
            if core is None:
                continue
            signature = _signature(node)
            if self.signatures.get(node_id) == signature:
                continue
            self.signatures[node_id] = signature
            self._check_raft(self.raft_views[node_id])
            if core.fatal_error():
                self.fail(f"node {node_id} stopped: {core.fatal_error()}")
            self._check_image(node_id, core)
            for index in range(PARTITIONS):
                partition = core.partitions.get((TOPIC, index))
                if partition is not None:
                    self._check_partition(node, index, partition)

    def _check_raft(self, view: "_View") -> None:
        """raft_sim's per-node invariants (one leader per epoch, committed prefix, durable high
        watermark), for one node."""
        raft = view.core
        if raft.fatal_error is not None:
            self.fail(f"node {view.node_id} stopped: {raft.fatal_error}")
        if raft.is_leader:
            leader = self.raft.leader_of_epoch.setdefault(raft.epoch, view.node_id)
            if leader != view.node_id:
                self.fail(f"two metadata quorum leaders in epoch {raft.epoch}: {leader} and {view.node_id}")
        self.raft._check_high_watermark(view)

    def _check_image(self, node_id: int, core: BrokerCore) -> None:
        key = (node_id, self.sim.nodes[node_id].incarnation)
        if self.image_checked.get(key) == core.image.offset:
            return  # unchanged since the last check
        self.image_checked[key] = core.image.offset
        topic = core.image.topic(TOPIC)
        if topic is None:
            return
        for index, part in topic.partitions.items():
            if not set(part.isr) <= set(part.replicas) or (part.leader >= 0 and part.leader not in part.isr):
                self.fail(f"node {node_id}: partition {index} has leader {part.leader}, ISR {part.isr}, "
                          f"replicas {part.replicas}")

    def _check_partition(self, node: ClusterSimNode, index: int, partition: Any) -> None:
        key = (node.node_id, node.incarnation, index)
        hw = partition.high_watermark
        if partition.is_leader:
            epoch, previous = self.leader_hw.get(key, (partition.leader_epoch, -1))
            if epoch == partition.leader_epoch and hw < previous:
                self.fail(f"node {node.node_id}: high watermark of partition {index} went back from "
                          f"{previous} to {hw} in leader epoch {epoch}")
            self.leader_hw[key] = (partition.leader_epoch, hw)
        start = self.checked.get(key, partition.log.log_start_offset)
        if hw > start:
            self.checked[key] = self._compare(node.node_id, index, partition.log, start, hw)

    def _compare(self, node_id: int, index: int, plog: Any, start: int, end: int) -> int:
        committed = self.committed.setdefault(index, {})
        reached = start
        for base, last, crc in _batches(plog, start, end):
            known = committed.get(base)
            if known is None:
                if base != self.committed_end.get(index, 0):
                    self.fail(f"node {node_id}: partition {index} committed a batch at {base}, but the "
                              f"committed log ends at {self.committed_end.get(index, 0)}")
                committed[base] = (last, crc)
                self.committed_end[index] = last + 1
            elif known != (last, crc):
                self.fail(f"node {node_id}: committed batch at offset {base} of partition {index} "
                          f"changed from {known} to {(last, crc)}")
            reached = last + 1
        if reached < end:
            self.fail(f"node {node_id}: partition {index} high watermark {end} but its log ends at {reached}")
        return reached

    def on_start(self, node: ClusterSimNode) -> None:
        self.raft.on_start(_View(node))

    def acknowledge(self, crc: int, partition: int, offset: int) -> None:
        self.acknowledged[crc] = (partition, offset)

    def check_acknowledged(self) -> None:
        for crc, (index, offset) in sorted(self.acknowledged.items(), key=lambda kv: kv[1]):
            committed = self.committed.get(index, {}).get(offset)
            if committed is not None and committed[1] != crc:
                self.fail(f"acknowledged batch {crc:#x} at offset {offset} of partition {index} was "
                          f"replaced by {committed[1]:#x}")


class _RaftSim:
    """What RaftInvariants needs of a simulation: nodes (as views) and the clock."""

    def __init__(self, sim: "ClusterSimulation"):
        self.sim = sim
        self.queue = sim.queue
        self.nodes = {node_id: _View(node) for node_id, node in sim.nodes.items()}


def _signature(node: ClusterSimNode) -> tuple:
    """What the invariants look at, of one node: equal signatures, equal verdicts."""
    core = node.core
    raft = core.raft
    parts = tuple((p.is_leader, p.leader_epoch, p.high_watermark, p.log_end_offset)
                  for _key, p in sorted(core.partitions.items()))
    return (node.incarnation, raft.epoch, raft.is_leader, raft.high_watermark, raft.log_end_offset,
            core.image.offset, parts)


def _batches(plog: Any, start: int, end: int):
    """(base offset, last offset, crc) of the batches of a partition log in [start, end)."""
    offset = start
    while offset < end:
        result = plog.read(offset, 1 << 20, end, True)
        data = result.read_bytes()
        if not data:
            return
        for header, batch in iterate_batches(data):
            if header.base_offset >= end:
                return
            yield header.base_offset, header.last_offset, batch_crc(batch)
            offset = header.last_offset + 1


class ClusterSimulation:
    def __init__(self, seed: int, fault_ms: int = 2000, converge_ms: int = 10_000,
                 plan: FaultPlan | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.queue = EventQueue()
        self.network = Network(self.queue, random.Random(self.rng.getrandbits(64)), NetConfig())
        self.fault_ms = fault_ms
        self.converge_ms = converge_ms
        self.power_loss = self.rng.random() < 0.5
        crash_modes = ("drop", "tear", "keep") if self.power_loss else ("keep",)
        self.plan = plan or FaultPlan(crash_modes=crash_modes)
        voters = {i: ("sim", 9192 + i) for i in (1, 2, 3)}
        node_rng = random.Random(self.rng.getrandbits(64))
        self.nodes = {i: ClusterSimNode(i, voters, self.queue, self.network, node_rng) for i in sorted(voters)}
        self.client = ClientNode(self.queue, self.network, random.Random(self.rng.getrandbits(64)))
        self.invariants = ClusterInvariants(self)
        self.faults_on = True
        self.topic_created = False
        self.sent = 0
        self.acked = 0

    def describe(self) -> str:
        model = "flush.messages=1 with power losses" if self.power_loss else "no fsync, process kills"
        return f"3 nodes, {model}, {self.acked} of {self.sent} produces acknowledged"

    # --- the scenario -------------------------------------------------------------------------
    def run(self) -> None:
        for node_id in sorted(self.nodes):
            self.queue.at(self.rng.randint(0, 50), lambda n=self.nodes[node_id]: self._start(n))
        self.queue.at(self.rng.randint(300, 700), self._fault_step)
        self.queue.at(50, self._client_step)
        self.queue.run_until(self.fault_ms, self.invariants.check)
        self._stop_faults()
        deadline = self.fault_ms + self.converge_ms
        while not self._converged():
            if self.queue.now_ms >= deadline:
                raise SimulationFailure(f"no convergence {self.converge_ms} ms after the faults stopped: "
                                        f"{self._status()}")
            self.queue.run_until(self.queue.now_ms + 50, self.invariants.check)
        self._final_checks()

    def _start(self, node: ClusterSimNode) -> None:
        if node.core is None:
            node.start()
            self.invariants.on_start(node)

    def _stop_faults(self) -> None:
        self.faults_on = False
        self.network.heal()
        self.network.config = NetConfig()
        for node_id in sorted(self.nodes):
            self._start(self.nodes[node_id])

    def _fault_step(self) -> None:
        if not self.faults_on or self.queue.now_ms >= self.fault_ms:
            return
        plan, rng = self.plan, self.rng
        kinds = sorted(plan.weights)
        kind = rng.choices(kinds, weights=[plan.weights[k] for k in kinds])[0]
        if kind == "crash":
            live = [n for _, n in sorted(self.nodes.items()) if n.alive]
            if live:
                node = rng.choice(live)
                node.crash(rng.choice(plan.crash_modes))
                self.queue.after(rng.randint(*plan.down_ms), lambda: self._start(node))
        elif kind == "isolate":
            self.network.isolate(rng.choice(sorted(self.nodes)))
        elif kind == "split":
            self.network.split(set(rng.sample(sorted(self.nodes), rng.randint(1, 2))))
        elif kind == "heal":
            self.network.heal()
        elif kind == "network":
            low, high = rng.choice(plan.delays_ms)
            self.network.config = NetConfig(low, high, rng.choice(plan.losses), rng.choice(plan.duplicates))
        self.queue.after(rng.randint(*plan.step_ms), self._fault_step)

    # --- the client ---------------------------------------------------------------------------
    def _freshest(self) -> BrokerCore | None:
        live = [n.core for _, n in sorted(self.nodes.items()) if n.alive]
        return max(live, key=lambda core: core.image.offset) if live else None

    def _client_step(self) -> None:
        if self.queue.now_ms >= self.fault_ms:
            return
        self.queue.after(self.rng.randint(15, 60), self._client_step)
        core = self._freshest()
        if core is None:
            return
        if not self.topic_created:
            self._create_topic()
            return
        topic = core.image.topic(TOPIC)
        if topic is None:
            return
        index = self.rng.randrange(PARTITIONS)
        leader = topic.partitions[index].leader
        if leader < 0:
            return
        self._produce(leader, index)

    def _create_topic(self) -> None:
        for node_id, node in sorted(self.nodes.items()):
            core = node.core
            if core is not None and core.controller.active and len(core.controller.image.alive_brokers()) == 3:
                core.controller.create_topic(TOPIC, PARTITIONS, 3, self._topic_configs(), now_ms=self.queue.now_ms)
                node.after_call()
                self.topic_created = True
                return

    def _topic_configs(self) -> dict[str, str]:
        configs = {"min.insync.replicas": "2"}
        if self.power_loss:
            configs["flush.messages"] = "1"
        return configs

    def _produce(self, leader: int, index: int) -> None:
        self.sent += 1
        value = b"value-%d" % self.sent
        batch = build_batch([Record(0, self.queue.now_ms, b"k", value)], base_offset=0)
        crc = batch_crc(batch)
        data = produce_request.TopicProduceData(
            name=TOPIC, partition_data=(produce_request.PartitionProduceData(index=index, records=batch),))
        body = produce_request.ProduceRequest(transactional_id=None, acks=-1,
                                              timeout=datetime.timedelta(milliseconds=1500), topic_data=(data,))

        def answered(response: Any, now_ms: int) -> None:
            if response is None:
                return
            result = response.responses[0].partition_responses[0]
            if result.error_code == ErrorCode.none:
                self.acked += 1
                self.invariants.acknowledge(crc, index, result.base_offset)

        self.network.send(self.client, OutboundRequest(leader, "broker", 0, 9, body, 3000, answered))

    # --- the end ------------------------------------------------------------------------------
    def _converged(self) -> bool:
        cores = [n.core for n in self.nodes.values()]
        if any(core is None or not core.running for core in cores):
            return False
        image = max(cores, key=lambda core: core.image.offset).image
        topic = image.topic(TOPIC)
        if topic is None:
            # Never created, or the create was lost with a controller failover: create it now,
            # so that every scenario ends with the topic replicated everywhere.
            self._create_topic()
            return False
        for index, part in topic.partitions.items():
            if part.leader < 0 or set(part.isr) != set(part.replicas):
                return False
            leader = self.nodes[part.leader].core.partitions.get((TOPIC, index))
            if leader is None or not leader.is_leader or leader.high_watermark != leader.log_end_offset:
                return False
            for replica in part.replicas:
                local = self.nodes[replica].core.partitions.get((TOPIC, index))
                if local is None or local.log_end_offset != leader.log_end_offset \
                        or local.high_watermark != leader.high_watermark:
                    return False
        return True

    def _status(self) -> str:
        parts = []
        for node_id, node in sorted(self.nodes.items()):
            core = node.core
            if core is None:
                parts.append(f"{node_id}: down")
                continue
            state = core.lifecycle.state if core.lifecycle else "-"
            logs = []
            for index in range(PARTITIONS):
                p = core.partitions.get((TOPIC, index))
                if p is not None:
                    logs.append(f"p{index} leader {p.leader}@{p.leader_epoch} leo {p.log_end_offset} "
                                f"hw {p.high_watermark} isr {list(p.isr)}")
            parts.append(f"{node_id}: {state} raft {core.raft.state_name}@{core.raft.epoch} "
                         f"{'; '.join(logs)}")
        return " | ".join(parts)

    def _final_checks(self) -> None:
        self.invariants.check()
        self.invariants.check_acknowledged()
        for index in range(PARTITIONS):
            reference = None
            for node_id, node in sorted(self.nodes.items()):
                plog = node.core.partition(TOPIC, index).log
                batches = list(_batches(plog, plog.log_start_offset, plog.log_end_offset))
                if reference is None:
                    reference = batches
                elif batches != reference:
                    raise SimulationFailure(f"partition {index}: node {node_id}'s log differs from node "
                                            f"{min(self.nodes)}'s after convergence")
            present = {crc for _base, _last, crc in reference or []}
            for crc, (partition, offset) in sorted(self.invariants.acknowledged.items(), key=lambda kv: kv[1]):
                if partition == index and crc not in present:
                    raise SimulationFailure(f"acknowledged batch {crc:#x} (partition {index}, offset {offset}) "
                                            "is lost")


def quorum_changes_after_a_broker_dies(seed: int, settle_ms: int = 3000, watch_ms: int = 8000) -> list[str]:
    """A calm network: the cluster starts, the client creates the topic and produces; then one
    node that is not the metadata quorum's leader dies (its partitions' leaderships move, the
    survivors shrink their ISRs through AlterPartition). The quorum itself has no reason to
    change: nothing should interrupt its leader. Returns each change of quorum leader or epoch
    seen on a surviving node while `watch_ms` passes."""
    sim = ClusterSimulation(seed, fault_ms=settle_ms + watch_ms)
    sim.faults_on = False
    for node_id in sorted(sim.nodes):
        sim.queue.at(sim.rng.randint(0, 50), lambda n=sim.nodes[node_id]: sim._start(n))
    sim.queue.at(50, sim._client_step)
    sim.queue.run_until(settle_ms, sim.invariants.check)
    if sim._freshest().image.topic(TOPIC) is None:
        raise SimulationFailure(f"no topic {settle_ms} ms after a calm start: {sim._status()}")
    leaders = {n.core.raft.leader_id for n in sim.nodes.values() if n.core is not None}
    (quorum_leader,) = leaders
    partition_leaders = {p.leader for p in sim._freshest().image.topic(TOPIC).partitions.values()}
    victim = min((partition_leaders - {quorum_leader}) or (set(sim.nodes) - {quorum_leader}))
    sim.nodes[victim].crash("keep")
    survivors = [n for i, n in sorted(sim.nodes.items()) if i != victim]
    seen = {n.node_id: (n.core.raft.leader_id, n.core.raft.epoch) for n in survivors}
    changes: list[str] = []

    def watch() -> None:
        sim.invariants.check()
        for node in survivors:
            now = (node.core.raft.leader_id, node.core.raft.epoch)
            if now != seen[node.node_id]:
                changes.append(f"{sim.queue.now_ms} ms: node {node.node_id} went from leader/epoch "
                               f"{seen[node.node_id]} to {now} (node {victim} died at {settle_ms} ms)")
                seen[node.node_id] = now

    sim.queue.run_until(settle_ms + watch_ms, watch)
    return changes
