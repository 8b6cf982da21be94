"""Kafka wire frames for the simulated network: every message the simulation moves is
encoded to bytes and parsed back, so an encoding bug shows up as a failing scenario.

Requests are framed as a Kafka client frames them (size, request header v1/v2, body);
responses as `moldau.protocol.codec.encode_response` frames them (size, response header
v0/v1, body) and are parsed with the response schema of the request's version.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from kio.serial import entity_reader, entity_writer

from moldau.protocol import codec

_INT32 = struct.Struct(">i")
_HEADER = struct.Struct(">hhih")


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str,
                   body: Any) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    name = client_id.encode("utf-8")
    buffer.write(_HEADER.pack(api_key, api_version, correlation_id, len(name)))
    buffer.write(name)
    if codec.is_flexible(api_key, api_version):
        buffer.write(b"\0")  # no tagged fields in the header
    entity_writer(type(body))(buffer, body)
    frame = buffer.getbuffer()
    _INT32.pack_into(frame, 0, len(frame) - 4)
    del frame
    return buffer.getvalue()


def decode_request(frame: bytes) -> tuple[codec.RequestHeader, Any]:
    payload = memoryview(frame)[4:]
    header = codec.read_request_header(payload)
    schema = codec.request_schema(header.api_key, header.api_version)
    return header, codec.read_body(schema, payload, header.body_offset)


def encode_response(api_key: int, api_version: int, correlation_id: int, response: Any) -> bytes:
    return codec.encode_response(correlation_id, codec.response_header_flexible(api_key, api_version),
                                 response)


def decode_response(frame: bytes, api_key: int, api_version: int) -> tuple[int, Any]:
    """(correlation id, response body)."""
    position = 4
    (correlation_id,) = _INT32.unpack_from(frame, position)
    position += 4
    if codec.response_header_flexible(api_key, api_version):
        position = codec.skip_tagged_fields(frame, position)
    schema = codec.response_schema(api_key, api_version)
    body, _ = entity_reader(schema)(frame, position)
    return correlation_id, body
