"""KIP-848 consumer group records of `__consumer_offsets`, in Kafka 4.1's own schemas.

Theory of operation. A consumer group (the `consumer` group type of KIP-848) is stored as a
handful of record kinds, each a (key, value) pair whose key opens with an int16 record type
(Kafka's CoordinatorRecordType) and whose value opens with an int16 version (0 for all of
these). Keys are non-flexible (int16-length strings); values are flexible (compact strings and
arrays, unsigned varint lengths, tagged fields). The kinds, by record type:

    3  ConsumerGroupMetadata            (group)            -> group epoch, metadata hash (tag 0)
    4  ConsumerGroupPartitionMetadata   (group)            -> read and ignored (Kafka 4.1 no longer writes it)
    5  ConsumerGroupMemberMetadata      (group, member)    -> instance id, rack, client id/host,
                                                              subscription (names, regex),
                                                              rebalance timeout, server assignor
    6  ConsumerGroupTargetAssignmentMetadata (group)       -> target assignment epoch
    7  ConsumerGroupTargetAssignmentMember (group, member) -> the member's target partitions
    8  ConsumerGroupCurrentMemberAssignment (group, member) -> member epoch, previous epoch, state,
                                                              assigned partitions, partitions
                                                              pending revocation
    16 ConsumerGroupRegularExpression   (group, regex)     -> topics the regex resolved to,
                                                              metadata version, timestamp

A null value is a tombstone. Partitions are named by topic id (UUID), as in Kafka, so a
topic deleted and recreated under the same name is a different topic. Because the bytes are
Kafka's, Kafka's GroupMetadataMessageFormatter prints them and a group written here is read
back after a restart or by the next coordinator of the partition.

Tagged fields we do not know are skipped on read and never written (ClassicMemberMetadata,
tag 0 of the member value, is only used by Kafka's online migration, which Moldau does not do).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from moldau.coordinator.records import RecordFormatError

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
CONSUMER_GROUP_RECORD_TYPES = frozenset({GROUP_METADATA, PARTITION_METADATA, MEMBER_METADATA,
                                         TARGET_ASSIGNMENT_METADATA, TARGET_ASSIGNMENT_MEMBER,
                                         CURRENT_MEMBER_ASSIGNMENT, REGULAR_EXPRESSION})
VALUE_VERSION = 0

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

# An assignment: topic id (str, as the metadata image spells it) -> partitions.
Assignment = dict[str, frozenset[int]]


@dataclass(frozen=True, slots=True)
class Key:
    record_type: int
    group_id: str
    member_id: str = ""  # member records; the regex for REGULAR_EXPRESSION


@dataclass(frozen=True, slots=True)
class GroupMetadataValue:
    epoch: int
    metadata_hash: int = 0


@dataclass(frozen=True, slots=True)
class MemberMetadataValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    subscribed_topic_names: tuple[str, ...]
    subscribed_topic_regex: str | None
    rebalance_timeout_ms: int
    server_assignor: str | None


@dataclass(frozen=True, slots=True)
class TargetAssignmentMetadataValue:
    assignment_epoch: int


@dataclass(frozen=True, slots=True)
class TargetAssignmentMemberValue:
    partitions: Assignment


@dataclass(frozen=True, slots=True)
class CurrentMemberAssignmentValue:
    member_epoch: int
    previous_member_epoch: int
    state: int
    assigned: Assignment
    pending_revocation: Assignment


@dataclass(frozen=True, slots=True)
class RegularExpressionValue:
    topics: tuple[str, ...]
    version: int
    timestamp_ms: int


Value = (GroupMetadataValue | MemberMetadataValue | TargetAssignmentMetadataValue
         | TargetAssignmentMemberValue | CurrentMemberAssignmentValue | RegularExpressionValue)

_KEYS_WITH_SECOND_STRING = frozenset({MEMBER_METADATA, TARGET_ASSIGNMENT_MEMBER, CURRENT_MEMBER_ASSIGNMENT,
                                      REGULAR_EXPRESSION})


# --- keys (non-flexible) ---------------------------------------------------------------------

def _string16(out: bytearray, value: str) -> None:
    encoded = value.encode("utf-8")
    out += _I16.pack(len(encoded)) + encoded


def encode_key(key: Key) -> bytes:
    out = bytearray(_I16.pack(key.record_type))
    _string16(out, key.group_id)
    if key.record_type in _KEYS_WITH_SECOND_STRING:
        _string16(out, key.member_id)
    return bytes(out)


def record_type(key_bytes: bytes) -> int:
    if len(key_bytes) < 2:
        raise RecordFormatError("record key ends early")
    return _I16.unpack_from(key_bytes, 0)[0]


def decode_key(data: bytes) -> Key:
    reader = _Reader(data)
    kind = reader.i16()
    if kind not in CONSUMER_GROUP_RECORD_TYPES:
        raise RecordFormatError(f"record type {kind} is not a consumer group record")
    group_id = reader.string16()
    second = reader.string16() if kind in _KEYS_WITH_SECOND_STRING else ""
    return Key(kind, group_id, second)


# --- values (flexible) ---------------------------------------------------------------------

def _uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _compact_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out.append(0)
        return
    encoded = value.encode("utf-8")
    _uvarint(out, len(encoded) + 1)
    out += encoded


def _compact_strings(out: bytearray, values: tuple[str, ...]) -> None:
    _uvarint(out, len(values) + 1)
    for value in values:
        _compact_string(out, value)


def _assignment(out: bytearray, assignment: Assignment) -> None:
    _uvarint(out, len(assignment) + 1)
    for topic_id in sorted(assignment):
        out += uuid.UUID(topic_id).bytes
        partitions = sorted(assignment[topic_id])
        _uvarint(out, len(partitions) + 1)
        for partition in partitions:
            out += _I32.pack(partition)
        out.append(0)  # no tagged fields


def encode_value(value: Value) -> bytes:
    out = bytearray(_I16.pack(VALUE_VERSION))
    if isinstance(value, GroupMetadataValue):
        out += _I32.pack(value.epoch)
        if value.metadata_hash:
            out += b"\x01\x00\x08" + _I64.pack(value.metadata_hash)  # one tagged field: tag 0, 8 bytes
            return bytes(out)
    elif isinstance(value, MemberMetadataValue):
        _compact_string(out, value.instance_id)
        _compact_string(out, value.rack_id)
        _compact_string(out, value.client_id)
        _compact_string(out, value.client_host)
        _compact_strings(out, value.subscribed_topic_names)
        _compact_string(out, value.subscribed_topic_regex)
        out += _I32.pack(value.rebalance_timeout_ms)
        _compact_string(out, value.server_assignor)
    elif isinstance(value, TargetAssignmentMetadataValue):
        out += _I32.pack(value.assignment_epoch)
    elif isinstance(value, TargetAssignmentMemberValue):
        _assignment(out, value.partitions)
    elif isinstance(value, CurrentMemberAssignmentValue):
        out += _I32.pack(value.member_epoch) + _I32.pack(value.previous_member_epoch) + _I8.pack(value.state)
        _assignment(out, value.assigned)
        _assignment(out, value.pending_revocation)
    elif isinstance(value, RegularExpressionValue):
        _compact_strings(out, value.topics)
        out += _I64.pack(value.version) + _I64.pack(value.timestamp_ms)
    else:
        raise TypeError(f"not a consumer group record value: {value!r}")
    out.append(0)  # no tagged fields
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.position = 0

    def _take(self, fmt: struct.Struct) -> int:
        if self.position + fmt.size > len(self.data):
            raise RecordFormatError("record ends early")
        (value,) = fmt.unpack_from(self.data, self.position)
        self.position += fmt.size
        return value

    def i8(self) -> int:
        return self._take(_I8)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            if self.position >= len(self.data) or shift > 28:
                raise RecordFormatError("bad varint")
            byte = self.data[self.position]
            self.position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def raw(self, length: int) -> bytes:
        end = self.position + length
        if length < 0 or end > len(self.data):
            raise RecordFormatError("record ends early")
        value = self.data[self.position:end]
        self.position = end
        return value

    def string16(self) -> str:
        length = self.i16()
        return "" if length < 0 else self.raw(length).decode("utf-8")

    def compact_string(self) -> str | None:
        length = self.uvarint()
        return None if length == 0 else self.raw(length - 1).decode("utf-8")

    def compact_strings(self) -> tuple[str, ...]:
        count = self.uvarint() - 1
        return tuple(self.compact_string() or "" for _ in range(max(count, 0)))

    def assignment(self) -> Assignment:
        result: dict[str, frozenset[int]] = {}
        for _ in range(max(self.uvarint() - 1, 0)):
            topic_id = str(uuid.UUID(bytes=self.raw(16)))
            partitions = frozenset(self.i32() for _ in range(max(self.uvarint() - 1, 0)))
            self.tagged_fields()
            result[topic_id] = partitions
        return result

    def tagged_fields(self) -> dict[int, bytes]:
        fields = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            fields[tag] = self.raw(self.uvarint())
        return fields


def decode_value(kind: int, data: bytes) -> Value | None:
    """The value of a record of type `kind`; None for kinds read only to be ignored."""
    reader = _Reader(data)
    version = reader.i16()
    if version != VALUE_VERSION:
        raise RecordFormatError(f"unknown value version {version} of consumer group record type {kind}")
    if kind == GROUP_METADATA:
        epoch = reader.i32()
        tagged = reader.tagged_fields()
        metadata_hash = _I64.unpack(tagged[0])[0] if len(tagged.get(0, b"")) == 8 else 0
        return GroupMetadataValue(epoch, metadata_hash)
    if kind == MEMBER_METADATA:
        return MemberMetadataValue(
            instance_id=reader.compact_string(), rack_id=reader.compact_string(),
            client_id=reader.compact_string() or "", client_host=reader.compact_string() or "",
            subscribed_topic_names=reader.compact_strings(), subscribed_topic_regex=reader.compact_string(),
            rebalance_timeout_ms=reader.i32(), server_assignor=reader.compact_string())
    if kind == TARGET_ASSIGNMENT_METADATA:
        return TargetAssignmentMetadataValue(reader.i32())
    if kind == TARGET_ASSIGNMENT_MEMBER:
        return TargetAssignmentMemberValue(reader.assignment())
    if kind == CURRENT_MEMBER_ASSIGNMENT:
        return CurrentMemberAssignmentValue(reader.i32(), reader.i32(), reader.i8(), reader.assignment(),
                                            reader.assignment())
    if kind == REGULAR_EXPRESSION:
        return RegularExpressionValue(reader.compact_strings(), reader.i64(), reader.i64())
    return None  # PARTITION_METADATA: superseded by the metadata hash
