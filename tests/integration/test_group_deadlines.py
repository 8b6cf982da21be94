"""A member's session ends on its deadline, as on Kafka: a static member that stops (without
LeaveGroup, as static members do) is gone right after session.timeout.ms, so DeleteGroups at
that moment succeeds instead of answering NON_EMPTY_GROUP for up to one more coarse tick."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import moldau

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_MS = 6000


def test_static_member_expires_on_its_session_deadline():
    with moldau.Broker(config={"group.initial.rebalance.delay.ms": "0"}) as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        admin.create_topics([NewTopic("deadline-topic", 1, 1)])["deadline-topic"].result(10)
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
        producer.produce("deadline-topic", b"x")
        producer.flush(10)
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "static-group",
                             "group.instance.id": "instance-1", "session.timeout.ms": SESSION_TIMEOUT_MS,
                             "heartbeat.interval.ms": 100, "auto.offset.reset": "earliest"})
        consumer.subscribe(["deadline-topic"])
        deadline = time.monotonic() + 30
        while consumer.poll(0.1) is None:
            assert time.monotonic() < deadline, "no message consumed"
        consumer.close()  # a static member does not leave: only its session ends it
        stopped = time.monotonic()
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 0.15 - (time.monotonic() - stopped))
        result = admin.delete_consumer_groups(["static-group"], request_timeout=10)["static-group"]
        result.result(10)  # raises GROUP_ID_NOT_FOUND / NON_EMPTY_GROUP on failure
