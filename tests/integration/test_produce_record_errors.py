"""Per-record refusals in Produce: `record_errors` and `error_message`, as Apache Kafka 4.1.1 fills them.

The same raw Produce v11 requests go to Moldau and (when its jars are present) to Kafka; the
answers must agree: the partition's error code, each refused record's index in its batch, and
every message — clock readings aside."""

from __future__ import annotations

import datetime
import re
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.produce.v11.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.types import TopicName
from kio.static.primitive import i16, i32

import rawclient
from moldau.records import Record, build_batch
from moldau.records.batch import COMPRESSION_GZIP
from moldau.testing.kafka_dist import KafkaServer, need_kafka

pytestmark = pytest.mark.integration


class _Address:
    def __init__(self, bootstrap: str):
        host, port = bootstrap.rsplit(":", 1)
        self.host, self.port = host, int(port)


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def backend(request):
    if request.param == "kafka":
        need_kafka()
        with KafkaServer() as kafka:
            yield _prepared(kafka.bootstrap_servers)
    else:
        import moldau

        with moldau.Broker() as broker:
            yield _prepared(broker.bootstrap_servers)


def _prepared(bootstrap: str) -> _Address:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact"}),
                                   NewTopic("plain", 1, 1),
                                   NewTopic("appendtime", 1, 1, config={"message.timestamp.type": "LogAppendTime"})])
    for future in futures.values():
        future.result(30)
    deadline = time.monotonic() + 30
    while any(len(admin.list_topics(t, timeout=10).topics[t].partitions) == 0 for t in ("compacted", "plain")):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return _Address(bootstrap)


def _produce(address: _Address, topic: str, batch: bytes):
    request = ProduceRequest(transactional_id=None, acks=i16(-1), timeout=datetime.timedelta(seconds=10),
                             topic_data=(TopicProduceData(name=TopicName(topic), partition_data=(
                                 PartitionProduceData(index=i32(0), records=batch),)),))
    for _attempt in range(50):  # Kafka may still be electing the leader of a new topic
        partition = rawclient.call(address, 0, 11, request).responses[0].partition_responses[0]
        if partition.error_code.name not in ("not_leader_or_follower", "leader_not_available"):
            break
        time.sleep(0.2)
    errors = [(e.batch_index, _no_clock(e.batch_index_error_message)) for e in partition.record_errors]
    return partition.error_code.name, errors, _no_clock(partition.error_message)


def _no_clock(text: str | None) -> str | None:
    return None if text is None else re.sub(r"-?\d{10,}", "<ms>", text)


def test_null_keys_on_a_compacted_topic(backend):
    now = int(time.time() * 1000)
    batch = build_batch([Record(0, now, b"k", b"v"), Record(1, now, None, b"v"), Record(2, now, None, b"v")])
    code, errors, message = _produce(backend, "compacted", batch)
    refusal = "Compacted topic cannot accept message without key in topic partition compacted-0"
    assert code == "invalid_record"
    assert errors == [(1, refusal), (2, refusal)]
    assert message == ("One or more records have been rejected due to 2 record errors in total, and only showing "
                       f"the first three errors at most: [RecordError(batchIndex=1, message='{refusal}'), "
                       f"RecordError(batchIndex=2, message='{refusal}')]")
    compressed = build_batch([Record(n, now, None, b"v") for n in range(5)], compression=COMPRESSION_GZIP)
    code, errors, message = _produce(backend, "compacted", compressed)
    assert code == "invalid_record" and [index for index, _ in errors] == [0, 1, 2, 3, 4]
    assert message.count("RecordError(") == 3  # the first three only
    assert _produce(backend, "compacted", build_batch([Record(0, now, b"k", b"v")]))[0] == "none"


def test_timestamps_out_of_range(backend):
    now = int(time.time() * 1000)
    batch = build_batch([Record(0, now, b"k", b"v"), Record(1, now + 7_200_000, b"k", b"v")])
    assert _produce(backend, "plain", batch) == (
        "invalid_timestamp",
        [(1, "Timestamp <ms> of message with offset 1 is out of range. The timestamp should be within [<ms>, <ms>]")],
        "One or more records have been rejected due to invalid timestamp")
    mixed = build_batch([Record(0, now, None, b"v"), Record(1, now + 7_200_000, b"k", b"v")])
    code, errors, message = _produce(backend, "compacted", mixed)
    assert code == "invalid_timestamp" and [index for index, _ in errors] == [0, 1]
    assert errors[0][1].startswith("Compacted topic cannot accept message without key")


def test_producer_batches_claiming_log_append_time(backend):
    """Refused on a LogAppendTime topic; range-checked like any batch on a CreateTime one."""
    now = int(time.time() * 1000)
    batch = build_batch([Record(0, now - 86_400_000, b"k", b"abc")], log_append_time=True)
    assert _produce(backend, "plain", batch) == ("none", [], None)
    assert _produce(backend, "appendtime", batch) == (
        "invalid_timestamp",
        [(0, "Invalid timestamp type in message DefaultRecord(offset=0, timestamp=<ms>, key=1 bytes, value=3 bytes). "
             "Producer should not set timestamp type to LogAppendTime.")],
        "One or more records have been rejected due to invalid timestamp")
