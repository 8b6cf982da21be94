"""The producer load generator behind `moldau perf produce` (kafka-producer-perf-test).

Theory of operation. Python drives librdkafka, so the generator's own cost is Python work per
record; flat out it is one `produce_batch` call per POLL_EVERY records (a list of message dicts
built once around a payload allocated once; 15–35% faster than a `produce()` per record here),
and one delivery callback per record that appends `msg.latency()` (librdkafka's own
produce-to-ack time) to a C array. Delivery reports are served by `poll(0)` once per batch, and
by a short `poll` when librdkafka's queue is full, which is the back-pressure path. Paced runs
use `produce()` per record, since each record has its own due time. Progress,
the throttle's clock reads and all statistics happen outside that inner loop.

With `throughput > 0` records are paced like Kafka's ThroughputThrottler: the n-th record is not
sent before `start + n / throughput`; the generator sleeps off any lead of a millisecond or more.

Invariant: the summary counts only acknowledged records; any failed delivery is counted in
`errors` and the first failure's text is kept.
"""

from __future__ import annotations

import random
import resource
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from moldau.perf.stats import LatencyLog, ProduceSummary, window_line

POLL_EVERY = 1024
REPORT_INTERVAL_S = 5.0
QUEUE_FULL_POLL_S = 0.0005
FLUSH_TIMEOUT_S = 120.0
SLEEP_MIN_S = 0.001
# librdkafka's default queue (100,000 messages) fills in a fraction of a second at full speed and
# the loop then spins on BufferError: measured 450k records/s against Kafka with it, 610k with
# 1,000,000. The bytes bound is Java's buffer.memory (32 MiB) rather than librdkafka's 1 GiB, so
# that latencies (which include time queued in the client) compare with Kafka's Java tool.
# Overridable with --producer-prop.
PRODUCER_DEFAULTS = {"queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 32 * 1024}


def make_payload(record_size: int, seed: int = 0) -> bytes:
    """Upper-case ASCII letters, as Kafka's ProducerPerformance fills its payload."""
    rng = random.Random(seed)
    return bytes(rng.randrange(65, 91) for _ in range(record_size))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Deliveries:
    """The delivery callback's state: latencies appended, failures counted."""

    log: LatencyLog
    errors: int = 0
    first_error: str | None = None

    def callback(self) -> Callable:
        append = self.log.latencies_s.append

        def on_delivery(error, message) -> None:
            if error is None:
                append(message.latency())
            else:
                self.errors += 1
                if self.first_error is None:
                    self.first_error = error.str()

        return on_delivery

    @property
    def acknowledged(self) -> int:
        return len(self.log.latencies_s)


class Reporter:
    """A progress line every REPORT_INTERVAL_S, over the records acknowledged in the window."""

    def __init__(self, record_size: int, emit: Callable[[str], None] | None, interval_s: float = REPORT_INTERVAL_S):
        self.record_size = record_size
        self.emit = emit
        self.interval_s = interval_s
        self.window_began = time.monotonic()
        self.next_at = self.window_began + interval_s

    def maybe_report(self, deliveries: Deliveries, now: float) -> None:
        if self.emit is None or now < self.next_at:
            return
        window = deliveries.log.take_window()
        self.emit(window_line(window.count, now - self.window_began, self.record_size, window))
        self.window_began, self.next_at = now, now + self.interval_s


def run_produce(
    config: Mapping[str, object],
    topic: str,
    num_records: int,
    record_size: int,
    throughput: float = -1,
    emit: Callable[[str], None] | None = print,
    report_interval_s: float = REPORT_INTERVAL_S,
) -> tuple[ProduceSummary, str | None]:
    """Send num_records records of record_size bytes; the summary and the first failure, if any."""
    from confluent_kafka import Producer

    log = LatencyLog()
    deliveries = Deliveries(log)
    producer = Producer({**PRODUCER_DEFAULTS, **config, "on_delivery": deliveries.callback()})
    payload = make_payload(record_size)
    reporter = Reporter(record_size, emit, report_interval_s)
    cpu_began = cpu_seconds()
    began = time.monotonic()
    if throughput > 0:
        _send_paced(producer, topic, payload, num_records, throughput, deliveries, reporter, began)
    else:
        _send_flat_out(producer, topic, payload, num_records, deliveries, reporter)
    _drain(producer, deliveries, reporter)
    elapsed_s = time.monotonic() - began
    summary = ProduceSummary.of(log.latencies_s, record_size, elapsed_s, deliveries.errors, cpu_seconds() - cpu_began)
    return summary, deliveries.first_error


def _send_flat_out(producer, topic, payload, num_records, deliveries, reporter) -> None:
    """produce_batch() of POLL_EVERY records at a time: one Python call per batch, not per record.

    librdkafka may queue only part of a batch (queue full): the rest is marked with `_error`
    and sent again after a poll. The message dicts are reused, so the marks are cleared.
    """
    from confluent_kafka import KafkaError, KafkaException

    produce_batch, poll, monotonic = producer.produce_batch, producer.poll, time.monotonic
    batch = [{"value": payload} for _ in range(POLL_EVERY)]
    sent = 0
    while sent < num_records:
        wanted = min(POLL_EVERY, num_records - sent)
        try:
            queued = produce_batch(topic, batch if wanted == POLL_EVERY else batch[:wanted])
        except BufferError:
            queued = 0
        sent += queued
        if queued < wanted:
            errors = [message.pop("_error") for message in batch if "_error" in message]
            fatal = [error for error in errors if error.code() != KafkaError._QUEUE_FULL]
            if fatal:
                raise KafkaException(fatal[0])
            poll(QUEUE_FULL_POLL_S)
        else:
            poll(0)
        reporter.maybe_report(deliveries, monotonic())


def _send_paced(producer, topic, payload, num_records, throughput, deliveries, reporter, began) -> None:
    produce, poll, monotonic, sleep = producer.produce, producer.poll, time.monotonic, time.sleep
    interval_s = 1.0 / throughput
    sent = 0
    while sent < num_records:
        lead_s = began + sent * interval_s - monotonic()
        if lead_s >= SLEEP_MIN_S:
            poll(0)
            reporter.maybe_report(deliveries, monotonic())
            sleep(lead_s)
        try:
            produce(topic, payload)
        except BufferError:
            poll(QUEUE_FULL_POLL_S)
            continue
        sent += 1
        if sent % POLL_EVERY == 0:
            poll(0)
            reporter.maybe_report(deliveries, monotonic())


def _drain(producer, deliveries, reporter) -> None:
    """Wait for every outstanding delivery report, still printing progress lines."""
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while len(producer) > 0 and time.monotonic() < deadline:
        producer.poll(0.05)
        reporter.maybe_report(deliveries, time.monotonic())
    producer.flush(max(0.0, deadline - time.monotonic()))
