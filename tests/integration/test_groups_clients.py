"""Each client library consumes in a group, commits, and resumes from its commit after a restart.

The pattern for every client: 30 messages are produced; the client consumes them in group G
and commits; the broker restarts (same data directory and port); 20 more are produced; the
client, again in group G with auto.offset.reset=earliest, must receive exactly the 20 new
ones — had the committed offsets been lost, it would read all 50 from the beginning.
Covered: kafka-python (its producer is idempotent by default), aiokafka, kcat -G (librdkafka
2.0), and Kafka's Java console consumer with --group fed by the Java console producer
(idempotent and acks=all by default).
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from moldau import Broker
from moldau.testing.kafka_dist import kafka_tool, need_kafka
from moldau.testing.tools import need_executable

PARTITIONS = 3
FIRST = [f"a{i}" for i in range(30)]
SECOND = [f"b{i}" for i in range(20)]


@pytest.fixture
def broker(tmp_path):
    with Broker(data_dir=str(tmp_path / "data"), config={"group.initial.rebalance.delay.ms": "0"}) as running:
        yield running


def create_topic(bootstrap: str, name: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)


def produce_confluent(bootstrap: str, topic: str, values: list[str]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, key=value.encode(), value=value.encode())
    assert producer.flush(30) == 0


def resume_check(broker, topic: str, produce, consume) -> None:
    create_topic(broker.bootstrap_servers, topic)
    produce(broker.bootstrap_servers, topic, FIRST)
    assert sorted(consume(broker.bootstrap_servers, topic, len(FIRST))) == sorted(FIRST)
    broker.restart()
    produce(broker.bootstrap_servers, topic, SECOND)
    assert sorted(consume(broker.bootstrap_servers, topic, len(SECOND))) == sorted(SECOND)


# --- kafka-python ----------------------------------------------------------------------------

def produce_kafka_python(bootstrap: str, topic: str, values: list[str]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap)  # idempotent by default, unchanged
    for value in values:
        producer.send(topic, key=value.encode(), value=value.encode())
    producer.flush(30)
    producer.close()


def consume_kafka_python(bootstrap: str, topic: str, count: int) -> list[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    values: list[str] = []
    try:
        for _ in range(120):
            for records in consumer.poll(timeout_ms=250).values():
                values += [r.value.decode() for r in records]
            if len(values) >= count:
                break
        consumer.commit()
        for records in consumer.poll(timeout_ms=500).values():  # nothing more may arrive
            values += [r.value.decode() for r in records]
    finally:
        consumer.close()
    return values


def test_kafka_python_resumes_from_its_commit_after_restart(broker):
    pytest.importorskip("kafka")
    resume_check(broker, "kp-topic", produce_kafka_python, consume_kafka_python)


# --- aiokafka --------------------------------------------------------------------------------

def consume_aiokafka(bootstrap: str, topic: str, count: int) -> list[str]:
    from aiokafka import AIOKafkaConsumer

    async def run() -> list[str]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="aio-group",
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    session_timeout_ms=6000, heartbeat_interval_ms=500)
        await consumer.start()
        values: list[str] = []
        try:
            for _ in range(120):
                batches = await consumer.getmany(timeout_ms=250)
                values += [r.value.decode() for records in batches.values() for r in records]
                if len(values) >= count:
                    break
            await consumer.commit()
            batches = await consumer.getmany(timeout_ms=500)
            values += [r.value.decode() for records in batches.values() for r in records]
        finally:
            await consumer.stop()
        return values

    return asyncio.run(run())


def produce_aiokafka(bootstrap: str, topic: str, values: list[str]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for value in values:
                await producer.send(topic, key=value.encode(), value=value.encode())
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(run())


def test_aiokafka_resumes_from_its_commit_after_restart(broker):
    pytest.importorskip("aiokafka")
    resume_check(broker, "aio-topic", produce_aiokafka, consume_aiokafka)


# --- kcat -G ---------------------------------------------------------------------------------

def consume_kcat(bootstrap: str, topic: str, count: int) -> list[str]:
    kcat = need_executable("kcat")
    result = subprocess.run([kcat, "-b", bootstrap, "-G", "kcat-group", "-X", "auto.offset.reset=earliest",
                             "-c", str(count), "-f", "%s\n", "-q", topic],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_kcat_balanced_consumer_resumes_from_its_commit_after_restart(broker):
    resume_check(broker, "kcat-topic", produce_confluent, consume_kcat)


# --- Java ------------------------------------------------------------------------------------

def produce_java(bootstrap: str, topic: str, values: list[str]) -> None:
    result = kafka_tool("kafka-console-producer", ["--bootstrap-server", bootstrap, "--topic", topic],
                        input="".join(v + "\n" for v in values), timeout=120)
    assert result.returncode == 0, result.stderr


def consume_java(bootstrap: str, topic: str, count: int) -> list[str]:
    result = kafka_tool("kafka-console-consumer", [
        "--bootstrap-server", bootstrap, "--topic", topic, "--group", "java-group", "--from-beginning",
        "--max-messages", str(count), "--timeout-ms", "30000",
        "--consumer-property", "session.timeout.ms=6000"], timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_java_console_consumer_resumes_from_its_commit_after_restart(broker):
    need_kafka()
    resume_check(broker, "java-topic", produce_java, consume_java)


# --- a crash -----------------------------------------------------------------------------

def test_committed_offsets_survive_kill_9(tmp_path):
    """An acknowledged commit is in the OS before the answer: SIGKILL loses none of them."""
    from confluent_kafka import Consumer, TopicPartition

    from moldau.testing.server_process import ServerProcess

    with ServerProcess(str(tmp_path / "data"), overrides={"group.initial.rebalance.delay.ms": "0"}) as server:
        create_topic(server.bootstrap_servers, "crash-topic")
        settings = {"bootstrap.servers": server.bootstrap_servers, "group.id": "crash-group",
                    "enable.auto.commit": False}
        consumer = Consumer(settings)
        for round_ in range(1, 21):
            consumer.commit(offsets=[TopicPartition("crash-topic", p, round_ * 10 + p) for p in range(PARTITIONS)],
                            asynchronous=False)
        consumer.close()
        server.kill()
        server.start()
        consumer = Consumer(settings)
        try:
            found = consumer.committed([TopicPartition("crash-topic", p) for p in range(PARTITIONS)], 30)
        finally:
            consumer.close()
        assert {tp.partition: tp.offset for tp in found} == {p: 200 + p for p in range(PARTITIONS)}
