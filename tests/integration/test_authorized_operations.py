"""Authorized operations as Apache Kafka 4.1.1 reports them without an authorizer: every
operation the resource type supports, and no other (the cluster has no WRITE)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.describe_cluster.v1.request import DescribeClusterRequest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.types import GroupId, TopicName
from kio.static.primitive import i8

import rawclient
from moldau.testing.kafka_dist import KafkaServer, need_kafka

pytestmark = pytest.mark.integration

READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION = 3, 4, 5, 6, 7, 8, 9
DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 10, 11, 12


class _Address:
    def __init__(self, bootstrap: str):
        host, port = bootstrap.rsplit(":", 1)
        self.host, self.port = host, int(port)


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def backend(request):
    if request.param == "kafka":
        need_kafka()
        with KafkaServer() as kafka:
            yield kafka.bootstrap_servers
    else:
        import moldau

        with moldau.Broker() as broker:
            yield broker.bootstrap_servers


def _codes(value: int) -> list[int]:
    return [code for code in range(32) if value >> code & 1]


def test_cluster_topic_and_group_operations(backend):
    admin = AdminClient({"bootstrap.servers": backend})
    admin.create_topics([NewTopic("ops", 1, 1)])["ops"].result(30)
    address = _Address(backend)
    cluster = rawclient.call(address, 60, 1, DescribeClusterRequest(include_cluster_authorized_operations=True,
                                                                    endpoint_type=i8(1)))
    assert _codes(cluster.cluster_authorized_operations) == [
        CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE]
    metadata = rawclient.call(address, 3, 12, MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name=TopicName("ops")),), allow_auto_topic_creation=False,
        include_topic_authorized_operations=True))
    assert _codes(metadata.topics[0].topic_authorized_operations) == [
        READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS]
    try:  # its FindCoordinator creates __consumer_offsets (Kafka may answer "still loading" at first)
        admin.describe_consumer_groups(["no-such-group"])["no-such-group"].result(30)
    except KafkaException:
        pass
    for _attempt in range(100):  # until this broker coordinates the group
        groups = rawclient.call(address, 15, 5, DescribeGroupsRequest(groups=(GroupId("no-such-group"),),
                                                                      include_authorized_operations=True))
        if groups.groups[0].error_code.name == "none":
            break
        assert groups.groups[0].authorized_operations == -2147483648  # no answer, no operations
        time.sleep(0.1)
    assert groups.groups[0].group_state == "Dead"
    assert _codes(groups.groups[0].authorized_operations) == [READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS]
    unasked = rawclient.call(address, 60, 1, DescribeClusterRequest(include_cluster_authorized_operations=False,
                                                                    endpoint_type=i8(1)))
    assert unasked.cluster_authorized_operations == -2147483648
