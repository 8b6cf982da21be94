"""A full disk under a real `moldau server` (issue 14, finding 3), on a small tmpfs.

While the disk is full: produce answers KAFKA_STORAGE_ERROR, topic creation fails cleanly, a
consumer group cannot form — and the broker keeps every connection. Once space returns,
without a restart: the group gets its assignment, the topic can be created, producing works.
After a kill -9 nothing acknowledged before (or after) the fill is missing.

Mounting a tmpfs needs root (CI runs as root): the test skips otherwise, and fails under
MOLDAU_REQUIRE_ALL=1. It unmounts and removes everything it made.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch
from moldau.testing.server_process import ServerProcess
from moldau.testing.tools import need
from rawclient import call

DISK_MIB = 24


@contextlib.contextmanager
def small_tmpfs(path: Path):
    need(hasattr(os, "geteuid") and os.geteuid() == 0, "root, to mount a tmpfs for the disk-full test")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()


def fill(directory: Path) -> Path:
    """Write a file until the file system refuses another byte."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file:
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    file.write(b"\xaa" * chunk)
            except OSError:
                continue
    return filler


def produce_acked(bootstrap: str, topic: str, prefix: str, count: int) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 5000, "enable.idempotence": True})
    acked: list[bytes] = []
    for i in range(count):
        producer.produce(topic, value=f"{prefix}-{i}".encode() + b"." * 200,
                         on_delivery=lambda err, msg: err is None and acked.append(msg.value()))
        producer.poll(0)
    producer.flush(15)
    return acked


def raw_produce_error(server: ServerProcess, topic: str) -> ErrorCode:
    request = build(codec.request_schema(0, 9), {
        "transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [{"name": topic, "partition_data": [
            {"index": 0, "records": build_batch([Record(0, int(time.time() * 1000), None, b"raw")])}]}]})
    return call(server, 0, 9, request).responses[0].partition_responses[0].error_code


def poll_values(consumer: Consumer, seconds: float, want: int = 1 << 30) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(out) < want:
        for msg in consumer.consume(200, 0.2):
            if msg.error() is None:
                out.append(msg.value())
            else:
                assert msg.error().code() in (KafkaError._PARTITION_EOF, KafkaError.COORDINATOR_NOT_AVAILABLE,
                                              KafkaError.NOT_COORDINATOR, KafkaError._TRANSPORT) \
                    or msg.error().retriable(), msg.error()
    return out


def test_full_disk_refuses_cleanly_and_recovers_without_a_restart(tmp_path):
    with small_tmpfs(tmp_path / "disk") as disk:
        data_dir = str(disk)  # the server's log goes next to it, off the full disk
        server = ServerProcess(data_dir).start()
        consumer = None
        try:
            bootstrap = server.bootstrap_servers
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.create_topics([NewTopic("before", 1, 1)])["before"].result(10)
            acked = produce_acked(bootstrap, "before", "a", 2000)
            assert len(acked) == 2000

            filler = fill(disk)
            assert raw_produce_error(server, "before") == ErrorCode.kafka_storage_error
            assert produce_acked(bootstrap, "before", "lost", 20) == [], "nothing is acknowledged while full"
            with pytest.raises(Exception) as refused:
                admin.create_topics([NewTopic("during", 1, 1)])["during"].result(10)
            assert "KAFKA_STORAGE_ERROR" in str(refused.value) or "free" in str(refused.value)
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "joined-while-full",
                                 "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
            consumer.subscribe(["before"])
            assert poll_values(consumer, 4) == [], "no group can form while the offsets topic cannot be created"

            filler.unlink()  # space is back; the broker is not restarted
            got = poll_values(consumer, 40, want=len(acked))
            assert got[: len(acked)] == acked, "the group formed and consumed everything"
            admin.create_topics([NewTopic("during", 1, 1)])["during"].result(10)
            after = produce_acked(bootstrap, "during", "d", 200) + produce_acked(bootstrap, "before", "b", 200)
            assert len(after) == 400
            consumer.close()
            consumer = None

            server.kill()  # kill -9
            server = ServerProcess(data_dir, port=server.port).start()
            stored = read_partition(server.bootstrap_servers, "before")
            assert stored == acked + [v for v in after if v.startswith(b"b-")]
            assert len(read_partition(server.bootstrap_servers, "during")) == 200
        finally:
            if consumer is not None:
                consumer.close()
            server.close()


def read_partition(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, low)])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < high - low and time.monotonic() < deadline:
        out += [m.value() for m in consumer.consume(500, 0.5) if m.error() is None]
    consumer.close()
    return out
