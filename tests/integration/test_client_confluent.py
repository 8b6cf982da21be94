"""confluent-kafka (librdkafka 2.x) against moldau: admin, produce, consume, seek, codecs."""

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import workload


def _create(bootstrap: str, topic: str, partitions: int = workload.PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(10)


def _produce(bootstrap: str, topic: str, items, **config) -> None:
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for m in items:
        producer.produce(topic, key=m.key, value=m.value, headers=list(m.headers), timestamp=m.timestamp_ms,
                         on_delivery=lambda err, _msg: err and errors.append(err))
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not errors, errors[:3]


def _consumer(bootstrap: str, **config) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, **config})


def _consume_assigned(consumer: Consumer, count: int, timeout_s: float = 30) -> list[workload.Consumed]:
    import time

    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(msg.error())
            out.append(workload.Consumed(msg.partition(), msg.offset(), msg.key(), msg.value(),
                                         tuple((k, v) for k, v in (msg.headers() or [])), msg.timestamp()[1]))
    return out


def test_produce_and_consume_10000_keyed_messages_with_headers(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    _create(bootstrap, "orders")
    _produce(bootstrap, "orders", workload.messages())
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition("orders", p, 0) for p in range(workload.PARTITIONS)])
    try:
        workload.check(_consume_assigned(consumer, workload.MESSAGES))
    finally:
        consumer.close()


def test_seek_to_offset_and_to_timestamp(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    _create(bootstrap, "seeks", partitions=1)
    _produce(bootstrap, "seeks", workload.messages(1000))
    consumer = _consumer(bootstrap)
    try:
        consumer.assign([TopicPartition("seeks", 0, 500)])
        got = _consume_assigned(consumer, 500)
        assert [r.offset for r in got] == list(range(500, 1000))
        wanted = workload.BASE_TIMESTAMP_MS + 750
        (found,) = consumer.offsets_for_times([TopicPartition("seeks", 0, wanted)], timeout=10)
        assert found.offset == 750
        consumer.assign([TopicPartition("seeks", 0, found.offset)])
        got = _consume_assigned(consumer, 250)
        assert got[0].timestamp_ms == wanted and len(got) == 250
        low, high = consumer.get_watermark_offsets(TopicPartition("seeks", 0), timeout=10)
        assert (low, high) == (0, 1000)
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(moldau_broker, codec):
    bootstrap = moldau_broker.bootstrap_servers
    topic = f"codec-{codec}"
    _create(bootstrap, topic)
    _produce(bootstrap, topic, workload.messages(2000), **{"compression.type": codec})
    consumer = _consumer(bootstrap)
    consumer.assign([TopicPartition(topic, p, 0) for p in range(workload.PARTITIONS)])
    try:
        workload.check(_consume_assigned(consumer, 2000), 2000)
    finally:
        consumer.close()
