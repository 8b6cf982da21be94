"""Consumer groups with confluent-kafka (librdkafka): split, rebalance, session timeout.

Two consumers in one group split a 6-partition topic; a third (a separate process) joins and
the partitions are spread over three; the third is then killed with SIGKILL — no LeaveGroup —
and its partitions move back to the other two once its session times out. Every consumer
commits each message synchronously and records whether that commit succeeded (it fails while
the group rebalances; the partition's next owner then starts from the last committed offset).
Across the run every produced message must be consumed, and no message may be consumed with a
successful commit twice — that would be a message consumed again after its offset was committed.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaException, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from moldau import Broker  # noqa: E402

TOPIC = "orders"
GROUP = "split-group"
PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms, as Kafka's default

CONSUMER_SETTINGS = {
    "group.id": GROUP,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": SESSION_TIMEOUT_MS,
    "heartbeat.interval.ms": 500,
    "partition.assignment.strategy": "range",
}

# The third member, in its own process so that it can be killed without leaving the group.
CHILD = r"""
import sys
from confluent_kafka import Consumer, KafkaException
settings = dict(eval(sys.argv[2]), **{"bootstrap.servers": sys.argv[1]})
consumer = Consumer(settings)
def assigned(c, partitions):
    print("A " + ",".join(str(p.partition) for p in partitions), flush=True)
consumer.subscribe([sys.argv[3]], on_assign=assigned)
while True:
    message = consumer.poll(0.1)
    if message is None or message.error():
        continue
    print(f"C {message.partition()} {message.offset()} {message.value().decode()}", flush=True)
    try:
        consumer.commit(message=message, asynchronous=False)
        print("K", flush=True)  # the commit of the message printed last succeeded
    except KafkaException:
        pass
"""


class Member:
    def __init__(self, bootstrap: str):
        self.consumer = Consumer(dict(CONSUMER_SETTINGS, **{"bootstrap.servers": bootstrap}))
        self.assignment: set[int] = set()
        self.records: list[tuple[int, int, str, bool]] = []
        self.consumer.subscribe([TOPIC], on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, consumer, partitions):
        self.assignment = {p.partition for p in partitions}

    def _revoked(self, consumer, partitions):
        self.assignment = set()

    def pump(self) -> None:
        message = self.consumer.poll(0.05)
        if message is None or message.error():
            return
        try:
            self.consumer.commit(message=message, asynchronous=False)
            committed = True
        except KafkaException:
            committed = False  # rebalancing: the partition's next owner starts at the committed offset
        self.records.append((message.partition(), message.offset(), message.value().decode(), committed))


class Child:
    def __init__(self, bootstrap: str):
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
        self.process = subprocess.Popen([sys.executable, "-c", CHILD, bootstrap, repr(CONSUMER_SETTINGS), TOPIC],
                                        stdout=subprocess.PIPE, text=True, env=env)
        self.assignment: set[int] = set()
        self.records: list[tuple[int, int, str, bool]] = []
        self.lines: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def pump(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            kind, _, rest = line.partition(" ")
            if kind == "A":
                self.assignment = {int(p) for p in rest.split(",") if p}
            elif kind == "C":
                partition, offset, value = rest.split(" ")
                self.records.append((int(partition), int(offset), value, False))
            elif kind == "K":
                self.records[-1] = self.records[-1][:3] + (True,)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self.reader.join(30)  # everything it printed before dying counts
        self.pump()
        self.process.stdout.close()


def produce(bootstrap: str, start: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(TOPIC, key=str(i).encode(), value=f"m{i}".encode())
    assert producer.flush(30) == 0


def pump_until(members, condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for member in members:
            member.pump()
        if condition():
            return
    raise AssertionError(f"timed out waiting for {what}: " + repr([sorted(m.assignment) for m in members]))


def split_evenly(members, count: int) -> bool:
    assignments = [m.assignment for m in members]
    union = set().union(*assignments)
    disjoint = sum(len(a) for a in assignments) == len(union)
    return union == set(range(PARTITIONS)) and disjoint and all(len(a) == PARTITIONS // count for a in assignments)


def test_group_splits_rebalances_and_survives_a_killed_member():
    with Broker(config={"group.initial.rebalance.delay.ms": "0"}) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
        produce(bootstrap, 0, 300)
        first, second = Member(bootstrap), Member(bootstrap)
        child = None
        try:
            members = [first, second]
            pump_until(members, lambda: split_evenly(members, 2), 60, "two members to split the partitions")
            child = Child(bootstrap)
            members = [first, second, child]
            pump_until(members, lambda: split_evenly(members, 3), 60, "the third member's rebalance")
            produce(bootstrap, 300, 300)
            pump_until(members, lambda: len(child.records) > 0, 30, "the third member to commit something")
            child.kill()
            killed_at = time.monotonic()
            survivors = [first, second]
            pump_until(survivors, lambda: split_evenly(survivors, 2), 60, "the killed member's partitions to move")
            assert time.monotonic() - killed_at >= SESSION_TIMEOUT_MS / 1000 - 1.5  # moved by session expiry
            produce(bootstrap, 600, 300)
            def everything() -> bool:
                return len({v for m in (first, second, child) for _, _, v, _ in m.records}) >= 900

            pump_until(survivors, everything, 60, "every message to be consumed")
        finally:
            for member in (first, second):
                member.consumer.close()
            if child is not None:
                child.kill()
        records = first.records + second.records + child.records
        committed = [(p, o) for p, o, _, ok in records if ok]
        assert len(committed) == len(set(committed)), "a message was consumed again after its commit"
        assert {int(v[1:]) for _, _, v, _ in records} == set(range(900))
        assert first.records and second.records and child.records
