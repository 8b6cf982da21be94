"""The hand-written hot-path encoders write exactly what kio's declared layout writes."""

import pytest

from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.protocol.hot import encode_produce_response

TOPIC_ID = "8a6f4d62-3b8e-4e0c-9a53-0f5f0a6f3b21"


def _description(with_errors: bool) -> dict:
    partitions = [
        {"index": 0, "error_code": 0, "base_offset": 12345, "log_append_time": None, "log_start_offset": 7,
         "record_errors": [], "error_message": None},
        {"index": 2, "error_code": 0, "base_offset": 9, "log_append_time": 1_700_000_000_123, "log_start_offset": 0,
         "record_errors": [], "error_message": None},
    ]
    if with_errors:
        partitions.append({"index": 1, "error_code": 2, "base_offset": -1, "log_append_time": None,
                           "log_start_offset": -1,
                           "record_errors": [{"batch_index": 0, "batch_index_error_message": "bad crc"}],
                           "error_message": "CRC mismatch ünïcode"})
    return {"responses": [{"name": "orders", "topic_id": TOPIC_ID, "partition_responses": partitions},
                          {"name": "empty", "topic_id": TOPIC_ID, "partition_responses": []}],
            "throttle_time": 0}


@pytest.mark.parametrize("version", range(3, 14))
@pytest.mark.parametrize("with_errors", [False, True])
def test_produce_response_matches_kio(version, with_errors):
    description = _description(with_errors)
    declared = codec.encode_response(77, version >= 9, build(codec.response_schema(0, version), description))
    assert encode_produce_response(77, version, description) == declared


def _fetch_description(variant: str) -> dict:
    base = {"partition_index": 0, "error_code": 0, "high_watermark": 100, "last_stable_offset": 100,
            "log_start_offset": 3, "aborted_transactions": None, "preferred_read_replica": -1,
            "records": b"\x00" * 70}
    partitions = [base]
    if variant == "errors":
        partitions = [
            dict(base, partition_index=1, error_code=1, records=b"", high_watermark=-1,
                 current_leader={"leader_id": 1, "leader_epoch": 4}),
            dict(base, partition_index=2, records=b"", diverging_epoch={"epoch": 2, "end_offset": 40}),
            dict(base, partition_index=3, aborted_transactions=[{"producer_id": 5, "first_offset": 6}], records=None),
        ]
    return {"throttle_time": 0, "error_code": 0, "session_id": 0,
            "responses": [{"topic": "orders", "topic_id": TOPIC_ID, "partitions": partitions},
                          {"topic": "none", "topic_id": TOPIC_ID, "partitions": []}]}


@pytest.mark.parametrize("version", range(4, 18))
@pytest.mark.parametrize("variant", ["data", "errors"])
def test_fetch_response_matches_kio(version, variant):
    from moldau.protocol.hot import encode_fetch_response

    description = _fetch_description(variant)
    declared = codec.encode_response(5, version >= 12, build(codec.response_schema(1, version), description))
    assert b"".join(encode_fetch_response(5, version, description)) == declared


# --- the Produce request decoder reads what kio reads -------------------------------------------

def _produce_request(version: int, transactional_id, topics: list) -> bytes:
    """A body encoded by kio: topics are (name or id, [(index, records or None)])."""
    import datetime
    import io
    import uuid as uuid_module

    from kio.serial import entity_writer

    schema = codec.request_schema(0, version)
    module = __import__(schema.__module__, fromlist=["TopicProduceData"])
    topic_data = []
    for key, partitions in topics:
        parts = tuple(module.PartitionProduceData(index=i, records=r) for i, r in partitions)
        if version >= 13:
            topic_data.append(module.TopicProduceData(topic_id=uuid_module.UUID(key), partition_data=parts))
        else:
            topic_data.append(module.TopicProduceData(name=key, partition_data=parts))
    request = schema(transactional_id=transactional_id, acks=-1, timeout=datetime.timedelta(milliseconds=30_000),
                     topic_data=tuple(topic_data))
    buffer = io.BytesIO()
    entity_writer(schema)(buffer, request)
    return buffer.getvalue()


def _as_kio_reads(request) -> tuple:
    def records(value):
        return None if value is None else bytes(value)

    return (request.transactional_id, int(request.acks), request.timeout,
            [(getattr(t, "name", None), getattr(t, "topic_id", None),
              [(p.index, records(p.records)) for p in t.partition_data]) for t in request.topic_data])


@pytest.mark.parametrize("version", range(3, 14))
@pytest.mark.parametrize("transactional_id", [None, "tx-ü"])
def test_produce_request_decoder_reads_what_kio_reads(version, transactional_id):
    from moldau.protocol.hot import decode_produce_request

    key = TOPIC_ID if version >= 13 else "orders"
    body = _produce_request(version, transactional_id,
                            [(key, [(0, b"\x01" * 300), (4, None), (2, b"")]), (key, [])])
    payload = b"HEADER" + body
    declared = codec.read_body(codec.request_schema(0, version), payload, 6)
    decoded = decode_produce_request(memoryview(payload).toreadonly(), 6, version)
    assert _as_kio_reads(decoded) == _as_kio_reads(declared)
    assert isinstance(decoded.topic_data[0].partition_data[0].records, memoryview)  # in place, not copied


@pytest.mark.parametrize("version", [3, 9, 13])
def test_produce_request_decoder_refuses_truncated_bytes(version):
    from moldau.protocol.hot import decode_produce_request

    key = TOPIC_ID if version >= 13 else "orders"
    body = _produce_request(version, None, [(key, [(0, b"\x01" * 300)])])
    for cut in range(0, len(body) - 1, 7):
        with pytest.raises(codec.MalformedRequest):
            decode_produce_request(body[:cut], 0, version)


def test_produce_request_decoder_skips_unknown_tagged_fields():
    from moldau.protocol.hot import decode_produce_request

    body = bytearray(_produce_request(9, None, [("orders", [(0, b"\x07" * 10)])]))
    assert body[-1] == 0  # the request's own (empty) tag section
    body[-1:] = b"\x01" + b"\x05" + b"\x03" + b"abc"  # one unknown tag (5), three bytes
    decoded = decode_produce_request(bytes(body), 0, 9)
    assert bytes(decoded.topic_data[0].partition_data[0].records) == b"\x07" * 10
