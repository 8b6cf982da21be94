"""Transactions on the simulated cluster: transactional producers and a read_committed
consumer on cluster_sim's faulty 3-node cluster, checked for atomic visibility and for no
aborted read.

Theory of operation
-------------------
`TxnClusterSimulation` is `ClusterSimulation` (crashes, power losses, partitions, a lossy,
reordering, duplicating network; its replication invariants still checked after every step)
with two more kinds of client on the simulated network, each speaking Kafka's protocol as a
Kafka 4.1 client does (Transactions V2):

- `TxnProducer` (two of them, each its own transactional id): FindCoordinator (key type 1),
  InitProducerId, then transaction after transaction: one batch of records to every partition
  of the topic (Produce v12: the partition leader adds the partition to the transaction at the
  coordinator, KIP-890), then EndTxn v5, commit or abort at random (the coordinator bumps the
  epoch and answers with it). A retriable Produce error is retried with the same sequence; any
  other failure leaves the transaction's outcome unknown and the producer starts over with a
  new InitProducerId, which fences its own earlier epoch and aborts what it left open. What
  the producer knows of each transaction is recorded: whether it asked to commit, and the
  outcome when EndTxn answered.
- `ReadCommittedConsumer`: keeps fetching every partition from its leader (Fetch v12,
  isolation_level READ_COMMITTED) and filters the records as Kafka's consumer does: a batch of
  a producer whose aborted transaction (from the answer's aborted_transactions) spans it is
  dropped, control batches are never shown.

`TxnInvariants`, from what the consumer is shown, as it is shown:
- no aborted read: a visible record belongs to a transaction its producer asked to commit,
  and not to one whose abort the coordinator acknowledged; no record is shown twice;
and when the run has converged (faults stopped, every transaction ended by its producer or by
its timeout — no transaction open or prepared at any coordinator, every partition's last
stable offset at its high watermark, the consumer caught up to it):
- atomic visibility: every transaction is visible on all the partitions it wrote or on none;
  visible on all when the coordinator acknowledged its commit.
A run that cannot get there within `converge_ms` fails (a hanging transaction).

The producers and the consumer stop at the end of the faulty phase with everything else; the
consumer then keeps reading until it has caught up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from kio.schema.end_txn.v5 import request as end_txn_request
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12 import request as fetch_request
from kio.schema.find_coordinator.v4 import request as find_request
from kio.schema.init_producer_id.v5 import request as init_request
from kio.schema.produce.v12 import request as produce_request

from moldau.protocol.build import build
from moldau.protocol.rpc import OutboundRequest
from moldau.records import Record, build_batch, iterate_batches, iterate_records
from moldau.records.control import read_end_txn_marker

from cluster_sim import PARTITIONS, TOPIC, ClusterSimulation, SimulationFailure

PRODUCERS = 2
TXN_TIMEOUT_MS = 1500  # the producers' transaction.timeout.ms, scaled down like the cluster's
RECORDS_PER_BATCH = 2
BACKOFF_MS = 50
REQUEST_TIMEOUT_MS = 3000
PRODUCE_ATTEMPTS = 5
TXN_PROPERTIES = {"transaction.state.log.num.partitions": "2", "transaction.state.log.replication.factor": "3",
                  "transaction.state.log.min.isr": "2",
                  "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000", "request.timeout.ms": "1000"}
_RETRIABLE_PRODUCE = frozenset({
    ErrorCode.not_leader_or_follower, ErrorCode.not_enough_replicas, ErrorCode.not_enough_replicas_after_append,
    ErrorCode.request_timed_out, ErrorCode.unknown_topic_or_partition, ErrorCode.network_exception,
    ErrorCode.kafka_storage_error, ErrorCode.coordinator_load_in_progress, ErrorCode.concurrent_transactions})
_FIND_AGAIN = frozenset({ErrorCode.not_coordinator, ErrorCode.coordinator_not_available})
_WAIT = frozenset({ErrorCode.concurrent_transactions, ErrorCode.coordinator_load_in_progress})


@dataclass
class Txn:
    producer: int
    number: int
    commit_requested: bool = False
    outcome: str = "open"  # committed | aborted (acknowledged by the coordinator) | unknown | open
    visible: set[int] = field(default_factory=set)  # partitions where the consumer saw it


class TxnProducer:
    """One transactional producer's state machine, driven by its responses."""

    def __init__(self, sim: "TxnClusterSimulation", index: int, rng: random.Random) -> None:
        self.sim, self.index, self.rng = sim, index, rng
        self.transactional_id = f"sim-txn-{index}"
        self.coordinator = -1
        self.producer_id, self.epoch = -1, -1
        self.sequences = [0] * PARTITIONS
        self.txn: Txn | None = None
        self.number = 0
        self.acked: set[int] = set()

    def running(self) -> bool:
        return self.sim.faults_on and self.sim.queue.now_ms < self.sim.fault_ms

    def _later(self, step) -> None:
        if self.running():
            self.sim.queue.after(BACKOFF_MS, step)

    def _send(self, destination: int, api_key: int, version: int, body: Any, answered) -> None:
        self.sim.network.send(self.sim.client, OutboundRequest(destination, "broker", api_key, version, body,
                                                               REQUEST_TIMEOUT_MS, answered))

    # --- coordinator and producer id ---------------------------------------------------------
    def find(self) -> None:
        if not self.running():
            return
        core = self.sim._freshest()
        if core is None or not self.sim.topic_created:
            return self._later(self.find)
        body = build(find_request.FindCoordinatorRequest, {"key_type": 1,
                                                            "coordinator_keys": [self.transactional_id]})

        def answered(response: Any, _now: int) -> None:
            found = response.coordinators[0] if response is not None else None
            if found is None or found.error_code != ErrorCode.none:
                return self._later(self.find)
            self.coordinator = found.node_id
            self.init()

        self._send(core.node_id, 10, 4, body, answered)

    def init(self) -> None:
        if not self.running():
            return
        body = build(init_request.InitProducerIdRequest, {
            "transactional_id": self.transactional_id, "transaction_timeout": TXN_TIMEOUT_MS,
            "producer_id": -1, "producer_epoch": -1})

        def answered(response: Any, _now: int) -> None:
            code = response.error_code if response is not None else None
            if code == ErrorCode.none:
                self.producer_id, self.epoch = response.producer_id, response.producer_epoch
                self.sequences = [0] * PARTITIONS
                return self.begin()
            self._later(self.init if code in _WAIT else self.find)

        self._send(self.coordinator, 22, 5, body, answered)

    # --- one transaction ---------------------------------------------------------------------
    def begin(self) -> None:
        if not self.running():
            return
        self.number += 1
        self.txn = self.sim.txn_invariants.begin(self.index, self.number)
        self.acked = set()
        for partition in range(PARTITIONS):
            self.produce(self.txn, partition, PRODUCE_ATTEMPTS)

    def produce(self, txn: Txn, partition: int, attempts: int) -> None:
        if not self.running() or self.txn is not txn:
            return
        leader = self.sim.leader_of(partition)
        if leader < 0:
            return self._retry_produce(txn, partition, attempts)
        values = [b"txn:%d:%d:%d:%d" % (self.index, txn.number, partition, i) for i in range(RECORDS_PER_BATCH)]
        now = self.sim.queue.now_ms
        batch = build_batch([Record(i, now, None, v) for i, v in enumerate(values)], base_offset=0,
                            producer_id=self.producer_id, producer_epoch=self.epoch,
                            base_sequence=self.sequences[partition], transactional=True)
        body = build(produce_request.ProduceRequest, {
            "transactional_id": self.transactional_id, "acks": -1, "timeout": 1500,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": partition, "records": batch}]}]})

        def answered(response: Any, _now: int) -> None:
            if self.txn is not txn:
                return
            code = response.responses[0].partition_responses[0].error_code if response is not None else None
            if code == ErrorCode.none:
                self.sequences[partition] += RECORDS_PER_BATCH
                self.acked.add(partition)
                if len(self.acked) == PARTITIONS:
                    self.end(txn)
            elif code is None or code in _RETRIABLE_PRODUCE:
                self._retry_produce(txn, partition, attempts)
            else:
                self._abandon(txn)

        self._send(leader, 0, 12, body, answered)

    def _retry_produce(self, txn: Txn, partition: int, attempts: int) -> None:
        if attempts <= 1:
            return self._abandon(txn)
        self._later(lambda: self.produce(txn, partition, attempts - 1))

    def end(self, txn: Txn, commit: bool | None = None) -> None:
        """EndTxn: commit or abort at random; a retry repeats the decision."""
        if not self.running() or self.txn is not txn:
            return
        if commit is None:
            commit = self.rng.random() < 0.7
        txn.commit_requested = txn.commit_requested or commit
        body = build(end_txn_request.EndTxnRequest, {
            "transactional_id": self.transactional_id, "producer_id": self.producer_id,
            "producer_epoch": self.epoch, "committed": commit})

        def answered(response: Any, _now: int) -> None:
            if self.txn is not txn:
                return
            code = response.error_code if response is not None else None
            if code == ErrorCode.none:
                self.sim.txn_invariants.ended(txn, "committed" if commit else "aborted")
                self.producer_id, self.epoch = response.producer_id, response.producer_epoch
                self.sequences = [0] * PARTITIONS
                self.txn = None
                return self.begin()
            if code in _WAIT:
                return self._later(lambda: self.end(txn, commit))
            self._abandon(txn)

        self._send(self.coordinator, 26, 5, body, answered)

    def _abandon(self, txn: Txn) -> None:
        """Give up on `txn` (its outcome unknown) and start over: a new InitProducerId fences
        this producer's epoch and aborts whatever it left open."""
        if self.txn is not txn:
            return
        txn.outcome = "unknown"
        self.txn = None
        self._later(self.find)


class ReadCommittedConsumer:
    """Fetches every partition from its leader at READ_COMMITTED, filtering as Kafka's
    consumer does, and shows each visible record to the invariants."""

    def __init__(self, sim: "TxnClusterSimulation") -> None:
        self.sim = sim
        self.positions = [0] * PARTITIONS
        self.in_flight = [False] * PARTITIONS

    def step(self) -> None:
        self.sim.queue.after(30, self.step)
        if not self.sim.topic_created:
            return
        for partition in range(PARTITIONS):
            leader = self.sim.leader_of(partition)
            if leader >= 0 and not self.in_flight[partition]:
                self._fetch(leader, partition)

    def _fetch(self, leader: int, partition: int) -> None:
        position = self.positions[partition]
        body = build(fetch_request.FetchRequest, {
            "replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 1,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": TOPIC, "partitions": [{
                "partition": partition, "current_leader_epoch": -1, "fetch_offset": position,
                "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})

        def answered(response: Any, _now: int) -> None:
            self.in_flight[partition] = False
            if response is None or self.positions[partition] != position:
                return
            data = response.responses[0].partitions[0]
            if data.error_code == ErrorCode.none and data.records:
                self._consume(partition, data)

        self.in_flight[partition] = True
        self.sim.network.send(self.sim.client, OutboundRequest(leader, "broker", 1, 12, body,
                                                               REQUEST_TIMEOUT_MS, answered))

    def _consume(self, partition: int, data: Any) -> None:
        aborted = sorted((a.first_offset, a.producer_id) for a in data.aborted_transactions or ())
        aborting: set[int] = set()  # producers whose aborted transaction is being skipped
        position = self.positions[partition]
        for header, batch in iterate_batches(data.records):
            while aborted and aborted[0][0] <= header.last_offset:
                aborting.add(aborted.pop(0)[1])
            if header.last_offset < position:
                continue
            if header.is_control:
                marker = read_end_txn_marker(batch)
                if marker is not None and not marker.commit:
                    aborting.discard(header.producer_id)
            elif not (header.is_transactional and header.producer_id in aborting):
                for record in iterate_records(batch):
                    if record.offset >= position:
                        self.sim.txn_invariants.visible(partition, record.value)
            position = header.last_offset + 1
        self.positions[partition] = position


class TxnInvariants:
    def __init__(self, sim: "TxnClusterSimulation") -> None:
        self.sim = sim
        self.txns: dict[tuple[int, int], Txn] = {}
        self.seen: set[bytes] = set()

    def fail(self, message: str) -> None:
        raise SimulationFailure(f"t={self.sim.queue.now_ms}ms: {message}")

    def begin(self, producer: int, number: int) -> Txn:
        txn = self.txns[(producer, number)] = Txn(producer, number)
        return txn

    def ended(self, txn: Txn, outcome: str) -> None:
        txn.outcome = outcome
        if outcome == "aborted" and txn.visible:
            self.fail(f"transaction {txn.producer}/{txn.number} was read on partitions {sorted(txn.visible)} "
                      "and then aborted")

    def visible(self, partition: int, value: bytes) -> None:
        """No aborted read, as the consumer is shown each record (the cluster simulation's own
        plain records, b"value-N", are not transactional)."""
        if not value.startswith(b"txn:"):
            return
        if value in self.seen:
            self.fail(f"record {value!r} shown twice to the read_committed consumer")
        self.seen.add(value)
        producer, number, written_to, _i = (int(part) for part in value.split(b":")[1:])
        txn = self.txns.get((producer, number))
        if txn is None or written_to != partition:
            self.fail(f"record {value!r} on partition {partition} was never produced there")
        if not txn.commit_requested:
            self.fail(f"record {value!r} of transaction {producer}/{number} visible, but its producer never "
                      f"asked to commit it (outcome {txn.outcome})")
        if txn.outcome == "aborted":
            self.fail(f"record {value!r} of the aborted transaction {producer}/{number} visible")
        txn.visible.add(partition)

    def final(self) -> None:
        """Atomic visibility, once every transaction has ended and the consumer caught up."""
        for (producer, number), txn in sorted(self.txns.items()):
            if txn.visible and txn.visible != set(range(PARTITIONS)):
                self.fail(f"transaction {producer}/{number} ({txn.outcome}) visible on partitions "
                          f"{sorted(txn.visible)} only")
            if txn.outcome == "committed" and not txn.visible:
                self.fail(f"the acknowledged commit of transaction {producer}/{number} is not visible")


class TxnClusterSimulation(ClusterSimulation):
    def __init__(self, seed: int, fault_ms: int = 3000, converge_ms: int = 10_000, plan=None) -> None:
        super().__init__(seed, fault_ms, converge_ms, plan)
        for node in self.nodes.values():
            node.properties.update(TXN_PROPERTIES)
            if self.power_loss:
                # The scenario's durability model: where power may fail, every log is fsynced
                # — __transaction_state too (Kafka's default, no fsync, would lose it there).
                node.properties["log.flush.interval.messages"] = "1"
        rng = random.Random(self.rng.getrandbits(64))
        self.producers = [TxnProducer(self, n, random.Random(rng.getrandbits(64))) for n in range(PRODUCERS)]
        self.consumer = ReadCommittedConsumer(self)
        self.txn_invariants = TxnInvariants(self)

    def describe(self) -> str:
        outcomes: dict[str, int] = {}
        for txn in self.txn_invariants.txns.values():
            outcomes[txn.outcome] = outcomes.get(txn.outcome, 0) + 1
        return f"{super().describe()}; transactions {dict(sorted(outcomes.items()))}"

    def run(self) -> None:
        for producer in self.producers:
            self.queue.at(self.rng.randint(100, 300), producer.find)
        self.queue.at(100, self.consumer.step)
        super().run()

    def leader_of(self, partition: int) -> int:
        core = self._freshest()
        topic = core.image.topic(TOPIC) if core is not None else None
        return topic.partitions[partition].leader if topic is not None else -1

    def _converged(self) -> bool:
        if not super()._converged():
            return False
        for node in self.nodes.values():
            coordinator = node.core.extensions["txn_coordinator"]
            if any(meta.state.kafka_name in ("Ongoing", "PrepareCommit", "PrepareAbort")
                   for meta in coordinator.txns.values()):
                return False
        image = self._freshest().image
        for index in range(PARTITIONS):
            leader = self.nodes[image.topic(TOPIC).partitions[index].leader].core.partitions[(TOPIC, index)]
            if leader.last_stable_offset != leader.high_watermark:
                return False
            if self.consumer.positions[index] < leader.high_watermark:
                return False
        return True

    def _status(self) -> str:
        open_txns = []
        for node_id, node in sorted(self.nodes.items()):
            if node.core is None:
                continue
            for meta in node.core.extensions["txn_coordinator"].txns.values():
                if meta.state.kafka_name in ("Ongoing", "PrepareCommit", "PrepareAbort"):
                    open_txns.append(f"{meta.transactional_id}@{node_id}: {meta.state.kafka_name}")
            for index in range(PARTITIONS):
                partition = node.core.partitions.get((TOPIC, index))
                if partition is not None and partition.is_leader:
                    open_txns.append(f"p{index}@{node_id} lso {partition.last_stable_offset} "
                                     f"hw {partition.high_watermark}")
        return (f"{super()._status()} || {'; '.join(open_txns)} || consumer at {self.consumer.positions}")

    def _final_checks(self) -> None:
        super()._final_checks()
        self.txn_invariants.final()
