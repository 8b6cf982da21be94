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

from moldau.protocol.codec import write_uvarint as _uvarint

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_PARTITION_V3 = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time
_I64 = struct.Struct(">q")


def _string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\x00" if flexible else b"\xff\xff"
    encoded = value.encode()
    return (_uvarint(len(encoded) + 1) if flexible else _I16.pack(len(encoded))) + encoded


def _topic_key(topic: dict, name_field: str, by_id: bool, flexible: bool) -> bytes:
    """A topic's id (v13+ of Produce and Fetch) or its name."""
    if by_id:
        return uuid.UUID(str(topic["topic_id"])).bytes
    return _string(topic[name_field], flexible)


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
        out.append(_topic_key(topic, "name", version >= 13, flexible))
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


# --- Fetch ------------------------------------------------------------------------------------
# v4+ last_stable_offset and aborted_transactions; v5+ log_start_offset; v7+ top-level
# error_code and session_id; v11+ preferred_read_replica; v12+ flexible, with per-partition
# tagged fields diverging_epoch (0), current_leader (1) and snapshot_id (2); v13+ topic ids.

_FETCH_PARTITION_HEAD = struct.Struct(">ihqq")  # partition_index, error_code, high_watermark, last_stable_offset
_EPOCH_END_OFFSET = struct.Struct(">iq")
_LEADER = struct.Struct(">ii")


def encode_fetch_response(correlation_id: int, version: int, response: dict) -> list[bytes]:
    """A whole Fetch response frame from broker/fetch.py's description, as a list of chunks
    (size prefix, then header and record sets in order) for the transport's writelines: the
    record sets read from the log are sent as they are, never joined into one copy."""
    flexible = version >= 12
    out = [_I32.pack(correlation_id)]
    if flexible:
        out.append(b"\x00")
    out.append(_I32.pack(response["throttle_time"]))
    if version >= 7:
        out.append(_I16.pack(int(response["error_code"])) + _I32.pack(response["session_id"]))
    topics = response["responses"]
    out.append(_array_length(len(topics), flexible))
    for topic in topics:
        out.append(_topic_key(topic, "topic", version >= 13, flexible))
        partitions = topic["partitions"]
        out.append(_array_length(len(partitions), flexible))
        for partition in partitions:
            _fetch_partition(out, partition, version, flexible)
        if flexible:
            out.append(b"\x00")
    if flexible:
        out.append(b"\x00")
    size = sum(len(part) for part in out)
    out.insert(0, _I32.pack(size))
    return out


def _fetch_partition(out: list, partition: dict, version: int, flexible: bool) -> None:
    out.append(_FETCH_PARTITION_HEAD.pack(partition["partition_index"], int(partition["error_code"]),
                                          partition["high_watermark"], partition["last_stable_offset"]))
    if version >= 5:
        out.append(_I64.pack(partition["log_start_offset"]))
    aborted = partition["aborted_transactions"]
    if aborted is None:
        out.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
    else:
        out.append(_array_length(len(aborted), flexible))
        for entry in aborted:
            out.append(_I64.pack(entry["producer_id"]) + _I64.pack(entry["first_offset"]) + (b"\x00" if flexible else b""))
    if version >= 11:
        out.append(_I32.pack(partition["preferred_read_replica"]))
    records = partition["records"]
    if records is None:
        out.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
    else:
        out.append(_uvarint(len(records) + 1) if flexible else _I32.pack(len(records)))
        out.append(records)
    if flexible:
        out.append(_fetch_partition_tags(partition))


def _fetch_partition_tags(partition: dict) -> bytes:
    tags = []
    diverging = partition.get("diverging_epoch")
    if diverging is not None and (diverging["epoch"], diverging["end_offset"]) != (-1, -1):
        tags.append((0, _EPOCH_END_OFFSET.pack(diverging["epoch"], diverging["end_offset"]) + b"\x00"))
    leader = partition.get("current_leader")
    if leader is not None and (leader["leader_id"], leader["leader_epoch"]) != (-1, -1):
        tags.append((1, _LEADER.pack(leader["leader_id"], leader["leader_epoch"]) + b"\x00"))
    parts = [_uvarint(len(tags))]
    for tag, body in tags:
        parts.append(_uvarint(tag) + _uvarint(len(body)) + body)
    return b"".join(parts)
