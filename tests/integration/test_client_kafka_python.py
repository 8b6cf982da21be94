"""kafka-python 3.x against moldau: admin, produce (idempotent by default), consume, seek, codecs."""

import pytest

import workload

kafka = pytest.importorskip("kafka")
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import NewTopic  # noqa: E402


def _create(bootstrap, topic, partitions=workload.PARTITIONS):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def _produce(bootstrap, topic, items, **config):
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **config)
    futures = [producer.send(topic, key=m.key, value=m.value, headers=list(m.headers), timestamp_ms=m.timestamp_ms)
               for m in items]
    producer.flush(30)
    for future in futures:
        future.get(10)
    producer.close()


def _consume(consumer, count, timeout_ms=30_000):
    out = []
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while len(out) < count and time.monotonic() < deadline:
        for tp, records in consumer.poll(500).items():
            for r in records:
                out.append(workload.Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp))
    return out


def test_produce_and_consume_10000_keyed_messages_with_headers(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    _create(bootstrap, "kp-orders")
    _produce(bootstrap, "kp-orders", workload.messages())
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("kp-orders", p) for p in range(workload.PARTITIONS)])
    consumer.seek_to_beginning()
    try:
        workload.check(_consume(consumer, workload.MESSAGES))
    finally:
        consumer.close()


def test_seek_to_offset_and_timestamp(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    _create(bootstrap, "kp-seek", 1)
    _produce(bootstrap, "kp-seek", workload.messages(1000))
    tp = TopicPartition("kp-seek", 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([tp])
    try:
        consumer.seek(tp, 900)
        assert [r.offset for r in _consume(consumer, 100)] == list(range(900, 1000))
        found = consumer.offsets_for_times({tp: workload.BASE_TIMESTAMP_MS + 123})[tp]
        assert found.offset == 123 and found.timestamp == workload.BASE_TIMESTAMP_MS + 123
        assert consumer.beginning_offsets([tp])[tp] == 0 and consumer.end_offsets([tp])[tp] == 1000
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(moldau_broker, codec):
    bootstrap = moldau_broker.bootstrap_servers
    topic = f"kp-{codec}"
    _create(bootstrap, topic)
    _produce(bootstrap, topic, workload.messages(1000), compression_type=codec)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(workload.PARTITIONS)])
    consumer.seek_to_beginning()
    try:
        workload.check(_consume(consumer, 1000), 1000)
    finally:
        consumer.close()


def test_admin_alter_configs_and_describe_log_dirs(moldau_broker):
    from kafka.admin import ConfigResource, ConfigResourceType

    bootstrap = moldau_broker.bootstrap_servers
    _create(bootstrap, "kp-admin", 2)
    _produce(bootstrap, "kp-admin", workload.messages(100))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # AlterConfigs (not incremental) replaces the topic's whole set of overrides
        resource = ConfigResource(ConfigResourceType.TOPIC, "kp-admin", configs={"retention.ms": "3600000"})
        assert admin.alter_configs([resource], incremental=False) == {"topic": {"kp-admin": "OK"}}
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")])
        entry = described["topic"]["kp-admin"]["retention.ms"]
        assert (entry["value"], entry["config_source"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
        (broker,) = admin.describe_log_dirs()
    finally:
        admin.close()
    (log_dir,) = broker["log_dirs"]
    sizes = {(t["name"], p["partition_index"]): p["partition_size"] for t in log_dir["topics"] for p in t["partitions"]}
    expected = moldau_broker.call(lambda core: {("kp-admin", p): core.partition("kp-admin", p).log.size_bytes
                                                for p in (0, 1)})
    assert {k: v for k, v in sizes.items() if k[0] == "kp-admin"} == expected
    assert sum(expected.values()) > 0 and log_dir["usable_bytes"] > 0
