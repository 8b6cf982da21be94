"""Records of `__consumer_offsets`, in Kafka's own key and value schemas.

Theory of operation. Every record's key starts with an int16 version that says what it is:
versions 0 and 1 are an offset commit (group, topic, partition), version 2 is a group's
metadata (group). The value's own int16 version says its layout; a null value is a tombstone
(offset deleted, group deleted), which compaction keeps until delete.retention.ms and then
drops. Because the layouts are Kafka's (OffsetCommitValue v3, GroupMetadataValue v3 — the
newest non-flexible ones), Kafka's tools (`kafka-console-consumer --formatter
...OffsetsMessageFormatter`) can read the topic, and compaction keeps the latest commit per
(group, topic, partition) and the latest metadata per group.

We write OffsetCommitValue v3 and GroupMetadataValue v3 and read v0–v3 of both.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_VALUE_VERSION = 3

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class RecordFormatError(ValueError):
    """A record of __consumer_offsets this code cannot read."""


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group_id: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group_id: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int = -1  # only in value v1


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation_id: int
    protocol_name: str | None
    leader: str | None
    current_state_timestamp_ms: int
    members: tuple[MemberValue, ...] = field(default_factory=tuple)


# --- writing ----------------------------------------------------------------------------

def _string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += _I16.pack(-1)
        return
    encoded = value.encode("utf-8")
    out += _I16.pack(len(encoded)) + encoded


def _bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out += _I32.pack(-1)
        return
    out += _I32.pack(len(value)) + value


def encode_key(key: OffsetKey | GroupKey) -> bytes:
    out = bytearray()
    if isinstance(key, OffsetKey):
        out += _I16.pack(OFFSET_COMMIT_KEY_VERSION)
        _string(out, key.group_id)
        _string(out, key.topic)
        out += _I32.pack(key.partition)
    else:
        out += _I16.pack(GROUP_METADATA_KEY_VERSION)
        _string(out, key.group_id)
    return bytes(out)


def encode_offset_value(value: OffsetValue) -> bytes:
    out = bytearray(_I16.pack(OFFSET_COMMIT_VALUE_VERSION))
    out += _I64.pack(value.offset) + _I32.pack(value.leader_epoch)
    _string(out, value.metadata)
    out += _I64.pack(value.commit_timestamp_ms)
    return bytes(out)


def encode_group_value(value: GroupValue) -> bytes:
    out = bytearray(_I16.pack(GROUP_METADATA_VALUE_VERSION))
    _string(out, value.protocol_type)
    out += _I32.pack(value.generation_id)
    _string(out, value.protocol_name)
    _string(out, value.leader)
    out += _I64.pack(value.current_state_timestamp_ms)
    out += _I32.pack(len(value.members))
    for member in value.members:
        _string(out, member.member_id)
        _string(out, member.group_instance_id)
        _string(out, member.client_id)
        _string(out, member.client_host)
        out += _I32.pack(member.rebalance_timeout_ms) + _I32.pack(member.session_timeout_ms)
        _bytes(out, member.subscription)
        _bytes(out, member.assignment)
    return bytes(out)


# --- reading ----------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def _take(self, fmt: struct.Struct) -> int:
        if self.position + fmt.size > len(self.data):
            raise RecordFormatError("record ends early")
        (value,) = fmt.unpack_from(self.data, self.position)
        self.position += fmt.size
        return value

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def string(self) -> str | None:
        length = self.i16()
        return None if length < 0 else self._slice(length).decode("utf-8")

    def blob(self) -> bytes | None:
        length = self.i32()
        return None if length < 0 else self._slice(length)

    def _slice(self, length: int) -> bytes:
        end = self.position + length
        if end > len(self.data):
            raise RecordFormatError("record ends early")
        value = self.data[self.position:end]
        self.position = end
        return value


def decode_key(data: bytes) -> OffsetKey | GroupKey:
    reader = _Reader(data)
    version = reader.i16()
    if version in (0, 1):
        return OffsetKey(reader.string() or "", reader.string() or "", reader.i32())
    if version == 2:
        return GroupKey(reader.string() or "")
    raise RecordFormatError(f"unknown key version {version} in __consumer_offsets")


def decode_offset_value(data: bytes) -> OffsetValue:
    reader = _Reader(data)
    version = reader.i16()
    if version not in (0, 1, 2, 3):
        raise RecordFormatError(f"unknown offset commit value version {version}")
    offset = reader.i64()
    leader_epoch = reader.i32() if version >= 3 else -1
    metadata = reader.string() or ""
    commit_timestamp_ms = reader.i64()
    expire_timestamp_ms = reader.i64() if version == 1 else -1
    return OffsetValue(offset, leader_epoch, metadata, commit_timestamp_ms, expire_timestamp_ms)


def decode_group_value(data: bytes) -> GroupValue:
    reader = _Reader(data)
    version = reader.i16()
    if version not in (0, 1, 2, 3):
        raise RecordFormatError(f"unknown group metadata value version {version}")
    protocol_type = reader.string() or ""
    generation_id = reader.i32()
    protocol_name = reader.string()
    leader = reader.string()
    state_timestamp_ms = reader.i64() if version >= 2 else -1
    members = tuple(_decode_member(reader, version) for _ in range(max(reader.i32(), 0)))
    return GroupValue(protocol_type, generation_id, protocol_name, leader, state_timestamp_ms, members)


def _decode_member(reader: _Reader, version: int) -> MemberValue:
    member_id = reader.string() or ""
    group_instance_id = reader.string() if version >= 3 else None
    client_id = reader.string() or ""
    client_host = reader.string() or ""
    rebalance_timeout_ms = reader.i32() if version >= 1 else -1
    session_timeout_ms = reader.i32()
    if rebalance_timeout_ms < 0:
        rebalance_timeout_ms = session_timeout_ms
    subscription = reader.blob() or b""
    assignment = reader.blob() or b""
    return MemberValue(member_id, group_instance_id, client_id, client_host, rebalance_timeout_ms,
                       session_timeout_ms, subscription, assignment)


def subscribed_topics(subscription: bytes) -> tuple[str, ...]:
    """Topics named in a consumer protocol subscription (ConsumerProtocolSubscription v0+).

    Only the topic list is read; what follows it (user data, owned partitions, rack) differs
    by version and does not matter here. Unreadable metadata subscribes to nothing."""
    try:
        reader = _Reader(subscription)
        reader.i16()
        return tuple(reader.string() or "" for _ in range(max(reader.i32(), 0)))
    except (RecordFormatError, UnicodeDecodeError):
        return ()
