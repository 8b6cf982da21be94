"""The Raft quorum under simulation: N voters (and observers) of `moldau.raft.RaftClient` on
the simulated network, with crashes, partitions and a faulty network, checked after every step.

Theory of operation
-------------------
A scenario is a seed. From it come the cluster's shape (1, 3 or 5 voters, maybe an observer),
the network's behaviour, and a schedule of faults for `fault_ms` of virtual time: crashes
(power loss dropping or tearing unsynced bytes, or a process kill keeping them) followed by
restarts, isolated nodes, split clusters, one-way cuts, graceful leader resignations, heals,
and changes of loss/duplication/delay. Meanwhile a client appends values through whichever node
says it leads, and notes each append as acknowledged once that node, still leader of the same
epoch, has a high watermark past it.

After every event `RaftInvariants.check` asserts:
- at most one leader per epoch (over the whole run, crashes included);
- the committed prefix never changes: every node's log below its high watermark matches one
  global committed log, batch by batch (offsets, epoch, CRC), and extends it only at its end;
- a node's high watermark never moves back while it runs (so never on a leader);
- committed entries survive crashes: a restarted node's log still holds, unchanged, everything
  below the highest high watermark it ever reported (followers fsync before fetching again,
  leaders before counting themselves);
- no node stopped with a fatal error.
Then faults stop (the network heals, crashed nodes restart) and within `converge_ms` every node
must agree: one leader, the same log end offset and high watermark on every node, identical
logs, and every acknowledged value at its offset.

A failure raises `SimulationFailure` with the seed; `test_raft_sim.py` prints the one-line
command that replays it.
"""

from __future__ import annotations

import random
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest
from kio.schema.describe_quorum.v2.request import PartitionData as DescribePartition
from kio.schema.describe_quorum.v2.request import TopicData as DescribeTopic

from moldau.raft import RaftClient, messages
from moldau.raft.client import NotLeaderError

from sim_harness import EventQueue, FaultPlan, NetConfig, Network, SimNode

# Kafka's defaults scaled down five times (election 1000 -> 200 ms, fetch 2000 -> 400 ms), so
# that a few virtual seconds hold many elections; the retry backoff stays Kafka's 20 ms.
SIM_CONFIG = {
    "controller.quorum.election.timeout.ms": "200",
    "controller.quorum.fetch.timeout.ms": "400",
    "controller.quorum.election.backoff.max.ms": "200",
    "controller.quorum.request.timeout.ms": "400",
    "controller.quorum.retry.backoff.ms": "20",
}
CLUSTER_ID = "MoldauSimCluster00000A"
_CRC = struct.Struct(">I")


class SimulationFailure(AssertionError):
    pass


class RaftSimNode(SimNode):
    def __init__(self, node_id: int, voters: dict[int, tuple[str, int]], config: dict[str, str],
                 queue: EventQueue, network: Network, rng: random.Random) -> None:
        super().__init__(node_id, queue, network, rng)
        self.voters = voters
        self.config = config
        self.directory_id = uuid.UUID(int=rng.getrandbits(128))  # the node's disk, kept across restarts

    def make_core(self, now_ms: int) -> RaftClient:
        return RaftClient(self.node_id, self.voters, self.fs, "/data", CLUSTER_ID,
                          random.Random(self.rng.getrandbits(64)), now_ms, self.config,
                          self.directory_id)

    def handle(self, api_key: int, api_version: int, body: Any, now_ms: int, expired: bool) -> Any:
        return self.core.handle_request(api_key, api_version, body, now_ms, expired)

    def max_wait_ms(self, api_key: int, body: Any) -> int:
        return messages.max_wait_ms(body)


@dataclass
class _Append:
    value: bytes
    node_id: int
    incarnation: int
    epoch: int
    offset: int


def batch_identity(batch: bytes) -> int:
    return _CRC.unpack_from(batch, 17)[0]


@dataclass
class RaftInvariants:
    sim: "RaftSimulation"
    leader_of_epoch: dict[int, int] = field(default_factory=dict)
    committed: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # base -> (last, epoch, crc)
    committed_end: int = 0
    checked: dict[int, int] = field(default_factory=dict)
    last_hw: dict[int, tuple[int, int]] = field(default_factory=dict)  # node -> (incarnation, hw)
    durable_hw: dict[int, int] = field(default_factory=dict)
    pending: list[_Append] = field(default_factory=list)
    acknowledged: dict[bytes, int] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        raise SimulationFailure(f"t={self.sim.queue.now_ms}ms: {message}")

    def check(self) -> None:
        for node in self.sim.node_list:
            core = node.core
            if core is None or not node.touched:
                continue  # a core changes only when called, and every call touches its node
            node.touched = False
            if core.fatal_error is not None:
                self.fail(f"node {node.node_id} stopped: {core.fatal_error}")
            if core.is_leader:
                leader = self.leader_of_epoch.setdefault(core.epoch, node.node_id)
                if leader != node.node_id:
                    self.fail(f"two leaders in epoch {core.epoch}: {leader} and {node.node_id}")
            self._check_high_watermark(node)
        self._check_appends()

    def _check_high_watermark(self, node: SimNode) -> None:
        core, node_id = node.core, node.node_id
        hw = core.high_watermark
        incarnation, previous = self.last_hw.get(node_id, (node.incarnation, 0))
        if incarnation == node.incarnation and hw < previous:
            self.fail(f"node {node_id}: high watermark went back from {previous} to {hw}")
        self.last_hw[node_id] = (node.incarnation, hw)
        if hw > self.checked.get(node_id, 0):
            self.checked[node_id] = self._compare(node, self.checked.get(node_id, 0), hw)
            self.durable_hw[node_id] = max(self.durable_hw.get(node_id, 0), hw)

    def _compare(self, node: SimNode, start: int, end: int) -> int:
        """Match the node's batches in [start, end) with the committed log; returns the end."""
        reached = start
        for base, last, epoch, _, batch in node.core.log.batches(start, end):
            identity = (last, epoch, batch_identity(batch))
            known = self.committed.get(base)
            if known is None:
                if base != self.committed_end:
                    self.fail(f"node {node.node_id}: committed batch at {base}, but the committed "
                              f"log ends at {self.committed_end}")
                self.committed[base] = identity
                self.committed_end = last + 1
            elif known != identity:
                self.fail(f"node {node.node_id}: committed batch at offset {base} changed from "
                          f"{known} to {identity}")
            reached = last + 1
        if reached < end:
            self.fail(f"node {node.node_id}: high watermark {end} but its log ends at {reached}")
        return reached

    def on_start(self, node: SimNode) -> None:
        """Right after a restart: what the node had committed must still be on its disk."""
        self.checked[node.node_id] = 0
        durable = self.durable_hw.get(node.node_id, 0)
        if durable:
            if node.core.log_end_offset < durable:
                self.fail(f"node {node.node_id} lost committed records: log end "
                          f"{node.core.log_end_offset} after restart, high watermark was {durable}")
            self._compare(node, 0, durable)

    def record_append(self, node: SimNode, value: bytes, offset: int) -> None:
        self.pending.append(_Append(value, node.node_id, node.incarnation, node.core.epoch, offset))

    def _check_appends(self) -> None:
        keep = []
        for append in self.pending:
            node = self.sim.nodes[append.node_id]
            core = node.core
            if core is None or node.incarnation != append.incarnation or core.epoch != append.epoch:
                continue  # the leader is gone: the append may or may not have committed
            if core.is_leader and core.high_watermark > append.offset:
                self.acknowledged[append.value] = append.offset
            else:
                keep.append(append)
        self.pending = keep


class RaftSimulation:
    def __init__(self, seed: int, fault_ms: int = 3000, converge_ms: int = 8000,
                 plan: FaultPlan | None = None, config: dict[str, str] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.queue = EventQueue()
        self.network = Network(self.queue, random.Random(self.rng.getrandbits(64)), NetConfig())
        self.plan = plan or FaultPlan()
        self.fault_ms = fault_ms
        self.converge_ms = converge_ms
        self.stable_ms = 1500
        voter_count = self.rng.choice((1, 3, 3, 3, 3, 5))
        observer_count = self.rng.choice((0, 0, 0, 1))
        self.voters = {i: ("127.0.0.1", 9093 + i) for i in range(1, voter_count + 1)}
        ids = list(range(1, voter_count + observer_count + 1))
        node_rng = random.Random(self.rng.getrandbits(64))
        self.nodes: dict[int, RaftSimNode] = {
            i: RaftSimNode(i, self.voters, config or SIM_CONFIG, self.queue, self.network, node_rng)
            for i in ids}
        self.node_list = [self.nodes[i] for i in sorted(self.nodes)]
        self.invariants = RaftInvariants(self)
        self._appended = 0
        self.faults_on = True

    def fingerprint(self) -> str:
        """What a run did, to compare two runs of one seed (determinism)."""
        committed = sorted(self.invariants.committed.items())
        return (f"steps={self.queue.steps} messages={self.network.messages} t={self.queue.now_ms} "
                f"epochs={sorted(self.invariants.leader_of_epoch.items())} committed={committed}")

    def describe(self) -> str:
        observers = len(self.nodes) - len(self.voters)
        return f"{len(self.voters)} voters, {observers} observers"

    # --- the scenario -------------------------------------------------------------------------
    def run(self) -> None:
        for node_id in sorted(self.nodes):
            self.queue.at(self.rng.randint(0, 50), lambda n=self.nodes[node_id]: self._start(n))
        self.queue.at(self.rng.randint(100, 400), self._fault_step)
        self.queue.at(self.rng.randint(0, 100), self._client_step)
        self.queue.run_until(self.fault_ms, self.invariants.check)
        self._stop_faults()
        deadline = self.fault_ms + self.converge_ms
        while not self._converged():
            if self.queue.now_ms >= deadline:
                raise SimulationFailure(f"no convergence {self.converge_ms} ms after the faults "
                                        f"stopped: {self._status()}")
            self.queue.run_until(self.queue.now_ms + 50, self.invariants.check)
        self._final_checks()
        self._check_stable()

    def _start(self, node: RaftSimNode) -> None:
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
        getattr(self, f"_fault_{kind}")()
        self.queue.after(rng.randint(*plan.step_ms), self._fault_step)

    def _fault_crash(self) -> None:
        live = [n for _, n in sorted(self.nodes.items()) if n.alive]
        if not live:
            return
        node = self.rng.choice(live)
        node.crash(self.rng.choice(self.plan.crash_modes))
        self.queue.after(self.rng.randint(*self.plan.down_ms), lambda: self._start(node))

    def _fault_isolate(self) -> None:
        self.network.isolate(self.rng.choice(sorted(self.nodes)))

    def _fault_split(self) -> None:
        ids = sorted(self.nodes)
        if len(ids) > 1:
            self.network.split(set(self.rng.sample(ids, self.rng.randint(1, len(ids) - 1))))

    def _fault_one_way(self) -> None:
        ids = sorted(self.nodes)
        if len(ids) > 1:
            sender, receiver = self.rng.sample(ids, 2)
            self.network.cut_one_way(sender, receiver)

    def _fault_heal(self) -> None:
        self.network.heal()

    def _fault_network(self) -> None:
        plan, rng = self.plan, self.rng
        low, high = rng.choice(plan.delays_ms)
        self.network.config = NetConfig(low, high, rng.choice(plan.losses), rng.choice(plan.duplicates))

    def _fault_idle(self) -> None:
        pass

    def _fault_resign(self) -> None:
        """A graceful leader shutdown's first step: hand the epoch over with EndQuorumEpoch."""
        for _, node in sorted(self.nodes.items()):
            if node.alive and node.core.is_leader:
                node.core.resign(self.queue.now_ms)
                node.after_call()
                return

    def _client_step(self) -> None:
        if self.queue.now_ms >= self.fault_ms:
            return
        leaders = [n for _, n in sorted(self.nodes.items()) if n.alive and n.core.is_leader]
        if leaders:
            node = self.rng.choice(leaders)
            self._appended += 1
            value = b"value-%d" % self._appended
            try:
                offset = node.core.append([value], self.queue.now_ms)
            except NotLeaderError:
                offset = None
            if offset is not None:
                self.invariants.record_append(node, value, offset)
                node.after_call()
        self.queue.after(self.rng.randint(10, 120), self._client_step)

    # --- the end ------------------------------------------------------------------------------
    def _converged(self) -> bool:
        leaders = [n.core for n in self.nodes.values() if n.alive and n.core.is_leader]
        if len(leaders) != 1:
            return False
        leader = leaders[0]
        if leader.high_watermark != leader.log_end_offset:
            return False
        return all(n.alive and n.core.log_end_offset == leader.log_end_offset
                   and n.core.high_watermark == leader.high_watermark
                   and n.core.epoch == leader.epoch and n.core.leader_id == leader.node_id
                   for n in self.nodes.values())

    def _status(self) -> str:
        parts = []
        for node_id, node in sorted(self.nodes.items()):
            core = node.core
            if core is None:
                parts.append(f"{node_id}: down")
            else:
                parts.append(f"{node_id}: {core.state_name} epoch {core.epoch} leader {core.leader_id} "
                             f"leo {core.log_end_offset} hw {core.high_watermark}")
        return "; ".join(parts)

    def _check_stable(self) -> None:
        """With no faults, a converged quorum keeps its leader: no spurious elections (pre-vote,
        check quorum and fetch timeouts must all stay quiet), and the leader's DescribeQuorum
        view shows every voter caught up."""
        leader = next(n.core for n in self.nodes.values() if n.core.is_leader)
        epoch = leader.epoch
        self.queue.run_until(self.queue.now_ms + self.stable_ms, self.invariants.check)
        if not leader.is_leader or leader.epoch != epoch:
            raise SimulationFailure(f"leader {leader.node_id} of epoch {epoch} lost its leadership "
                                    f"without faults: {self._status()}")
        request = DescribeQuorumRequest(topics=(DescribeTopic(
            topic_name="__cluster_metadata", partitions=(DescribePartition(partition_index=0),)),))
        partition = messages.response_partition(
            leader.handle_request(messages.DESCRIBE_QUORUM, 2, request, self.queue.now_ms))
        lagging = [v.replica_id for v in partition.current_voters if v.log_end_offset != leader.log_end_offset]
        if lagging or partition.high_watermark != leader.high_watermark:
            raise SimulationFailure(f"DescribeQuorum on the leader: voters {lagging} lag, high watermark "
                                    f"{partition.high_watermark} vs {leader.high_watermark}")

    def _final_checks(self) -> None:
        reference = None
        for node_id, node in sorted(self.nodes.items()):
            batches = [(base, last, epoch, batch_identity(batch))
                       for base, last, epoch, _, batch in node.core.log.batches(0, node.core.log_end_offset)]
            if reference is None:
                reference = batches
            elif batches != reference:
                raise SimulationFailure(f"node {node_id}'s log differs from node {min(self.nodes)}'s "
                                        "after convergence")
        core = self.nodes[min(self.nodes)].core
        for value, offset in sorted(self.invariants.acknowledged.items(), key=lambda kv: kv[1]):
            found = core.read_committed(offset, 1)
            if found != [(offset, value)]:
                raise SimulationFailure(f"acknowledged {value!r} at offset {offset} is lost "
                                        f"(found {found})")
