"""Committed offsets survive compaction of `__consumer_offsets` (log/cleaner.py) and a restart.

A group commits the same partitions many times, another group is deleted (tombstones), and a
subscribed group stores its generation; the offsets partition's segment is then rolled and
cleaned. The cleaner must have removed the superseded commits, and after a restart the
coordinator, replaying the compacted partition, must know exactly the latest offsets, the
deleted group must stay deleted, and the subscribed group must resume from its commit.
"""

from __future__ import annotations

import time

import pytest

from moldau import Broker
from moldau.coordinator import offsets_topic
from moldau.coordinator.records import GroupKey, OffsetKey, decode_key
from moldau.log import clean_log

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC = "compacted-offsets"
ROUNDS = 40


def commit(bootstrap: str, group: str, offsets: dict[int, int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def committed(bootstrap: str, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(TOPIC, p) for p in (0, 1)], 10)}
    finally:
        consumer.close()


def offsets_records(core) -> list:
    partition = core.partition(offsets_topic.TOPIC, 0)
    return [(decode_key(key), value is None) for key, value in offsets_topic.read_records(partition)]


def compact(core):
    log = core.partition(offsets_topic.TOPIC, 0).log
    log.roll(core.now_ms)
    return clean_log(log, core.now_ms + 1)


def test_offsets_survive_compaction_and_restart(tmp_path):
    config = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "1"}
    with Broker(data_dir=str(tmp_path / "data"), config=config) as broker:
        bootstrap = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(30)
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(100):
            producer.produce(TOPIC, value=str(i).encode(), partition=i % 2)
        assert producer.flush(30) == 0
        for round_ in range(1, ROUNDS + 1):
            commit(bootstrap, "kept", {0: round_, 1: round_ + 1})
        commit(bootstrap, "gone", {0: 7})
        admin.delete_consumer_groups(["gone"])["gone"].result(30)
        subscribe_and_commit(bootstrap, "live", expected=100)

        before = broker.call(offsets_records)
        result = broker.call(compact)
        after = broker.call(offsets_records)
        assert result.records_removed >= 2 * (ROUNDS - 1)
        assert len(after) < len(before)
        kept_keys = [key for key, _ in after if isinstance(key, OffsetKey) and key.group_id == "kept"]
        assert sorted(kept_keys, key=lambda k: k.partition) == [OffsetKey("kept", TOPIC, 0), OffsetKey("kept", TOPIC, 1)]
        assert (GroupKey("gone"), True) in after  # the tombstone stays until delete.retention.ms

        broker.restart()
        assert committed(bootstrap, "kept") == {0: ROUNDS, 1: ROUNDS + 1}
        assert committed(bootstrap, "gone") == {0: -1001, 1: -1001}
        groups = {g.group_id for g in admin.list_consumer_groups().result(30).valid}
        assert "kept" in groups and "live" in groups and "gone" not in groups
        producer.produce(TOPIC, value=b"new", partition=0)
        assert producer.flush(30) == 0
        subscribe_and_commit(bootstrap, "live", expected=1)


def subscribe_and_commit(bootstrap: str, group: str, expected: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([TOPIC])
    seen = 0
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and seen < expected:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                seen += 1
        extra = consumer.poll(0.5)
        assert seen == expected and (extra is None or extra.error())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
