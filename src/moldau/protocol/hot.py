"""Hand-written encoders for the hot responses (Produce, Fetch) and a decoder for the Produce
request, checked against kio.

kio's generic writer spends most of a small produce request's time on type checks; these
encoders write the same bytes with `struct` for the fields handlers actually fill. The test
`tests/protocol/test_hot.py` compares them with kio's output for every version served, so the
declared layout stays the source of truth.

Produce response, by version: v3–v8 classic encoding; v9+ flexible (compact arrays and
strings, a tag section after every structure); v5+ log_start_offset; v8+ record_errors and
error_message; v13 names topics by id.

The Produce request decoder leaves each record set where it arrived (a slice of the request):
kio copies every record set into a new bytes object while building its dataclasses, a sixth of
the broker's time per produced byte. Same versions and encodings as the response.
"""

from __future__ import annotations

import datetime
import struct
import uuid
from dataclasses import dataclass

from moldau.protocol.codec import MalformedRequest, read_uvarint, skip_tagged_fields
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


# --- Produce request: decoded by hand, record sets left in place ---------------------------------

@dataclass(frozen=True, slots=True)
class ProducePartition:
    index: int
    records: bytes | memoryview | None


@dataclass(frozen=True, slots=True)
class ProduceTopic:
    name: str | None  # v3–v12
    topic_id: uuid.UUID | None  # v13
    partition_data: tuple[ProducePartition, ...]


@dataclass(frozen=True, slots=True)
class ProduceRequest:
    """What kio's ProduceRequest of the same version holds (the fields broker/produce.py reads),
    with each partition's `records` a slice of the request's own bytes rather than a copy."""

    transactional_id: str | None
    acks: int
    timeout: datetime.timedelta
    topic_data: tuple[ProduceTopic, ...]


_PRODUCE_FIXED = struct.Struct(">hi")  # acks, timeout_ms
_ZERO_UUID = uuid.UUID(int=0)


def decode_produce_request(payload: bytes | memoryview, offset: int, version: int) -> ProduceRequest:
    """Produce v3–v13 from `payload` at `offset` (after the request header). Record sets come
    back as slices of `payload` — when `payload` is a view of the receive buffer, they are valid
    only during the request's handling (the log copies them to the OS before it returns).
    Unknown tagged fields are skipped; bytes that do not parse raise MalformedRequest.
    tests/protocol/test_hot.py holds it to kio's reading of the same bytes."""
    try:
        reader = _Reader(payload, offset, version >= 9)
        transactional_id = reader.string()
        acks, timeout_ms = reader.fixed(_PRODUCE_FIXED)
        topics = []
        for _ in range(reader.count()):
            if version >= 13:
                raw = reader.take(16)
                topic_id, name = uuid.UUID(bytes=bytes(raw)), None
                topic_id = None if topic_id == _ZERO_UUID else topic_id
            else:
                topic_id, name = None, reader.string()
            partitions = []
            for _ in range(reader.count()):
                (index,) = reader.fixed(_I32)
                partitions.append(ProducePartition(index, reader.nullable_bytes()))
                reader.tags()
            reader.tags()
            topics.append(ProduceTopic(name, topic_id, tuple(partitions)))
        reader.tags()
    except (struct.error, IndexError, ValueError) as error:
        raise MalformedRequest(f"produce request: {type(error).__name__}: {error}") from None
    return ProduceRequest(transactional_id, acks, datetime.timedelta(milliseconds=timeout_ms), tuple(topics))


class _Reader:
    """Sequential reads of one request body, classic or flexible (compact) encoding."""

    __slots__ = ("buf", "pos", "flexible")

    def __init__(self, buf, pos: int, flexible: bool) -> None:
        self.buf, self.pos, self.flexible = buf, pos, flexible

    def fixed(self, layout: struct.Struct) -> tuple:
        values = layout.unpack_from(self.buf, self.pos)
        self.pos += layout.size
        return values

    def take(self, size: int):
        end = self.pos + size
        if size < 0 or end > len(self.buf):
            raise MalformedRequest("a field runs past the end of the frame")
        chunk, self.pos = self.buf[self.pos:end], end
        return chunk

    def _length(self, classic: struct.Struct) -> int:
        """A string's (classic: int16) or bytes' (int32) length; -1 for null."""
        if self.flexible:
            value, self.pos = read_uvarint(self.buf, self.pos)
            return value - 1
        (value,) = self.fixed(classic)
        return value

    def string(self) -> str | None:
        size = self._length(_I16)
        if size < -1:
            raise MalformedRequest("negative string length")
        return None if size == -1 else bytes(self.take(size)).decode("utf-8")

    def nullable_bytes(self):
        size = self._length(_I32)
        if size < -1:
            raise MalformedRequest("negative bytes length")
        return None if size == -1 else self.take(size)

    def count(self) -> int:
        if self.flexible:
            value, self.pos = read_uvarint(self.buf, self.pos)
            value -= 1
        else:
            (value,) = self.fixed(_I32)
        if value < 0:
            return 0  # a null array: nothing to produce
        if value > len(self.buf) - self.pos:
            raise MalformedRequest("an array longer than the frame")
        return value

    def tags(self) -> None:
        if self.flexible:
            self.pos = skip_tagged_fields(self.buf, self.pos)
