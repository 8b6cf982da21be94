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
