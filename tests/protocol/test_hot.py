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
