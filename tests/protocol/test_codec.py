"""The wire codec: headers, tolerant body parsing, response framing, version-agnostic build."""

import io
import struct

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.serial import entity_writer

from moldau.protocol import codec
from moldau.protocol.build import build


def _metadata_v12_body() -> bytes:
    request = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="orders"),),
        allow_auto_topic_creation=True,
        include_topic_authorized_operations=False,
    )
    buffer = io.BytesIO()
    entity_writer(MetadataRequest)(buffer, request)
    return buffer.getvalue()


def test_request_header_flexible_skips_tags():
    client = b"rdkafka"
    header = struct.pack(">hhih", 3, 12, 77, len(client)) + client + bytes([1, 5, 2, 0xAA, 0xBB])
    parsed = codec.read_request_header(header + b"BODY")
    assert (parsed.api_key, parsed.api_version, parsed.correlation_id, parsed.client_id) == (3, 12, 77, "rdkafka")
    assert parsed.body_offset == len(header)


def test_request_header_null_client_id_and_non_flexible():
    payload = struct.pack(">hhih", 3, 1, 5, -1) + b"rest"
    parsed = codec.read_request_header(payload)
    assert parsed.client_id is None and parsed.body_offset == 10


@pytest.mark.parametrize("cut", [3, 9, 12])
def test_truncated_header_is_malformed(cut):
    payload = struct.pack(">hhih", 3, 12, 77, 7) + b"rdkafka" + b"\x00"
    with pytest.raises(codec.MalformedRequest):
        codec.read_request_header(payload[:cut])


def test_unknown_tagged_fields_are_skipped_at_top_level_and_nested():
    body = _metadata_v12_body()
    with_top_level_tag = body[:-1] + bytes([1, 7, 2, 0xAA, 0xBB])
    name_end = body.index(bytes([7]) + b"orders") + 7
    with_nested_tag = body[:name_end] + bytes([1, 9, 1, 0]) + body[name_end + 1 :]
    for variant in (with_top_level_tag, with_nested_tag):
        parsed = codec.read_body(MetadataRequest, variant, 0)
        assert parsed.topics[0].name == "orders" and parsed.allow_auto_topic_creation


def test_garbage_body_is_malformed_not_a_crash():
    with pytest.raises(codec.MalformedRequest):
        codec.read_body(MetadataRequest, b"\xff\xff\xff\x7f\x01", 0)


def test_response_frame_layout_and_api_versions_header_is_v0():
    schema = codec.response_schema(18, 3)
    response = build(schema, {"error_code": 0, "api_keys": [{"api_key": 0, "min_version": 0, "max_version": 13}],
                              "throttle_time": 0})
    frame = codec.encode_response(42, codec.response_header_flexible(18, 3), response)
    size, correlation_id = struct.unpack_from(">ii", frame)
    assert size == len(frame) - 4 and correlation_id == 42
    # header v0: the body (error code 0) follows the correlation id directly, and no tags
    assert frame[8:10] == b"\x00\x00" and frame.endswith(b"\x00\x00\x00\x00\x00")


def test_build_drops_fields_a_version_lacks_and_requires_the_rest():
    data = {"error_code": ErrorCode.none, "api_keys": [], "throttle_time": 0}
    v0 = build(codec.response_schema(18, 0), data)
    assert not hasattr(v0, "throttle_time")
    with pytest.raises(TypeError):
        build(codec.response_schema(18, 3), {"api_keys": []})


def test_uvarint_round_trip():
    for value in (0, 1, 127, 128, 300, 2**31 - 1):
        encoded = codec.write_uvarint(value)
        assert codec.read_uvarint(encoded, 0) == (value, len(encoded))
