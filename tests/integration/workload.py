"""The shared workload of the client compatibility tests (issue 2).

Every client test produces the same 10,000 keyed messages with headers into a 3-partition
topic and checks, after consuming from the beginning, that each partition holds its messages
in order with keys, values, headers and timestamps intact. Keys decide partitions, so the
check derives the expected per-partition order from what the producer was told.
"""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass

MESSAGES = 10_000
PARTITIONS = 3
BASE_TIMESTAMP_MS = 1_700_000_000_000


@dataclass(frozen=True)
class Message:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def message(i: int) -> Message:
    return Message(
        key=f"key-{i % 97}".encode(),
        value=f"value-{i}-".encode() + bytes(range(i % 50)),
        headers=(("seq", str(i).encode()), ("source", b"moldau-test")),
        timestamp_ms=BASE_TIMESTAMP_MS + i,
    )


def messages(count: int = MESSAGES) -> list[Message]:
    return [message(i) for i in range(count)]


@dataclass(frozen=True)
class Consumed:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


def run_client(*command: str, timeout_s: float = 180) -> str:
    """Run one command of a client program (tests/clients/); its stdout, or the test fails with
    its stderr."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def end_offset(consumer, topic: str, partition: int, timeout_s: float = 30) -> int:
    """The partition's end offset (the high watermark; read_committed: the last stable offset),
    asking again while a leader elected a moment ago answers OFFSET_NOT_AVAILABLE (its high
    watermark has not reached its epoch's start yet), as a Kafka consumer does."""
    import time

    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)[1]
        except KafkaException as error:
            if error.args[0].code() != KafkaError.OFFSET_NOT_AVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def from_json_lines(output: str) -> list[Consumed]:
    """What the client programs of tests/clients/ print: one JSON object per consumed record,
    binary fields in base64, headers as {"key", "value"} objects."""
    records = []
    for line in output.splitlines():
        r = json.loads(line)
        headers = tuple((h["key"], base64.b64decode(h["value"])) for h in r["headers"])
        records.append(Consumed(r["partition"], r["offset"], base64.b64decode(r["key"]),
                                base64.b64decode(r["value"]), headers, r["timestamp"]))
    return records


def check(consumed: list[Consumed], count: int = MESSAGES) -> None:
    """Every message exactly once; per partition in produce order with its fields intact."""
    assert len(consumed) == count, f"consumed {len(consumed)} of {count}"
    by_partition: dict[int, list[Consumed]] = {}
    for record in consumed:
        by_partition.setdefault(record.partition, []).append(record)
    seen = set()
    for partition, records in sorted(by_partition.items()):
        offsets = [r.offset for r in records]
        assert offsets == sorted(offsets), f"partition {partition} out of offset order"
        sequence = [int(dict(r.headers)["seq"]) for r in records]
        assert sequence == sorted(sequence), f"partition {partition} not in produce order"
        keys = {r.key for r in records}
        for record in records:
            i = int(dict(record.headers)["seq"])
            expected = message(i)
            assert (record.key, record.value, record.timestamp_ms) == (expected.key, expected.value, expected.timestamp_ms)
            assert tuple(record.headers) == expected.headers
            seen.add(i)
        for other, others in by_partition.items():
            if other != partition:
                assert not keys & {r.key for r in others}, "one key landed in two partitions"
    assert seen == set(range(count))
