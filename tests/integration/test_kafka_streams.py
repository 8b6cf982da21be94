"""Kafka Streams against moldau: the word count of the classic lab, and a restore from its changelog.

tests/clients/streams/WordCount.java (our own few lines) runs on Kafka Streams 4.1.1 from Maven
Central (resolved with Kafka's jars by scripts/fetch-kafka.sh). Streams drives much of the broker
at once: it creates its repartition and compacted changelog topics with their configs, joins a
group with its own assignor, commits offsets every 100 ms, purges the repartition topic with
DeleteRecords, and on a fresh state directory rebuilds its store by reading the changelog from
the beginning.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import time
from pathlib import Path

import pytest

from moldau.testing.kafka_dist import java_executable, kafka_classpath, kafka_libs, log4j2_config, need_kafka
from moldau.testing.tools import need, need_executable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "tests" / "clients" / "streams" / "WordCount.java"
INPUT, OUTPUT, APPLICATION = "wc-lines", "wc-counts", "wc-app"


@pytest.fixture(scope="module")
def word_count_classes() -> Path:
    need_kafka()
    need(any(kafka_libs().glob("kafka-streams-*.jar")), "Kafka Streams jars (run scripts/fetch-kafka.sh)")
    javac = need_executable("javac")
    classes = ROOT / "build" / "clients" / "streams"
    classes.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([javac, "-d", str(classes), "-cp", kafka_classpath(), str(SOURCE)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    return classes


class WordCount:
    """The Streams application as a process: RUNNING on stdout once it runs; stdin closed stops it."""

    def __init__(self, classes: Path, bootstrap: str, state_dir: Path):
        self.process = subprocess.Popen(
            [java_executable(), "-Xmx256m", f"-Dlog4j2.configurationFile={log4j2_config()}",
             "-cp", f"{kafka_classpath()}{os.pathsep}{classes}", "WordCount",
             bootstrap, APPLICATION, INPUT, OUTPUT, str(state_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_running(self, timeout_s: float = 90.0) -> None:
        deadline, seen = time.monotonic() + timeout_s, b""
        fd = self.process.stdout.fileno()
        while b"RUNNING" not in seen and time.monotonic() < deadline and self.process.poll() is None:
            if select.select([fd], [], [], 0.2)[0]:
                seen += os.read(fd, 4096)
        assert b"RUNNING" in seen, f"Streams did not reach RUNNING: {self.stop()[-3000:]}"

    def stop(self) -> str:
        """Close stdin (a clean shutdown), kill by PID if it lingers; return its stderr."""
        try:
            if self.process.poll() is None:
                self.process.stdin.close()
                self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        return self.process.stderr.read().decode(errors="replace")


def produce(bootstrap: str, lines: list[str]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for line in lines:
        producer.produce(INPUT, value=line.encode())
    assert producer.flush(30) == 0


def latest_counts(bootstrap: str, expected: dict[str, int], timeout_s: float = 60.0) -> dict[str, int]:
    """Read the output topic from the beginning until the last count per word equals `expected`."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wc-reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
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


def test_word_count_and_restore_from_changelog(moldau_broker, word_count_classes, tmp_path):
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = moldau_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(INPUT, 2, 1), NewTopic(OUTPUT, 2, 1)]).values():
        future.result(30)

    app = WordCount(word_count_classes, bootstrap, tmp_path / "state-1")
    try:
        app.wait_running()
        produce(bootstrap, ["all streams lead to Kafka", "hello Kafka Streams", "join Kafka summit"])
        first = {"all": 1, "streams": 2, "lead": 1, "to": 1, "kafka": 3, "hello": 1, "join": 1, "summit": 1}
        assert latest_counts(bootstrap, first) == first
    finally:
        errors = app.stop()
    assert app.process.returncode == 0, errors[-3000:]

    topics = admin.list_topics(timeout=30).topics
    changelogs = [t for t in topics if t.startswith(APPLICATION) and t.endswith("-changelog")]
    assert changelogs and any(t.endswith("-repartition") for t in topics if t.startswith(APPLICATION))
    from confluent_kafka.admin import ConfigResource

    config = admin.describe_configs([ConfigResource("topic", changelogs[0])])
    described = next(iter(config.values())).result(30)
    assert described["cleanup.policy"].value == "compact"

    # A fresh state directory: the counts can only come back from the changelog topic.
    app = WordCount(word_count_classes, bootstrap, tmp_path / "state-2")
    try:
        app.wait_running()
        produce(bootstrap, ["Kafka Streams rocks"])
        second = dict(first, kafka=4, streams=3, rocks=1)
        assert latest_counts(bootstrap, second) == second
    finally:
        errors = app.stop()
    assert app.process.returncode == 0, errors[-3000:]
