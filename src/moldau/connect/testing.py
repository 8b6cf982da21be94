"""Helpers for testing connectors (ours and yours): poll a condition, read a topic, call the REST API.

Theory of operation: Connect is asynchronous — a line written to a file shows up in a topic some
milliseconds later — so tests *poll* for the expected state with a short interval and a
deadline (`wait_until`) instead of sleeping a fixed time; on timeout the last observed value is
in the assertion message. `read_topic` reads a topic from the beginning with a fresh consumer
group until no new record arrives for `quiet_s`, so "exactly these records, no duplicates" can
be asserted. `rest` is a tiny JSON client for the worker's REST API.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable

import confluent_kafka


@contextlib.contextmanager
def cluster(kind: str, data_dir: str):
    """Yield the bootstrap servers of a fresh broker: "moldau" (in-process) or "kafka" (Apache Kafka
    from the Maven jars; the test is skipped when Java or the jars are missing). Consumer groups
    form without the initial rebalance delay, as test brokers usually configure."""
    if kind == "moldau":
        from moldau.runtime.embedded import Broker

        with Broker(data_dir=str(data_dir), config={"group.initial.rebalance.delay.ms": "0"}) as broker:
            yield broker.bootstrap_servers
    elif kind == "kafka":
        from moldau.testing.kafka_dist import KafkaServer, need_kafka

        need_kafka()
        with KafkaServer() as kafka:  # already configured without the delay
            yield kafka.bootstrap_servers
    else:
        raise ValueError(f"unknown broker kind {kind!r}; expected moldau or kafka")


_CLUSTERS_KEY = "_moldau_connect_clusters"


def shared_cluster(request, kind: str) -> str:
    """Bootstrap servers of one `cluster(kind)` shared by every test module of the pytest session
    that asks for it (started on first use, stopped when the session ends), so a suite pays for
    Apache Kafka's start-up once. Tests sharing it must use their own topic and connector names."""
    import tempfile

    clusters = request.config.__dict__.setdefault(_CLUSTERS_KEY, {})
    if kind not in clusters:
        stack = contextlib.ExitStack()
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"moldau-connect-{kind}-"))
        try:
            clusters[kind] = stack.enter_context(cluster(kind, data_dir))
        except BaseException:
            stack.close()
            raise
        request.config.add_cleanup(stack.close)
    return clusters[kind]


def wait_until(observe: Callable[[], Any], accept: Callable[[Any], bool], timeout_s: float = 20.0,
               interval_s: float = 0.05, what: str = "condition") -> Any:
    """Call `observe()` until `accept(value)`; return that value or raise AssertionError with the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = observe()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {value!r}")
        time.sleep(interval_s)


def read_topic(bootstrap_servers: str, topic: str, expect_at_least: int = 0, timeout_s: float = 20.0,
               quiet_s: float = 0.5) -> list[tuple[bytes | None, bytes | None]]:
    """All (key, value) pairs of `topic`, in offset order per partition.

    Reads by assigning every partition from offset 0 — no consumer group is joined or committed,
    so it observes a topic without changing anything."""
    consumer = confluent_kafka.Consumer({
        "bootstrap.servers": bootstrap_servers, "group.id": f"moldau-test-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
    })
    records: list[tuple[bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions = wait_until(lambda: _partitions(consumer, topic), bool, timeout_s=timeout_s,
                                interval_s=0.1, what=f"topic {topic} to exist")
        consumer.assign([confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                         for p in partitions])
        last_arrival = time.monotonic()
        while time.monotonic() < deadline:
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                records.append((message.key(), message.value()))
                last_arrival = time.monotonic()
            elif len(records) >= expect_at_least and time.monotonic() - last_arrival >= quiet_s:
                break
    finally:
        consumer.close()
    return records


def _partitions(consumer, topic: str) -> list[int]:
    found = consumer.list_topics(topic, timeout=5).topics.get(topic)
    if found is None or found.error is not None:
        return []
    return sorted(found.partitions)


def rest(base_url: str, method: str, path: str, body: Any = None, timeout_s: float = 10.0) -> tuple[int, Any]:
    """(status, decoded JSON body or None) of one REST call; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    return status, json.loads(raw) if raw else None
