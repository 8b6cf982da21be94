"""Retention: small segments and retention.bytes keep only recent segments; the earliest
offset advances; a consumer asking for a deleted offset gets OFFSET_OUT_OF_RANGE and recovers
per auto.offset.reset; a low retention.ms empties even the active segment (Kafka's lab).
The brokers here check retention every 500 ms instead of Kafka's 5 minutes."""

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from moldau import Broker


@pytest.fixture
def broker():
    with Broker(config={"log.retention.check.interval.ms": "500"}) as running:
        yield running


def test_retention_bytes_deletes_old_segments_and_consumers_reset(broker):
    moldau_broker = broker
    bootstrap = moldau_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    configs = {"segment.bytes": "20000", "retention.bytes": "60000"}
    admin.create_topics([NewTopic("retained", 1, 1, config=configs)])["retained"].result(10)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 10})
    for i in range(3000):
        producer.produce("retained", value=f"{i:06d}".encode() * 10)
        if i % 100 == 0:
            producer.flush(10)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "r", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    tp = TopicPartition("retained", 0)
    deadline = time.monotonic() + 15
    low, high = consumer.get_watermark_offsets(tp, timeout=10)
    while low == 0 and time.monotonic() < deadline:  # retention runs on the broker's timer
        time.sleep(0.2)
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
    assert high == 3000 and low > 0, (low, high)
    size = moldau_broker.call(lambda core: core.partition("retained", 0).log.size_bytes)
    assert size <= 60000 + 20000, "only the most recent segments remain"
    consumer.assign([TopicPartition("retained", 0, 1)])  # deleted: reset to earliest
    first = None
    while first is None and time.monotonic() < deadline + 15:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            first = msg.offset()
    consumer.close()
    assert first == low


def test_low_retention_ms_empties_the_topic_active_segment_included(broker):
    bootstrap = broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("fleeting", 1, 1, config={"retention.ms": "1000"})])["fleeting"].result(10)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce("fleeting", value=f"event {i}".encode())
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "f"})
    tp = TopicPartition("fleeting", 0)
    deadline = time.monotonic() + 15
    low, high = consumer.get_watermark_offsets(tp, timeout=10)
    while low < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
    consumer.close()
    assert (low, high) == (5, 5), "the records are gone, the offsets go on"
    producer.produce("fleeting", value=b"after")
    assert producer.flush(10) == 0
    assert broker.call(lambda core: core.partition("fleeting", 0).log_end_offset) == 6
