"""Bad input gets the error code a real Kafka broker returns (or a closed connection), and the
broker keeps serving: corrupt CRCs, oversized batches, unknown and invalid topics, old and
unknown versions, oversized and truncated frames."""

import datetime
import struct
import time

import pytest
from kio.index import load_request_schema

import rawclient
from moldau import Broker
from moldau.records import Record, build_batch


def _produce_request(topic: str, records: bytes, version: int = 9, acks: int = 1):
    schema = load_request_schema(0, version)
    mod = __import__(schema.__module__, fromlist=["x"])
    data = mod.TopicProduceData(name=topic, partition_data=(mod.PartitionProduceData(index=0, records=records),))
    return schema(transactional_id=None, acks=acks, timeout=datetime.timedelta(seconds=5), topic_data=(data,))


def _produce_error(broker, topic: str, records: bytes) -> str:
    response = rawclient.call(broker, 0, 9, _produce_request(topic, records))
    return response.responses[0].partition_responses[0].error_code.name


def _metadata(broker, names, allow_create=True, version=12):
    schema = load_request_schema(3, version)
    mod = __import__(schema.__module__, fromlist=["x"])
    topics = tuple(mod.MetadataRequestTopic(topic_id=None, name=n) for n in names)
    request = schema(topics=topics, allow_auto_topic_creation=allow_create, include_topic_authorized_operations=False)
    return rawclient.call(broker, 3, version, request)


@pytest.fixture
def broker(tmp_path):
    config = {"auto.create.topics.enable": "false", "message.max.bytes": "10000"}
    with Broker(data_dir=str(tmp_path), config=config) as running:
        yield running


def _create(broker, name):
    broker.create_topic(name, 1, 1)


def test_corrupt_crc_and_message_too_large(broker):
    _create(broker, "t")
    good = build_batch([Record(0, 1_700_000_000_000, b"k", b"v")])
    assert _produce_error(broker, "t", good) == "none"
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    assert _produce_error(broker, "t", bytes(corrupt)) == "corrupt_message"
    big = build_batch([Record(0, 1_700_000_000_000, None, b"x" * 20_000)])
    assert _produce_error(broker, "t", big) == "message_too_large"
    truncated = good[: len(good) - 3]
    assert _produce_error(broker, "t", truncated) == "corrupt_message"
    assert broker.call(lambda core: core.partition("t", 0).log_end_offset) == 1


def test_create_time_out_of_the_configured_range_is_refused(broker):
    """As Kafka 4: a CreateTime more than message.timestamp.after.max.ms (default one hour)
    ahead of the broker's clock is INVALID_TIMESTAMP — such a record would keep its segment
    from time-based retention — and message.timestamp.before.max.ms bounds the past."""
    _create(broker, "t")
    now = int(time.time() * 1000)
    assert _produce_error(broker, "t", build_batch([Record(0, now + 2 * 3_600_000, None, b"v")])) == "invalid_timestamp"
    late_second = build_batch([Record(0, now, None, b"a"), Record(1, now + 2 * 3_600_000, None, b"b")])
    assert _produce_error(broker, "t", late_second) == "invalid_timestamp"
    assert _produce_error(broker, "t", build_batch([Record(0, now + 1_800_000, None, b"v")])) == "none"
    assert _produce_error(broker, "t", build_batch([Record(0, 1_700_000_000_000, None, b"v")])) == "none"
    broker.call(lambda core: core.controller.alter_configs(2, "t", {"message.timestamp.before.max.ms": "86400000"}))
    assert _produce_error(broker, "t", build_batch([Record(0, 1_700_000_000_000, None, b"v")])) == "invalid_timestamp"
    broker.call(lambda core: core.controller.alter_configs(2, "t", {"message.timestamp.type": "LogAppendTime"}))
    assert _produce_error(broker, "t", build_batch([Record(0, now + 2 * 3_600_000, None, b"v")])) == "none"
    assert broker.call(lambda core: core.partition("t", 0).log_end_offset) == 3


def test_unknown_and_invalid_topics(broker):
    assert _produce_error(broker, "missing", build_batch([Record(0, 0, None, b"v")])) == "unknown_topic_or_partition"
    response = _metadata(broker, ["missing", "bad name"])
    errors = {t.name: t.error_code.name for t in response.topics}
    assert errors == {"missing": "unknown_topic_or_partition", "bad name": "invalid_topic_exception"}


def test_auto_create_and_invalid_name_when_enabled(tmp_path):
    with Broker(data_dir=str(tmp_path)) as broker:
        response = _metadata(broker, ["fresh", "bad name"])
        errors = {t.name: t.error_code.name for t in response.topics}
        assert errors == {"fresh": "none", "bad name": "invalid_topic_exception"}


def test_produce_v0_to_v2_advertised_and_refused(broker):
    _create(broker, "old")
    body = struct.pack(">hii", 1, 5000, 1) + struct.pack(">h", 3) + b"old" + struct.pack(">i", 1) \
        + struct.pack(">ii", 0, 0)
    for version in (0, 1, 2):
        payload = rawclient.exchange(broker, rawclient.frame(0, version, body, False))
        assert payload is not None
        (_cid, _topics, _name_len) = struct.unpack_from(">iih", payload, 0)
        (_count, _partition, error) = struct.unpack_from(">iih", payload, 4 + 4 + 2 + 3)
        assert error == 35  # UNSUPPORTED_VERSION


def test_api_versions_unknown_version_answers_v0_with_the_table(broker):
    payload = rawclient.exchange(broker, rawclient.frame(18, 99, b"", True))
    correlation_id, error = struct.unpack_from(">ih", payload, 0)
    assert (correlation_id, error) == (9, 35)
    (count,) = struct.unpack_from(">i", payload, 6)
    assert count > 10


def test_connection_closed_on_bad_frames_and_others_keep_being_served(broker):
    _create(broker, "t")
    assert rawclient.exchange(broker, struct.pack(">i", 200 * 1024 * 1024)) is None  # over socket.request.max.bytes
    assert rawclient.exchange(broker, rawclient.frame(3, 99, b"", False)) is None  # unknown version
    assert rawclient.exchange(broker, rawclient.frame(999, 0, b"", False)) is None  # unknown api
    assert rawclient.exchange(broker, rawclient.frame(3, 12, b"\xff\xff", True)) is None  # malformed body
    assert _produce_error(broker, "t", build_batch([Record(0, 0, None, b"v")])) == "none"


def test_acks_zero_gets_no_response_but_is_written(broker):
    _create(broker, "quiet")
    import socket

    request = _produce_request("quiet", build_batch([Record(0, 0, None, b"v")]), acks=0)
    with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        sock.sendall(rawclient.frame(0, 9, rawclient.encode(request), True))
        sock.sendall(rawclient.frame(18, 0, b"", False, correlation_id=77))
        (size,) = struct.unpack(">i", sock.recv(4))
        (correlation_id,) = struct.unpack(">i", sock.recv(4))
    assert correlation_id == 77  # the first response is the ApiVersions one
    assert broker.call(lambda core: core.partition("quiet", 0).log_end_offset) == 1
