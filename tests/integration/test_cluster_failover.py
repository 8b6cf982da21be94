"""Kafka's replication test, on real processes: a 3-node `moldau cluster`, a topic with 3
partitions, RF 3 and min.insync.replicas=2, an idempotent acks=all producer writing keyed
records and a consumer group committing as it goes, while a node — leaders and the active
controller included — is SIGKILLed and restarted again and again.

Afterwards every acknowledged record is there exactly once, each key's records are in the
order they were sent, the group's committed offsets never went backwards, and every node is
back in every ISR."""

from __future__ import annotations

import random
import threading
import time

import pytest

from workload import end_offset
from moldau.testing.cluster_process import ProcessCluster

pytestmark = pytest.mark.integration

CYCLES = 20
TOPIC = "chaos"
KEYS = 30


class Workload:
    def __init__(self, bootstrap: str):
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.acked: dict[tuple[int, int], bytes] = {}  # (partition, offset) -> value
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 120_000, "retries": 1_000_000})
        self.sent = 0

    def produce(self) -> None:
        sequence = [0] * KEYS
        while not self.stop.is_set():
            key = random.randrange(KEYS)
            sequence[key] += 1
            value = f"k{key}:{sequence[key]}".encode()
            try:
                self.producer.produce(TOPIC, key=f"k{key}".encode(), value=value, on_delivery=self._delivered)
                self.sent += 1
            except BufferError:
                sequence[key] -= 1
                self.producer.poll(0.05)
                continue
            self.producer.poll(0)
            time.sleep(0.002)
        self.producer.flush(180)

    def _delivered(self, error, message) -> None:
        if error is not None:
            self.errors.append(str(error))
        else:
            self.acked[(message.partition(), message.offset())] = message.value()


class GroupConsumer:
    """A group member that commits what it consumed after every poll."""

    def __init__(self, bootstrap: str):
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-group",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "session.timeout.ms": 10_000})
        self.stop = threading.Event()
        self.consumed = 0

    def run(self) -> None:
        self.consumer.subscribe([TOPIC])
        while not self.stop.is_set():
            message = self.consumer.poll(0.5)
            if message is None or message.error():
                continue
            self.consumed += 1
            try:
                self.consumer.commit(asynchronous=False)
            except Exception:
                pass  # a commit during a coordinator failover may fail; the next one retries
        self.consumer.close()


def _committed(bootstrap: str) -> dict[int, int]:
    """The group's committed offsets, through a consumer handle of the group that does not join
    it: librdkafka's AdminClient.list_consumer_group_offsets crashes the process when the answer
    is NOT_COORDINATOR, as it is while the coordinator moves (confluentinc/librdkafka#5040)."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-group", "enable.auto.commit": False})
    try:
        answered = reader.committed([TopicPartition(TOPIC, p) for p in range(3)], timeout=15)
    except Exception:
        return {}
    finally:
        reader.close()
    return {tp.partition: tp.offset for tp in answered if tp.error is None and tp.offset >= 0}


def test_every_acknowledged_record_survives_repeated_node_kills(tmp_path):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    rng = random.Random(20261206)
    with ProcessCluster(tmp_path / "cluster", brokers=3) as cluster:
        bootstrap = cluster.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, 3, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(30)
        cluster.wait_for(lambda: all(len(cluster.partition_state(TOPIC, p)[2]) == 3 for p in range(3)),
                         what="full ISRs")
        workload, group = Workload(bootstrap), GroupConsumer(bootstrap)
        threads = [threading.Thread(target=workload.produce), threading.Thread(target=group.run)]
        for thread in threads:
            thread.start()
        committed_seen: dict[int, int] = {}
        try:
            time.sleep(2)
            for cycle in range(CYCLES):
                victim = rng.choice([1, 2, 3])
                cluster.kill(victim)
                time.sleep(rng.uniform(1.0, 3.0))
                cluster.start(victim)
                time.sleep(rng.uniform(0.5, 1.5))
                for partition, offset in _committed(bootstrap).items():
                    assert offset >= committed_seen.get(partition, -1), \
                        f"cycle {cycle}: committed offset of partition {partition} went back to {offset}"
                    committed_seen[partition] = offset
        finally:
            workload.stop.set()
            group.stop.set()
            for thread in threads:
                thread.join(240)
        assert not workload.errors, workload.errors[:5]
        assert len(workload.acked) > 1000, f"only {len(workload.acked)} records acknowledged"
        cluster.wait_for(lambda: all(sorted(cluster.partition_state(TOPIC, p)[2]) == [1, 2, 3] for p in range(3)),
                         timeout_s=90, what="every node back in every ISR")

        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False})
        found: dict[tuple[int, int], bytes] = {}
        for partition in range(3):
            reader.assign([TopicPartition(TOPIC, partition, 0)])
            end = end_offset(reader, TOPIC, partition)
            position = 0
            deadline = time.monotonic() + 120
            while position < end and time.monotonic() < deadline:
                message = reader.poll(1)
                if message is None or message.error():
                    continue
                found[(partition, message.offset())] = message.value()
                position = message.offset() + 1
        reader.close()
        missing = [key for key, value in workload.acked.items() if found.get(key) != value]
        assert not missing, f"{len(missing)} acknowledged records lost or changed, e.g. {missing[:5]}"
        values = list(found.values())
        assert len(values) == len(set(values)), "a record is in the log twice"
        last: dict[bytes, int] = {}
        for (partition, offset), value in sorted(found.items()):
            key, sequence = value.split(b":")
            assert sequence and int(sequence) > last.get(key, 0), f"{key!r} out of order at {partition}/{offset}"
            last[key] = int(sequence)
        assert group.consumed > 0
