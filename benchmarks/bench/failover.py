"""Failover time on a 3-node cluster: a partition's leader is killed; how long until a write is
acknowledged again.

Theory of operation. A producer (librdkafka through confluent-kafka: acks=all, idempotent, as
an application that must not lose writes would run it) writes one record every
`interval_ms` to a fresh topic of one partition (replication factor 3, min.insync.replicas 2)
and timestamps every acknowledgement. Once writes flow, the harness asks the cluster which node
leads the partition and SIGKILLs that node's process. The failover time is from the kill to the
first acknowledgement of a record *sent after* the kill: the old leader is dead, so that
acknowledgement can only come from a new leader, after the cluster noticed the death, elected a
leader from the ISR and the client found it. The killed node is restarted afterwards and the
next run waits until every partition has its three in-sync replicas again.

What bounds it on each system is its failure detection: Kafka's controller fences a broker that
stops heartbeating after broker.session.timeout.ms (9 s by default); moldau's follows the same
setting's value in its own controller (see docs/operations.md). Both run with their defaults.
"""

from __future__ import annotations

import threading
import time
import uuid

from bench.systems import System

FAILOVER_TIMEOUT_S = 120.0


def _partition_state(system: System, topic: str) -> tuple[int, list[int]]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": system.bootstrap_servers, "log_level": 0})
    described = admin.list_topics(topic, timeout=10).topics[topic]
    partition = described.partitions[0]
    return partition.leader, list(partition.isrs)


def _wait(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as error:  # a node is down: metadata may fail for a moment
            last = error
        else:
            if last:
                return last
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout_s:g}s waiting for {what} (last: {last!r})")


class _Writer(threading.Thread):
    """Produces a record every `interval_ms`; records (sent_at, acked_at) of each acknowledgement."""

    def __init__(self, bootstrap: str, topic: str, interval_ms: float):
        super().__init__(daemon=True, name="failover-writer")
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 0, "message.timeout.ms": int(FAILOVER_TIMEOUT_S * 1000),
                                  "topic.metadata.refresh.fast.interval.ms": 50, "retry.backoff.ms": 20,
                                  "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200, "log_level": 0})
        self.topic, self.interval_s = topic, interval_ms / 1000
        self.acks: list[tuple[float, float]] = []
        self.errors = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            sent_at = time.monotonic()

            def delivered(error, _message, sent_at=sent_at):
                if error is None:
                    self.acks.append((sent_at, time.monotonic()))
                else:
                    self.errors += 1

            self.producer.produce(self.topic, b"x" * 100, on_delivery=delivered)
            self.producer.poll(self.interval_s)
        self.producer.flush(10)


def measure_failover(system: System, interval_ms: float = 2.0) -> dict:
    """One failover: kill the leader of a fresh RF 3 topic's partition while writing to it."""
    from bench.workloads import create_topic

    topic = f"bench-failover-{uuid.uuid4().hex[:8]}"
    create_topic(system, topic, 1)
    _wait(lambda: len(_partition_state(system, topic)[1]) == 3, 60, "3 in-sync replicas")
    writer = _Writer(system.bootstrap_servers, topic, interval_ms)
    writer.start()
    try:
        _wait(lambda: len(writer.acks) >= 200, 60, "writes to flow")
        leader, _ = _partition_state(system, topic)
        system.kill_node(leader)  # returns once the process is gone (both systems wait for it)
        # From here: taken before the kill, moldau's kill (a `moldau cluster kill` process, half
        # a second to start) let writes sent meanwhile be acknowledged by the live old leader,
        # which read as a failover of milliseconds.
        killed_at = time.monotonic()
        first = _wait(lambda: next((acked for sent, acked in writer.acks if sent >= killed_at), None),
                      FAILOVER_TIMEOUT_S, "an acknowledged write after the kill")
        # the longest time with no acknowledgement at all, around the kill
        times = sorted(acked for _, acked in writer.acks if acked >= killed_at - 1)
        gaps = [b - a for a, b in zip(times, times[1:])]
    finally:
        writer.halt.set()
        writer.join(30)
    system.restart_node(leader)
    _wait(lambda: len(_partition_state(system, topic)[1]) == 3, FAILOVER_TIMEOUT_S, "the restarted node back in the ISR")
    return {"failover_s": round(first - killed_at, 3), "longest_ack_gap_s": round(max(gaps, default=0.0), 3),
            "killed_node": leader, "write_errors": writer.errors}
