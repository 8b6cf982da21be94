"""Transactions with confluent-kafka (librdkafka): commit and abort across partitions,
read_committed and read_uncommitted consumers, consume-transform-produce through SIGKILLs,
and fencing."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

APP = Path(__file__).with_name("txn_copy_app.py")


def create_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(30)


def read_all(bootstrap: str, topic: str, isolation: str, expected: int, partitions: int = 3,
             settle_s: float = 1.5, timeout_s: float = 30.0) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record a consumer with `isolation` sees, read from
    the beginning until `expected` arrived and nothing more came for `settle_s`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                         "isolation.level": isolation, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
    seen: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(500, 0.2)
            for message in batch:
                assert message.error() is None, message.error()
                seen.append((message.partition(), message.offset(), message.value()))
            if batch:
                quiet_since = time.monotonic()
            elif len(seen) >= expected and time.monotonic() - quiet_since > settle_s:
                break
    finally:
        consumer.close()
    return seen


def test_read_committed_sees_exactly_the_committed_records_in_order(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "txn-orders")
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "orders-1", "linger.ms": 5})
    producer.init_transactions(30)
    committed, everything = [], []
    for txn in range(12):
        producer.begin_transaction()
        for i in range(25):
            value = f"{txn}-{i}".encode()
            producer.produce("txn-orders", value, partition=i % 3)
            everything.append((i % 3, value))
            if txn % 3 != 1:
                committed.append((i % 3, value))
        if txn % 3 == 1:
            producer.flush(30)  # the aborted records reach the log, then the abort hides them
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
    by_partition = collections.defaultdict(list)
    for partition, value in committed:
        by_partition[partition].append(value)
    seen = read_all(bootstrap, "txn-orders", "read_committed", len(committed))
    for partition in range(3):
        assert [v for p, _, v in sorted(seen) if p == partition] == by_partition[partition]
    assert len(seen) == len(committed)
    everything_seen = read_all(bootstrap, "txn-orders", "read_uncommitted", len(everything))
    assert sorted(v for _, _, v in everything_seen) == sorted(v for _, v in everything)


def test_consume_transform_produce_is_exactly_once_across_sigkills(moldau_broker, tmp_path):
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "ctp-in", "ctp-out")
    inputs = [f"record-{i:05d}".encode() for i in range(3000)]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(inputs):
        producer.produce("ctp-in", value, key=str(i).encode(), partition=i % 3)
    assert producer.flush(30) == 0
    rng = random.Random(10)

    def run(idle_s: float) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(APP), bootstrap, "ctp-in", "ctp-out", "ctp-group", "ctp-app",
                                 str(idle_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))

    for _ in range(4):  # kill it mid-run, several times
        app = run(5)
        try:
            line = app.stdout.readline()
            while line and not line.startswith(b"COMMITTED"):
                line = app.stdout.readline()
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            app.send_signal(signal.SIGKILL)
            app.wait(30)
    app = run(3)
    out, err = app.communicate(timeout=180)
    assert app.returncode == 0, err.decode(errors="replace")[-3000:]
    seen = read_all(bootstrap, "ctp-out", "read_committed", len(inputs))
    counts = collections.Counter(v for _, _, v in seen)
    assert set(counts) == {v.upper() for v in inputs}, "every input copied"
    assert max(counts.values()) == 1, "and only once"


def test_a_second_producer_fences_the_first(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "txn-fence")
    first = Producer({"bootstrap.servers": bootstrap, "transactional.id": "fence-1"})
    first.init_transactions(30)
    first.begin_transaction()
    first.produce("txn-fence", b"zombie", partition=0)
    first.flush(30)
    second = Producer({"bootstrap.servers": bootstrap, "transactional.id": "fence-1"})
    second.init_transactions(30)  # aborts the first one's transaction
    second.begin_transaction()
    second.produce("txn-fence", b"alive", partition=0)
    second.commit_transaction(30)
    first.produce("txn-fence", b"late", partition=0)
    with pytest.raises(KafkaException) as raised:
        first.commit_transaction(30)
    error = raised.value.args[0]
    assert error.fatal(), error
    assert error.code() == KafkaException(error).args[0].code()
    assert "fenced" in error.str().lower(), error.str()
    values = [v for _, _, v in read_all(bootstrap, "txn-fence", "read_committed", 1, partitions=1)]
    assert values == [b"alive"]
