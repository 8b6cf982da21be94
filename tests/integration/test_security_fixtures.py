"""The pytest plugin's secured brokers."""

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.integration


def test_secure_broker_fixture(moldau_secure_broker):
    admin = AdminClient(moldau_secure_broker.client_config("admin"))
    assert admin.list_topics(timeout=10).cluster_id
    failures = []
    producer = Producer({**moldau_secure_broker.client_config("alice"), "message.timeout.ms": 10_000,
                         "enable.idempotence": False})
    producer.produce("t", b"x", on_delivery=lambda err, msg: failures.append(err))
    producer.flush(15)
    assert failures[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED  # alice has no ACLs yet


@pytest.mark.parametrize("moldau_broker", [{"security": "SSL"}], indirect=True)
def test_broker_fixture_takes_broker_arguments(moldau_broker):
    assert moldau_broker.client_config()["security.protocol"] == "SSL"
    assert AdminClient(moldau_broker.client_config()).list_topics(timeout=10).cluster_id
