"""The consumer load generator behind `moldau perf consume` (kafka-consumer-perf-test).

Theory of operation. Messages are taken from librdkafka in batches (`consume(BATCH)`), and per
batch the only Python work is `sum(map(len, batch))` and a scan for error messages with
`map(Message.error, …)` — C-level iteration, no Python code per message.

With a group the consumer subscribes (as Kafka's tool does) and `rebalance_ms` is the time until
the first assignment; without one it assigns every partition of the topic from the beginning,
which needs no group coordinator. The run ends after `messages` messages, or after `timeout_s`
with nothing new (Kafka's `--timeout`), and the summary then says how many arrived.

Rates are over two spans, as in Kafka's tool: the whole run (start to last message) and the
fetch time (whole run minus the rebalance time).
"""

from __future__ import annotations

import time
import uuid
from typing import Callable, Mapping

from moldau.perf.produce import REPORT_INTERVAL_S, cpu_seconds
from moldau.perf.stats import MB, ConsumeSummary

BATCH = 10_000
POLL_TIMEOUT_S = 0.5
METADATA_TIMEOUT_S = 30.0
# librdkafka's default prefetch (queued.min.messages 100000, then fetch.queue.backoff.ms 1000)
# stalls a fast reader for up to a second at a time: measured 190k msg/s against Kafka with the
# defaults, 750k–1M with these. They only change how far ahead the client fetches.
PREFETCH_DEFAULTS = {"queued.min.messages": 1_000_000, "fetch.queue.backoff.ms": 10}


class ConsumeError(RuntimeError):
    """The consumer could not start (unknown topic) or a message carried an error."""


def run_consume(
    config: Mapping[str, object],
    topic: str,
    messages: int,
    group: str | None = None,
    timeout_s: float = 10.0,
    emit: Callable[[str], None] | None = None,
    report_interval_s: float = REPORT_INTERVAL_S,
) -> ConsumeSummary:
    from confluent_kafka import Consumer, Message

    assigned_at: list[float] = []
    settings = {
        "group.id": group or f"moldau-perf-{uuid.uuid4().hex[:12]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": bool(group),
        "enable.partition.eof": False,
        **PREFETCH_DEFAULTS,
        **config,
    }
    consumer = Consumer(settings)
    start_ms = int(time.time() * 1000)
    began = time.monotonic()
    cpu_began = cpu_seconds()
    try:
        if group:
            consumer.subscribe([topic], on_assign=lambda c, partitions: assigned_at.append(time.monotonic()))
        else:
            _assign_all(consumer, topic)
            assigned_at.append(time.monotonic())
        count, size, last_at = _consume_loop(consumer, messages, timeout_s, emit, report_interval_s, began, Message)
    finally:
        consumer.close()
    end_ms = start_ms + int((last_at - began) * 1000)
    rebalance_ms = (assigned_at[0] - began) * 1000.0 if assigned_at else 0.0
    fetch_ms = max(0.0, (last_at - began) * 1000.0 - rebalance_ms)
    return ConsumeSummary(start_ms, end_ms, count, size, rebalance_ms, fetch_ms, cpu_seconds() - cpu_began)


def _assign_all(consumer, topic: str) -> None:
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    metadata = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        reason = described.error.str() if described is not None and described.error else "no partitions"
        raise ConsumeError(f"cannot read topic {topic!r}: {reason}")
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(described.partitions)])


def _consume_loop(consumer, messages, timeout_s, emit, report_interval_s, began, Message):
    consume, monotonic = consumer.consume, time.monotonic
    error_of = Message.error
    count = size = 0
    last_at = began
    window_count, window_size, window_began = 0, 0, began
    next_report = began + report_interval_s
    while count < messages:
        batch = consume(min(BATCH, messages - count), POLL_TIMEOUT_S)
        now = monotonic()
        if batch:
            if any(map(error_of, batch)):
                batch = _without_errors(batch)
            count += len(batch)
            size += sum(map(len, batch))
            last_at = now
        elif now - last_at > timeout_s:
            break
        if emit is not None and now >= next_report:
            elapsed = now - window_began
            emit(f"{count} messages consumed, {(count - window_count) / elapsed:.1f} msg/sec "
                 f"({(size - window_size) / MB / elapsed:.2f} MB/sec)")
            window_count, window_size, window_began, next_report = count, size, now, now + report_interval_s
    return count, size, last_at


def _without_errors(batch):
    """Drop informational errors; raise on a real one (a failed fetch, an unknown topic)."""
    from confluent_kafka import KafkaError

    kept = []
    for message in batch:
        error = message.error()
        if error is None:
            kept.append(message)
        elif error.code() != KafkaError._PARTITION_EOF:
            raise ConsumeError(error.str())
    return kept
