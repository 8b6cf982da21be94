"""Apache Kafka from Maven Central (moldau.testing.kafka_dist): the broker serves a real client,
and the Kafka CLI tools run against it. Needs scripts/fetch-kafka.sh to have run."""

from __future__ import annotations

import os
import uuid

import pytest

from moldau.testing.kafka_dist import KafkaServer, kafka_tool, need_kafka

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka():
    need_kafka()
    with KafkaServer() as server:
        yield server


def test_confluent_kafka_produce_consume(kafka):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"dist-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)

    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    sent = [(f"k{i}".encode(), f"value {i}".encode()) for i in range(10)]
    for key, value in sent:
        producer.produce(topic, value, key)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received = []
    try:
        for _ in range(300):
            message = consumer.poll(0.2)
            if message is None or message.error():
                if len(received) == len(sent):
                    break
                continue
            received.append((message.key(), message.value()))
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)


def test_kafka_topics_tool(kafka):
    topic = f"tool-{uuid.uuid4().hex[:8]}"
    bootstrap = ["--bootstrap-server", kafka.bootstrap_servers]
    created = kafka_tool("kafka-topics", [*bootstrap, "--create", "--topic", topic, "--partitions", "3"])
    assert created.returncode == 0, created.stderr
    assert f"Created topic {topic}." in created.stdout
    described = kafka_tool("org.apache.kafka.tools.TopicCommand", [*bootstrap, "--describe", "--topic", topic])
    assert described.returncode == 0, described.stderr
    assert "PartitionCount: 3" in described.stdout


def test_stop_ends_the_process_and_removes_the_directory():
    need_kafka()
    server = KafkaServer()
    with server:
        pid, directory = server.pid, server.directory
        assert directory is not None and directory.is_dir()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not directory.exists()
