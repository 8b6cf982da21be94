"""Kafka Streams 4.1 with processing.guarantee=exactly_once_v2: the project's word count, killed
with SIGKILL again and again while lines keep arriving, ends with exact counts.

Exactly-once in Streams is the whole transaction machinery at once: one transactional
producer per stream thread (Transactions V2 with the 4.1 client), read_committed consumers,
the input offsets committed inside each transaction (TxnOffsetCommit with the group's
generation and member id), the state store's changelog written in the same transaction, and on
restart the new instance fencing the killed one and restoring its store from the committed
changelog only. A lost, duplicated or aborted-but-visible update shows up as a wrong count.
"""

from __future__ import annotations

import collections
import os
import random
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

import test_kafka_streams as streams
from test_kafka_streams import word_count_classes  # noqa: F401 - the fixture that compiles the application
from moldau.testing.kafka_dist import java_executable, kafka_classpath, log4j2_config

pytestmark = pytest.mark.integration

INPUT, OUTPUT, APPLICATION = "eos-lines", "eos-counts", "eos-app"
WORDS = ["kafka", "streams", "exactly", "once", "moldau", "broker", "log", "marker"]


class WordCountEos(streams.WordCount):
    def __init__(self, classes: Path, bootstrap: str, state_dir: Path):
        self.process = subprocess.Popen(
            [java_executable(), "-Xmx256m", f"-Dlog4j2.configurationFile={log4j2_config()}",
             "-cp", f"{kafka_classpath()}{os.pathsep}{classes}", "WordCount",
             bootstrap, APPLICATION, INPUT, OUTPUT, str(state_dir), "exactly_once_v2"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def final_counts(bootstrap: str, expected: dict[str, int], timeout_s: float = 120.0) -> dict[str, int]:
    """The last count per word a read_committed reader sees, once it equals `expected` (or the
    time is up)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"eos-reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    counts: dict[str, int] = {}
    try:
        consumer.subscribe([OUTPUT])
        deadline = time.monotonic() + timeout_s
        while counts != expected and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                assert message.error() is None, message.error()
                counts[message.key().decode()] = struct.unpack(">q", message.value())[0]
    finally:
        consumer.close()
    return counts


def test_exactly_once_v2_word_count_survives_repeated_sigkills(moldau_broker, word_count_classes, tmp_path):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = moldau_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(INPUT, 2, 1), NewTopic(OUTPUT, 2, 1)]).values():
        future.result(30)
    rng = random.Random(7)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    expected: collections.Counter[str] = collections.Counter()

    def feed(lines: int) -> None:
        for _ in range(lines):
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))
            expected.update(w for w in re.split(r"\W+", line.lower()) if w)
            producer.produce(INPUT, value=line.encode())
        assert producer.flush(30) == 0

    state_dir = tmp_path / "state"
    for _ in range(3):  # run, feed, SIGKILL mid-run; the same state directory each time
        app = WordCountEos(word_count_classes, bootstrap, state_dir)
        try:
            app.wait_running(120)
            for _ in range(5):
                feed(40)
                time.sleep(rng.uniform(0.05, 0.3))
        finally:
            app.process.kill()
            app.process.wait(30)
    app = WordCountEos(word_count_classes, bootstrap, state_dir)
    try:
        app.wait_running(120)
        feed(40)
        assert final_counts(bootstrap, dict(expected)) == dict(expected)
    finally:
        errors = app.stop()
    assert app.process.returncode == 0, errors[-3000:]
