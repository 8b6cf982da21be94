"""The broker passes assignment protocols through; static members rejoin without a rebalance.

Two confluent-kafka consumers split a topic under each assignor librdkafka has (range,
roundrobin, cooperative-sticky — the leader computes the assignment, the broker only stores
it); when one leaves, the other takes every partition. A static member (group.instance.id)
that restarts within its session timeout gets its partitions back in the same generation.
"""

from __future__ import annotations

import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from moldau import Broker  # noqa: E402

PARTITIONS = 4


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("protocols")),
                config={"group.initial.rebalance.delay.ms": "0"}) as running:
        yield running


def create_topic(broker, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(30)


def consumer(broker, group: str, **settings) -> Consumer:
    config = {"bootstrap.servers": broker.bootstrap_servers, "group.id": group, "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest"}
    config.update({key.replace("_", "."): value for key, value in settings.items()})
    return Consumer(config)


def assigned(c: Consumer) -> set[int]:
    return {tp.partition for tp in c.assignment()}


def poll_until(consumers, condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(0.05)
        if condition():
            return
    raise AssertionError("timed out: " + repr([sorted(assigned(c)) for c in consumers]))


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_assignors_split_and_take_over(broker, strategy):
    topic = f"proto-{strategy}"
    create_topic(broker, topic)
    first = consumer(broker, f"g-{strategy}", partition_assignment_strategy=strategy)
    second = consumer(broker, f"g-{strategy}", partition_assignment_strategy=strategy)
    try:
        for c in (first, second):
            c.subscribe([topic])

        def split() -> bool:
            a, b = assigned(first), assigned(second)
            return len(a) == len(b) == PARTITIONS // 2 and a | b == set(range(PARTITIONS))

        poll_until([first, second], split)
        second.close()
        poll_until([first], lambda: assigned(first) == set(range(PARTITIONS)))
        group = broker.call(lambda core: core.extensions["group_coordinator"].groups[f"g-{strategy}"])
        assert group.protocol_name == strategy
    finally:
        first.close()


def test_static_member_restart_keeps_generation(broker):
    create_topic(broker, "static-topic")
    first = consumer(broker, "static-group", group_instance_id="instance-1")
    first.subscribe(["static-topic"])
    poll_until([first], lambda: assigned(first) == set(range(PARTITIONS)))

    def generation() -> tuple[int, str]:
        group = broker.call(lambda core: core.extensions["group_coordinator"].groups["static-group"])
        return group.generation_id, group.state.value

    before = generation()
    first.close()  # a static member does not leave the group on close
    again = consumer(broker, "static-group", group_instance_id="instance-1")
    try:
        again.subscribe(["static-topic"])
        poll_until([again], lambda: assigned(again) == set(range(PARTITIONS)))
        assert generation() == before == (before[0], "Stable")
    finally:
        again.close()
