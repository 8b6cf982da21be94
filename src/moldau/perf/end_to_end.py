"""End-to-end latency at a fixed rate: `moldau perf end-to-end` (produce → broker → consume).

Theory of operation. One process produces at a fixed rate and consumes the same topic in a
second thread. Each record carries its sequence number and the `time.monotonic_ns()` at which it
was handed to produce(); the consumer thread subtracts that from the clock when the record comes
out of `consume()`. Both ends share one clock, so no clock sync is involved. The consumer is
assigned every partition from the beginning of a topic the caller made for this run, and a
probe record is sent and received first, so connection set-up and metadata are not in the
measured latencies.

At moderate rates (thousands per second) the GIL is not the bottleneck: the consumer thread sleeps
inside librdkafka most of the time. What this measures is how quickly the broker makes a record
visible to a waiting fetch (its long-poll wake-up), plus both clients' batching delays.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Mapping

from moldau.perf.consume import ConsumeError, _assign_all
from moldau.perf.produce import make_payload
from moldau.perf.stats import percentiles_ms

STAMP = struct.Struct(">qq")  # sequence, monotonic_ns at produce time
PROBE_SEQUENCE = -1
PROBE_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class EndToEndSummary:
    records: int
    expected: int
    avg_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    produce_rate: float

    def line(self) -> str:
        return (f"{self.records} of {self.expected} records received at {self.produce_rate:.1f} records/sec: "
                f"end-to-end {self.avg_ms:.2f} ms avg, {self.max_ms:.2f} ms max, {self.p50_ms:.2f} ms 50th, "
                f"{self.p95_ms:.2f} ms 95th, {self.p99_ms:.2f} ms 99th, {self.p999_ms:.2f} ms 99.9th.")

    def as_json(self) -> dict:
        return {"records": self.records, "expected": self.expected, "records_per_sec": round(self.produce_rate, 1),
                "avg_latency_ms": round(self.avg_ms, 3), "max_latency_ms": round(self.max_ms, 3),
                "p50_ms": round(self.p50_ms, 3), "p95_ms": round(self.p95_ms, 3), "p99_ms": round(self.p99_ms, 3),
                "p999_ms": round(self.p999_ms, 3)}


class Receiver(threading.Thread):
    """Consumes the topic and records (now - stamp) for every stamped record."""

    def __init__(self, consumer, expected: int):
        super().__init__(name="moldau-perf-receiver", daemon=True)
        self.consumer = consumer
        self.expected = expected
        self.latencies_s: list[float] = []
        self.probe_seen = threading.Event()
        self.stop = threading.Event()
        self.failure: str | None = None

    def run(self) -> None:
        # poll() returns as soon as one record is there; consume(n, t) would wait for n or t.
        poll, unpack, monotonic_ns = self.consumer.poll, STAMP.unpack_from, time.monotonic_ns
        append = self.latencies_s.append
        while not self.stop.is_set() and len(self.latencies_s) < self.expected:
            message = poll(0.1)
            if message is None:
                continue
            now_ns = monotonic_ns()
            if message.error() is not None:
                self.failure = message.error().str()
                continue
            sequence, sent_ns = unpack(message.value())
            if sequence == PROBE_SEQUENCE:
                self.probe_seen.set()
            else:
                append((now_ns - sent_ns) / 1e9)


def run_end_to_end(
    producer_config: Mapping[str, object],
    consumer_config: Mapping[str, object],
    topic: str,
    num_records: int,
    record_size: int,
    throughput: float,
    emit: Callable[[str], None] | None = None,
) -> EndToEndSummary:
    from confluent_kafka import Consumer, Producer

    if record_size < STAMP.size:
        raise ValueError(f"record size must be at least {STAMP.size} bytes for the timestamp")
    consumer = Consumer({"group.id": f"moldau-perf-e2e-{uuid.uuid4().hex[:12]}", "enable.auto.commit": False,
                         "enable.partition.eof": False, **consumer_config})
    receiver = Receiver(consumer, num_records)
    try:
        _assign_all(consumer, topic)
        receiver.start()
        producer = Producer(dict(producer_config))
        padding = make_payload(record_size - STAMP.size)
        _probe(producer, topic, padding, receiver)
        began = time.monotonic()
        _send_stamped(producer, topic, padding, num_records, throughput, emit)
        produce_rate = num_records / max(time.monotonic() - began, 1e-9)
        producer.flush(DRAIN_TIMEOUT_S)
        receiver.join(DRAIN_TIMEOUT_S)
    finally:
        receiver.stop.set()
        receiver.join(5)
        consumer.close()
    if receiver.failure and not receiver.latencies_s:
        raise ConsumeError(receiver.failure)
    latencies = receiver.latencies_s
    p50, p95, p99, p999 = percentiles_ms(latencies)
    avg = 1000.0 * sum(latencies) / len(latencies) if latencies else 0.0
    return EndToEndSummary(len(latencies), num_records, avg, 1000.0 * max(latencies, default=0.0),
                           p50, p95, p99, p999, produce_rate)


def _probe(producer, topic, padding, receiver) -> None:
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    producer.produce(topic, STAMP.pack(PROBE_SEQUENCE, time.monotonic_ns()) + padding)
    producer.flush(PROBE_TIMEOUT_S)
    if not receiver.probe_seen.wait(max(0.0, deadline - time.monotonic())):
        raise ConsumeError(f"the probe record did not come back from {topic!r} within {PROBE_TIMEOUT_S:g}s")


def _send_stamped(producer, topic, padding, num_records, throughput, emit) -> None:
    produce, poll, pack, monotonic_ns = producer.produce, producer.poll, STAMP.pack, time.monotonic_ns
    interval_ns = int(1e9 / throughput)
    began_ns = monotonic_ns()
    next_report_ns = began_ns + 5_000_000_000
    for sequence in range(num_records):
        due_ns = began_ns + sequence * interval_ns
        now_ns = monotonic_ns()
        if due_ns > now_ns:
            time.sleep((due_ns - now_ns) / 1e9)
        while True:
            try:
                produce(topic, pack(sequence, monotonic_ns()) + padding)
                break
            except BufferError:
                poll(0.001)
        poll(0)
        if emit is not None and now_ns >= next_report_ns:
            emit(f"{sequence} records sent")
            next_report_ns = now_ns + 5_000_000_000
