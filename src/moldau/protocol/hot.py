"""Hand-written encoders for the hot responses (Produce), checked byte-for-byte against kio.

kio's generic writer spends most of a small produce request's time on type checks; these
encoders write the same bytes with `struct` for the fields handlers actually fill. The test
`tests/protocol/test_hot.py` compares them with kio's output for every version served, so the
declared layout stays the source of truth.

Produce response, by version: v3–v8 classic encoding; v9+ flexible (compact arrays and
strings, a tag section after every structure); v5+ log_start_offset; v8+ record_errors and
error_message; v13 names topics by id.
"""

from __future__ import annotations

import struct
import uuid

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_PARTITION_V3 = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time
_I64 = struct.Struct(">q")


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\x00" if flexible else b"\xff\xff"
    encoded = value.encode()
    return (_uvarint(len(encoded) + 1) if flexible else _I16.pack(len(encoded))) + encoded


def _array_length(count: int, flexible: bool) -> bytes:
    return _uvarint(count + 1) if flexible else _I32.pack(count)


def encode_produce_response(correlation_id: int, version: int, response: dict) -> bytes:
    """A whole Produce response frame from the handler's description (see broker/produce.py)."""
    flexible = version >= 9
    out = [_I32.pack(correlation_id)]
    if flexible:
        out.append(b"\x00")  # response header v1: empty tag section
    topics = response["responses"]
    out.append(_array_length(len(topics), flexible))
    for topic in topics:
        if version >= 13:
            out.append(uuid.UUID(str(topic["topic_id"])).bytes)
        else:
            out.append(_string(topic["name"], flexible))
        partitions = topic["partition_responses"]
        out.append(_array_length(len(partitions), flexible))
        for partition in partitions:
            out.append(_partition(partition, version, flexible))
        if flexible:
            out.append(b"\x00")
    out.append(_I32.pack(response["throttle_time"]))
    if flexible:
        out.append(b"\x00")
    payload = b"".join(out)
    return _I32.pack(len(payload)) + payload


def _partition(partition: dict, version: int, flexible: bool) -> bytes:
    append_time = partition["log_append_time"]
    parts = [_PARTITION_V3.pack(partition["index"], int(partition["error_code"]), partition["base_offset"],
                                -1 if append_time is None else append_time)]
    if version >= 5:
        parts.append(_I64.pack(partition["log_start_offset"]))
    if version >= 8:
        errors = partition["record_errors"]
        parts.append(_array_length(len(errors), flexible))
        for error in errors:
            parts.append(_I32.pack(error["batch_index"]))
            parts.append(_string(error["batch_index_error_message"], flexible))
            if flexible:
                parts.append(b"\x00")
        parts.append(_string(partition["error_message"], flexible))
    if flexible:
        parts.append(b"\x00")
    return b"".join(parts)
