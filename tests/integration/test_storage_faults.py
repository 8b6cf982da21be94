"""Storage faults end to end (issue 14), against `moldau server` processes.

Finding 1: one flipped byte in a closed segment, then a restart: no file is removed or
changed, the damaged partition answers KAFKA_STORAGE_ERROR and the broker log says which file,
byte and offsets; the other partitions keep serving. Finding 2: a corrupt batch inside a
segment makes consumers see an error (CORRUPT_MESSAGE), not endless empty fetches.
"""

from __future__ import annotations

import hashlib
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.errors import ErrorCode

from moldau.testing.server_process import ServerProcess, free_port
from rawclient import call

from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch

VALUE = b"x" * 300


def _produce(bootstrap: str, topic: str, count: int, prefix: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                         "enable.idempotence": False, "batch.num.messages": 20})
    failed = []
    for i in range(count):
        producer.produce(topic, value=f"{prefix}-{i}-".encode() + VALUE,
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0 and not failed, failed


def _consume(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{topic}-{time.time()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(out) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(500, 0.5):
            if msg.error() is None:
                out.append(msg.value())
    consumer.close()
    return out


def _batches(data: bytes) -> list[int]:
    starts, position = [], 0
    while position + 12 <= len(data):
        starts.append(position)
        position += int.from_bytes(data[position + 8 : position + 12], "big") + 12
    return starts


def _fingerprint(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _raw_produce(server: ServerProcess, topic: str) -> ErrorCode:
    records = build_batch([Record(0, int(time.time() * 1000), None, b"raw")])
    request = build(codec.request_schema(0, 9), {
        "transactional_id": None, "acks": -1, "timeout": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}]})
    return call(server, 0, 9, request).responses[0].partition_responses[0].error_code


def _raw_fetch(server: ServerProcess, topic: str, offset: int):
    request = build(codec.request_schema(1, 12), {
        "cluster_id": None, "replica_id": -1, "replica_state": None, "max_wait": 0, "min_bytes": 1,
        "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "topic_id": None, "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset, "last_fetched_epoch": -1,
             "log_start_offset": -1, "partition_max_bytes": 1 << 20, "replica_directory_id": None}]}],
        "forgotten_topics_data": [], "rack_id": ""})
    return call(server, 1, 12, request).responses[0].partitions[0]


def test_flipped_byte_in_a_closed_segment_takes_one_partition_offline(tmp_path):
    data_dir = tmp_path / "data"
    server = ServerProcess(str(data_dir)).start()
    try:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        futures = admin.create_topics([NewTopic("damaged", 1, 1, config={"segment.bytes": str(64 * 1024)}),
                                       NewTopic("healthy", 1, 1)])
        for future in futures.values():
            future.result(10)
        _produce(server.bootstrap_servers, "damaged", 4000, "d")
        _produce(server.bootstrap_servers, "healthy", 500, "h")
        assert server.terminate() == 0
        directory = data_dir / "damaged-0"
        segments = sorted(directory.glob("*.log"))
        assert len(segments) >= 15
        victim = segments[len(segments) // 2]
        data = bytearray(victim.read_bytes())
        last = _batches(data)[-1]
        data[last + 8 + 3] ^= 0x40  # the length field of the segment's last batch
        victim.write_bytes(bytes(data))
        before = _fingerprint(directory)

        metrics_port = free_port()
        server = ServerProcess(str(data_dir), port=server.port, overrides={"metrics.port": str(metrics_port)}).start()
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'moldau_storage_faults_total{kind="damaged_logs"} 1.0' in scraped
        assert "moldau_offline_partitions_local 1.0" in scraped
        # The other partition serves, reads and writes.
        assert len(_consume(server.bootstrap_servers, "healthy", 500)) == 500
        _produce(server.bootstrap_servers, "healthy", 10, "h2")
        # The damaged one says so, for produce and fetch.
        assert _raw_produce(server, "damaged") == ErrorCode.kafka_storage_error
        assert _raw_fetch(server, "damaged", 0).error_code == ErrorCode.kafka_storage_error
        assert server.terminate() == 0
    finally:
        server.close()
    assert _fingerprint(directory) == before, "no file of the damaged partition was removed or changed"
    log = Path(server.stderr_path).read_text()
    errors = [line for line in log.splitlines() if victim.name in line and "offline" in line]
    assert errors, log[-3000:]
    assert f"at byte {last}" in errors[0] and "damaged-0" in errors[0]


def test_corrupt_batch_mid_segment_is_an_error_for_consumers_not_a_stall(tmp_path):
    data_dir = tmp_path / "data"
    server = ServerProcess(str(data_dir)).start()
    try:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        admin.create_topics([NewTopic("t", 1, 1, config={"segment.bytes": str(64 * 1024)})])["t"].result(10)
        _produce(server.bootstrap_servers, "t", 2000, "m")
        assert server.terminate() == 0
        victim = sorted((data_dir / "t-0").glob("*.log"))[2]
        data = bytearray(victim.read_bytes())
        starts = _batches(data)
        middle = starts[len(starts) // 2]
        bad_offset = int.from_bytes(data[middle : middle + 8], "big")
        data[middle + 80] ^= 0xFF  # inside the records: the CRC no longer matches
        victim.write_bytes(bytes(data))
        server = ServerProcess(str(data_dir), port=server.port).start()
        assert _raw_fetch(server, "t", bad_offset).error_code == ErrorCode.corrupt_message
        for check_crcs in (True, False):
            consumer = Consumer({"bootstrap.servers": server.bootstrap_servers, "group.id": f"c{check_crcs}",
                                 "check.crcs": check_crcs, "enable.auto.commit": False})
            consumer.assign([TopicPartition("t", 0, 0)])
            got, error = 0, None
            deadline = time.monotonic() + 30
            while error is None and time.monotonic() < deadline:
                for msg in consumer.consume(500, 0.5):
                    if msg.error() is None:
                        got += 1
                    elif msg.error().code() != KafkaError._PARTITION_EOF:
                        error = msg.error()
            consumer.close()
            assert error is not None, "the consumer must hear about the damage"
            assert got == bad_offset, (got, bad_offset)
        assert server.terminate() == 0
    finally:
        server.close()
    log = Path(server.stderr_path).read_text()
    assert sum(victim.name in line and "corrupt" in line for line in log.splitlines()) == 1, "once per segment"
