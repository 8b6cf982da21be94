"""Kafka's own `kafka-consumer-groups` (4.1.1, Java admin client) against moldau's coordinator.

--list, --describe (offsets, lag, --members and --state of a live group), --reset-offsets
(--to-earliest, --to-offset, --shift-by, with --execute) and --delete, checked against what a
confluent-kafka client then sees; and Kafka's OffsetsMessageFormatter and
GroupMetadataMessageFormatter reading `__consumer_offsets` (the records use Kafka's schemas).
"""

from __future__ import annotations

import time

import pytest

from moldau import Broker
from moldau.testing.kafka_dist import kafka_tool, need_kafka

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "tools-topic"
GROUP = "tools-group"
PARTITIONS = 3
MESSAGES = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    need_kafka()
    with Broker(data_dir=str(tmp_path_factory.mktemp("groups-tools")),
                config={"group.initial.rebalance.delay.ms": "0"}) as running:
        admin = AdminClient({"bootstrap.servers": running.bootstrap_servers})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
        producer = Producer({"bootstrap.servers": running.bootstrap_servers})
        for i in range(MESSAGES):
            producer.produce(TOPIC, key=str(i).encode(), value=str(i).encode())
        assert producer.flush(30) == 0
        yield running


def groups_tool(broker, *args) -> str:
    result = kafka_tool("kafka-consumer-groups", ["--bootstrap-server", broker.bootstrap_servers, *args], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def consumer(broker) -> Consumer:
    return Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": GROUP, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "client.id": "tools-client"})


def consume_and_commit_everything(broker) -> None:
    c = consumer(broker)
    c.subscribe([TOPIC])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < MESSAGES and time.monotonic() < deadline:
        message = c.poll(0.2)
        if message is not None and not message.error():
            seen += 1
    c.commit(asynchronous=False)
    c.close()
    assert seen == MESSAGES


def committed(broker) -> dict[int, int]:
    c = consumer(broker)
    try:
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)], 10)}
    finally:
        c.close()


def rows(output: str) -> dict[int, list[str]]:
    """Partition -> columns of the --describe table rows for TOPIC."""
    table = {}
    for line in output.splitlines():
        columns = line.split()
        if len(columns) >= 6 and columns[0] == GROUP and columns[1] == TOPIC:
            table[int(columns[2])] = columns
    return table


def test_list_and_describe_offsets_and_lag(broker):
    consume_and_commit_everything(broker)
    assert GROUP in groups_tool(broker, "--list").split()
    table = rows(groups_tool(broker, "--describe", "--group", GROUP))
    assert sorted(table) == list(range(PARTITIONS))
    assert sum(int(columns[4]) for columns in table.values()) == MESSAGES  # LOG-END-OFFSET
    for columns in table.values():
        assert columns[3] == columns[4] and columns[5] == "0"  # CURRENT-OFFSET == LOG-END-OFFSET, LAG 0


def test_describe_members_and_state_of_a_live_group(broker):
    c = consumer(broker)
    c.subscribe([TOPIC])
    try:
        deadline = time.monotonic() + 30
        while not c.assignment() and time.monotonic() < deadline:
            c.poll(0.2)
        members = groups_tool(broker, "--describe", "--group", GROUP, "--members")
        assert "tools-client" in members and "/127.0.0.1" in members
        state = groups_tool(broker, "--describe", "--group", GROUP, "--state")
        assert "Stable" in state and "range" in state
    finally:
        c.close()


def test_reset_offsets(broker):
    consume_and_commit_everything(broker) if not any(v > 0 for v in committed(broker).values()) else None
    ends = committed(broker)
    groups_tool(broker, "--reset-offsets", "--group", GROUP, "--topic", TOPIC, "--to-earliest", "--execute")
    assert committed(broker) == {p: 0 for p in range(PARTITIONS)}
    groups_tool(broker, "--reset-offsets", "--group", GROUP, "--topic", f"{TOPIC}:0", "--to-offset", "2", "--execute")
    assert committed(broker)[0] == 2
    groups_tool(broker, "--reset-offsets", "--group", GROUP, "--topic", TOPIC, "--to-latest", "--execute")
    assert committed(broker) == ends
    groups_tool(broker, "--reset-offsets", "--group", GROUP, "--topic", TOPIC, "--shift-by", "-1", "--execute")
    assert committed(broker) == {p: max(0, offset - 1) for p, offset in ends.items()}
    # A consumer in the group now resumes from the reset offsets: one message per partition.
    c = consumer(broker)
    c.subscribe([TOPIC])
    got = []
    deadline = time.monotonic() + 30
    while len(got) < PARTITIONS and time.monotonic() < deadline:
        message = c.poll(0.2)
        if message is not None and not message.error():
            got.append((message.partition(), message.offset()))
    c.close()
    assert sorted(got) == sorted((p, offset - 1) for p, offset in ends.items())


def test_kafka_formatters_read_the_offsets_topic(broker):
    """Records in __consumer_offsets use Kafka's schemas: Kafka's own formatters decode them."""
    for formatter, expected in (("OffsetsMessageFormatter", f'"group":"{GROUP}","topic":"{TOPIC}","partition":0'),
                                ("GroupMetadataMessageFormatter", '"protocolType":"consumer"')):
        result = kafka_tool("kafka-console-consumer", [
            "--bootstrap-server", broker.bootstrap_servers, "--topic", "__consumer_offsets", "--from-beginning",
            "--formatter", f"org.apache.kafka.tools.consumer.{formatter}", "--timeout-ms", "3000"], timeout=120)
        assert expected in result.stdout, result.stdout + result.stderr


def test_delete_offsets_of_one_partition(broker):
    groups_tool(broker, "--reset-offsets", "--group", GROUP, "--topic", TOPIC, "--to-offset", "5", "--execute")
    groups_tool(broker, "--delete-offsets", "--group", GROUP, "--topic", f"{TOPIC}:0")  # OffsetDelete
    assert committed(broker) == {0: -1001, 1: 5, 2: 5}


def test_delete_group(broker):
    groups_tool(broker, "--delete", "--group", GROUP)
    assert GROUP not in groups_tool(broker, "--list").split()
    assert committed(broker) == {p: -1001 for p in range(PARTITIONS)}  # OFFSET_INVALID: nothing committed
