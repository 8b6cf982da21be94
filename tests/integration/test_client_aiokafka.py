"""aiokafka against moldau: admin, produce, consume, seek, codecs."""

import asyncio

import pytest

import workload

aiokafka = pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402


async def _create(bootstrap, topic, partitions=workload.PARTITIONS):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap, topic, items, **config):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **config)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=m.key, value=m.value, headers=list(m.headers),
                                       timestamp_ms=m.timestamp_ms) for m in items]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _consume(consumer, count, timeout_s=30):
    out = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(out) < count and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=500, max_records=5000)
        for tp, records in batches.items():
            for r in records:
                out.append(workload.Consumed(tp.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp))
    return out


def test_produce_and_consume_10000_keyed_messages_with_headers(moldau_broker):
    async def scenario():
        bootstrap = moldau_broker.bootstrap_servers
        await _create(bootstrap, "aio-orders")
        await _produce(bootstrap, "aio-orders", workload.messages())
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition("aio-orders", p) for p in range(workload.PARTITIONS)])
            await consumer.seek_to_beginning()
            workload.check(await _consume(consumer, workload.MESSAGES))
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def test_seek_to_offset_and_timestamp(moldau_broker):
    async def scenario():
        bootstrap = moldau_broker.bootstrap_servers
        await _create(bootstrap, "aio-seek", 1)
        await _produce(bootstrap, "aio-seek", workload.messages(1000))
        tp = TopicPartition("aio-seek", 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, 990)
            assert [r.offset for r in await _consume(consumer, 10)] == list(range(990, 1000))
            found = (await consumer.offsets_for_times({tp: workload.BASE_TIMESTAMP_MS + 321}))[tp]
            assert found.offset == 321
            assert (await consumer.end_offsets([tp]))[tp] == 1000
        finally:
            await consumer.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_round_trip(moldau_broker, codec):
    async def scenario():
        bootstrap = moldau_broker.bootstrap_servers
        topic = f"aio-{codec}"
        await _create(bootstrap, topic)
        await _produce(bootstrap, topic, workload.messages(1000), compression_type=codec)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(workload.PARTITIONS)])
            await consumer.seek_to_beginning()
            workload.check(await _consume(consumer, 1000), 1000)
        finally:
            await consumer.stop()

    asyncio.run(scenario())
