"""Admin APIs through confluent-kafka's AdminClient and raw requests: each success path and the
Kafka error code a real broker returns for each bad input."""

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from kio.index import load_request_schema

import rawclient


@pytest.fixture
def admin(moldau_broker):
    return AdminClient({"bootstrap.servers": moldau_broker.bootstrap_servers})


_CODES = {"INVALID_TOPIC_EXCEPTION": 17, "UNKNOWN_TOPIC_OR_PARTITION": 3, "TOPIC_ALREADY_EXISTS": 36,
          "INVALID_PARTITIONS": 37, "INVALID_REPLICATION_FACTOR": 38, "INVALID_CONFIG": 40}
_NAMES = {code: name for name, code in _CODES.items()}


def _error_name(future) -> str:
    """Kafka's name of the error the call failed with (librdkafka abbreviates some names)."""
    with pytest.raises(KafkaException) as caught:
        future.result(10)
    code = caught.value.args[0].code()
    return _NAMES.get(code, str(code))


def test_create_topics_errors(admin):
    admin.create_topics([NewTopic("exists", 2, 1)])["exists"].result(10)
    cases = {
        "exists": (NewTopic("exists", 1, 1), "TOPIC_ALREADY_EXISTS"),
        "bad name!": (NewTopic("bad name!", 1, 1), "INVALID_TOPIC_EXCEPTION"),
        "rf": (NewTopic("rf", 1, 3), "INVALID_REPLICATION_FACTOR"),
        "cfg": (NewTopic("cfg", 1, 1, config={"retention.ms": "soon"}), "INVALID_CONFIG"),
        "unknown-cfg": (NewTopic("unknown-cfg", 1, 1, config={"no.such": "1"}), "INVALID_CONFIG"),
    }
    for name, (topic, expected) in cases.items():
        assert _error_name(admin.create_topics([topic])[topic.topic]) == expected, name
    validated = admin.create_topics([NewTopic("only-validated", 1, 1)], validate_only=True)
    validated["only-validated"].result(10)
    assert "only-validated" not in admin.list_topics(timeout=10).topics


def test_describe_topics_and_cluster(admin, moldau_broker):
    admin.create_topics([NewTopic("described", 3, 1)])["described"].result(10)
    metadata = admin.list_topics(timeout=10)
    partitions = metadata.topics["described"].partitions
    assert sorted(partitions) == [0, 1, 2] and all(p.leader == 1 and p.isrs == [1] for p in partitions.values())
    cluster = admin.describe_cluster().result(10)
    assert [node.port for node in cluster.nodes] == [moldau_broker.port] and cluster.cluster_id


def test_topic_configs_describe_alter_incremental(admin):
    admin.create_topics([NewTopic("configured", 1, 1, config={"retention.ms": "60000"})])["configured"].result(10)
    resource = ConfigResource("topic", "configured")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["retention.ms"].value == "60000" and not configs["retention.ms"].is_default
    assert configs["cleanup.policy"].value == "delete" and configs["cleanup.policy"].is_default
    changed = ConfigResource("topic", "configured", incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([changed])[changed].result(10)
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact" and configs["retention.ms"].value == "604800000"
    bad = ConfigResource("topic", "configured", incremental_configs=[
        ConfigEntry("segment.bytes", "1", incremental_operation=AlterConfigOpType.SET)])
    assert _error_name(admin.incremental_alter_configs([bad])[bad]) == "INVALID_CONFIG"
    missing = ConfigResource("topic", "missing")
    assert _error_name(admin.describe_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PARTITION"


def test_broker_configs(admin):
    broker = ConfigResource("broker", "1")
    configs = admin.describe_configs([broker])[broker].result(10)
    assert configs["num.partitions"].value == "1" and configs["log.retention.ms"].value == "604800000"


def test_dynamic_broker_configs_apply_in_kafkas_order_and_report_their_source(admin, moldau_broker):
    """This broker's dynamic config beats the cluster-wide default (kafka-configs
    --entity-default), which beats server.properties; DescribeConfigs says which one applied,
    and the default entity lists what was set cluster-wide (kafka-configs shows only those)."""
    alter_schema = load_request_schema(44, 1)
    alter_mod = __import__(alter_schema.__module__, fromlist=["x"])

    def set_broker_config(name, value):
        resource = alter_mod.AlterConfigsResource(resource_type=4, resource_name=name, configs=(
            alter_mod.AlterableConfig(name="log.retention.ms", config_operation=0, value=value),))
        response = rawclient.call(moldau_broker, 44, 1, alter_schema(resources=(resource,), validate_only=False))
        assert response.responses[0].error_code == 0

    describe_schema = load_request_schema(32, 4)
    describe_mod = __import__(describe_schema.__module__, fromlist=["x"])

    def describe(resource_type, name):
        request = describe_schema(resources=(describe_mod.DescribeConfigsResource(
            resource_type=resource_type, resource_name=name, configuration_keys=None),),
            include_synonyms=True, include_documentation=False)
        result = rawclient.call(moldau_broker, 32, 4, request).results[0]
        return {entry.name: entry for entry in result.configs}

    admin.create_topics([NewTopic("layered", 1, 1)])["layered"].result(10)
    set_broker_config("", "2222")
    retention = describe(2, "layered")["retention.ms"]
    assert (retention.value, retention.config_source) == ("2222", 3)  # DYNAMIC_DEFAULT_BROKER_CONFIG
    set_broker_config("1", "1111")
    assert moldau_broker.call(lambda core: core.topic_configs("layered")["retention.ms"]) == "1111"
    retention = describe(2, "layered")["retention.ms"]
    assert (retention.value, retention.config_source) == ("1111", 2)  # DYNAMIC_BROKER_CONFIG
    assert [(s.value, s.source) for s in retention.synonyms] == [("1111", 2), ("2222", 3), ("604800000", 5)]
    default_entity = describe(4, "")
    assert {name: (e.value, e.config_source) for name, e in default_entity.items()} == \
        {"log.retention.ms": ("2222", 3)}
    broker_entity = describe(4, "1")["log.retention.ms"]
    assert (broker_entity.value, broker_entity.config_source) == ("1111", 2)


def test_create_partitions_delete_records_and_delete_topics(admin, moldau_broker):
    admin.create_topics([NewTopic("grow", 1, 1)])["grow"].result(10)
    admin.create_partitions([NewPartitions("grow", 4)])["grow"].result(10)
    assert len(admin.list_topics(timeout=10).topics["grow"].partitions) == 4
    assert _error_name(admin.create_partitions([NewPartitions("grow", 2)])["grow"]) == "INVALID_PARTITIONS"
    producer = Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})
    for i in range(100):
        producer.produce("grow", value=b"x", partition=0)
    producer.flush(10)
    deleted = admin.delete_records([TopicPartition("grow", 0, 40)])
    (result,) = deleted.values()
    assert result.result(10).low_watermark == 40
    earliest = admin.list_offsets({TopicPartition("grow", 0): OffsetSpec.earliest()})
    assert next(iter(earliest.values())).result(10).offset == 40
    too_far = admin.delete_records([TopicPartition("grow", 0, 1000)])
    assert "OFFSET_OUT_OF_RANGE" in str(next(iter(too_far.values())).exception(10))
    admin.delete_topics(["grow"])["grow"].result(10)
    assert "grow" not in admin.list_topics(timeout=10).topics
    assert _error_name(admin.delete_topics(["grow"])["grow"]) == "UNKNOWN_TOPIC_OR_PARTITION"


def test_delete_records_refuses_compacted_and_internal_topics(admin, moldau_broker):
    """As Kafka: DeleteRecords never deletes from a compacted-only topic (POLICY_VIOLATION) nor
    from __consumer_offsets (INVALID_TOPIC_EXCEPTION, which would lose groups' offsets)."""
    admin.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact"}),
                         NewTopic("both", 1, 1, config={"cleanup.policy": "compact,delete"})])["both"].result(10)
    producer = Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})
    for topic in ("compacted", "both"):
        for i in range(10):
            producer.produce(topic, key=b"k%d" % i, value=b"v")
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": moldau_broker.bootstrap_servers, "group.id": "committer"})
    consumer.commit(offsets=[TopicPartition("both", 0, 3)], asynchronous=False)
    consumer.close()
    offsets_partition = None  # the group's: the one __consumer_offsets partition with records
    for p in admin.list_topics(timeout=10).topics["__consumer_offsets"].partitions:
        latest = admin.list_offsets({TopicPartition("__consumer_offsets", p): OffsetSpec.latest()})
        if next(iter(latest.values())).result(10).offset > 0:
            offsets_partition = p
    assert offsets_partition is not None

    def delete_error(topic, partition, offset):
        (future,) = admin.delete_records([TopicPartition(topic, partition, offset)]).values()
        error = future.exception(10)
        return None if error is None else error.args[0].code()

    assert delete_error("compacted", 0, 5) == 44  # POLICY_VIOLATION
    assert delete_error("__consumer_offsets", offsets_partition, 1) == 17  # INVALID_TOPIC_EXCEPTION
    assert delete_error("both", 0, 5) is None
    earliest = admin.list_offsets({TopicPartition(t, 0): OffsetSpec.earliest() for t in ("compacted", "both")})
    assert {tp.topic: f.result(10).offset for tp, f in earliest.items()} == {"compacted": 0, "both": 5}
    latest = admin.list_offsets({TopicPartition("__consumer_offsets", offsets_partition): OffsetSpec.earliest()})
    assert next(iter(latest.values())).result(10).offset == 0


def test_list_offsets_max_timestamp(admin, moldau_broker):
    admin.create_topics([NewTopic("stamps", 1, 1)])["stamps"].result(10)
    producer = Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})
    for i, ts in enumerate([1000, 5000, 3000]):
        producer.produce("stamps", value=b"v", timestamp=ts)
        producer.flush(10)
    tp = TopicPartition("stamps", 0)
    result = admin.list_offsets({tp: OffsetSpec.max_timestamp()})[tp].result(10)
    assert (result.offset, result.timestamp) == (1, 5000)


# --- APIs without a high-level call in the Python clients: raw requests built with kio ---


def test_offset_for_leader_epoch_and_describe_log_dirs(admin, moldau_broker):
    admin.create_topics([NewTopic("epochs", 1, 1)])["epochs"].result(10)
    producer = Producer({"bootstrap.servers": moldau_broker.bootstrap_servers})
    for _ in range(10):
        producer.produce("epochs", value=b"x")
    producer.flush(10)
    schema = load_request_schema(23, 4)
    mod = __import__(schema.__module__, fromlist=["x"])
    request = schema(replica_id=-1, topics=(mod.OffsetForLeaderTopic(topic="epochs", partitions=(
        mod.OffsetForLeaderPartition(partition=0, current_leader_epoch=0, leader_epoch=0),)),))
    response = rawclient.call(moldau_broker, 23, 4, request)
    partition = response.topics[0].partitions[0]
    assert (partition.error_code.value, partition.leader_epoch, partition.end_offset) == (0, 0, 10)
    fenced = schema(replica_id=-1, topics=(mod.OffsetForLeaderTopic(topic="epochs", partitions=(
        mod.OffsetForLeaderPartition(partition=0, current_leader_epoch=5, leader_epoch=0),)),))
    assert rawclient.call(moldau_broker, 23, 4, fenced).topics[0].partitions[0].error_code.name == "unknown_leader_epoch"
    dirs_schema = load_request_schema(35, 4)
    dirs = rawclient.call(moldau_broker, 35, 4, dirs_schema(topics=None))
    sizes = {(t.name, p.partition_index): p.partition_size for t in dirs.results[0].topics for p in t.partitions}
    assert sizes[("epochs", 0)] > 0 and dirs.results[0].total_bytes > 0
