"""Records of `__transaction_state`, in Kafka's own key and value schemas.

Theory of operation. Each record is one transactional id's latest metadata: the key is
TransactionLogKey v0 (int16 version 0 | string transactional_id), the value TransactionLogValue
(int16 version, then the fields below) or null — a tombstone for an expired transactional id.
The topic is compacted, so the last record per key is the id's state; replaying a partition
from its start rebuilds the coordinator's memory.

TransactionLogValue v0 (non-flexible) and v1 (flexible: compact strings and arrays, tagged
fields) carry:

    producer_id int64 | producer_epoch int16 | transaction_timeout_ms int32 |
    transaction_status int8 (txn_state.TxnState ids) |
    transaction_partitions [topic string, partition_ids [int32]] (null when Empty) |
    last_update_timestamp_ms int64 | start_timestamp_ms int64
    v1 tagged: 0 previous_producer_id int64 (-1), 1 next_producer_id int64 (-1),
               2 client_transaction_version int16 (0)

We write v1 (what Kafka writes once transaction.version ≥ 1, which the Transactions V2 state
needs: the next producer id of an exhausted epoch and the client's transaction version) and
read both, so Kafka's `TransactionLogMessageFormatter` reads our topic and we read Kafka's.
Like Kafka 4.1.1 we leave the previous producer id out unless a rotation to a new producer id
made it differ from the current one, so the records print as Kafka's do (a test compares them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from moldau.coordinator.records import RecordFormatError
from moldau.coordinator.txn_state import EMPTY, TxnState

KEY_VERSION = 0
VALUE_VERSION = 1

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

TAG_PREVIOUS_PRODUCER_ID = 0
TAG_NEXT_PRODUCER_ID = 1
TAG_CLIENT_TRANSACTION_VERSION = 2


@dataclass(frozen=True, slots=True)
class TxnLogValue:
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: tuple[tuple[str, tuple[int, ...]], ...]  # (topic, partition ids), sorted
    last_update_ms: int
    start_ms: int
    previous_producer_id: int = -1
    next_producer_id: int = -1
    client_transaction_version: int = 0


# --- writing ------------------------------------------------------------------------------
def encode_key(transactional_id: str) -> bytes:
    encoded = transactional_id.encode("utf-8")
    return _I16.pack(KEY_VERSION) + _I16.pack(len(encoded)) + encoded


def encode_value(value: TxnLogValue) -> bytes:
    out = bytearray(_I16.pack(VALUE_VERSION))
    out += _I64.pack(value.producer_id) + _I16.pack(value.producer_epoch)
    out += _I32.pack(value.timeout_ms) + _I8.pack(value.state.value)
    if value.state == EMPTY:
        out += _uvarint(0)  # null array
    else:
        out += _uvarint(len(value.partitions) + 1)
        for topic, ids in value.partitions:
            encoded = topic.encode("utf-8")
            out += _uvarint(len(encoded) + 1) + encoded + _uvarint(len(ids) + 1)
            for partition_id in ids:
                out += _I32.pack(partition_id)
            out += _uvarint(0)  # no tagged fields in the element
    out += _I64.pack(value.last_update_ms) + _I64.pack(value.start_ms)
    tags = []
    if value.previous_producer_id != -1:
        tags.append((TAG_PREVIOUS_PRODUCER_ID, _I64.pack(value.previous_producer_id)))
    if value.next_producer_id != -1:
        tags.append((TAG_NEXT_PRODUCER_ID, _I64.pack(value.next_producer_id)))
    if value.client_transaction_version != 0:
        tags.append((TAG_CLIENT_TRANSACTION_VERSION, _I16.pack(value.client_transaction_version)))
    out += _uvarint(len(tags))
    for tag, body in tags:
        out += _uvarint(tag) + _uvarint(len(body)) + body
    return bytes(out)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# --- reading ------------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, fmt: struct.Struct) -> int:
        if self.position + fmt.size > len(self.data):
            raise RecordFormatError("__transaction_state record ends early")
        (value,) = fmt.unpack_from(self.data, self.position)
        self.position += fmt.size
        return value

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.take(_I8) & 0xFF
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise RecordFormatError("varint too long")

    def raw(self, length: int) -> bytes:
        end = self.position + length
        if length < 0 or end > len(self.data):
            raise RecordFormatError("__transaction_state record ends early")
        value = self.data[self.position:end]
        self.position = end
        return value

    def string(self, compact: bool) -> str:
        length = self.uvarint() - 1 if compact else self.take(_I16)
        if length < 0:
            raise RecordFormatError("null string in __transaction_state")
        return self.raw(length).decode("utf-8")

    def array_length(self, compact: bool) -> int:
        return self.uvarint() - 1 if compact else self.take(_I32)

    def tagged_fields(self) -> dict[int, bytes]:
        fields = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            fields[tag] = self.raw(self.uvarint())
        return fields


def decode_key(data: bytes) -> str:
    reader = _Reader(data)
    version = reader.take(_I16)
    if version != KEY_VERSION:
        raise RecordFormatError(f"unknown __transaction_state key version {version}")
    return reader.string(compact=False)


def decode_value(data: bytes) -> TxnLogValue:
    reader = _Reader(data)
    version = reader.take(_I16)
    if version not in (0, 1):
        raise RecordFormatError(f"unknown __transaction_state value version {version}")
    flexible = version >= 1
    producer_id, epoch = reader.take(_I64), reader.take(_I16)
    timeout_ms, status = reader.take(_I32), reader.take(_I8)
    try:
        state = TxnState(status)
    except ValueError:
        raise RecordFormatError(f"unknown transaction status {status}") from None
    partitions = []
    for _ in range(max(reader.array_length(flexible), 0)):
        topic = reader.string(flexible)
        ids = tuple(reader.take(_I32) for _ in range(max(reader.array_length(flexible), 0)))
        if flexible:
            reader.tagged_fields()
        partitions.append((topic, ids))
    last_update_ms, start_ms = reader.take(_I64), reader.take(_I64)
    tags = reader.tagged_fields() if flexible else {}
    return TxnLogValue(
        producer_id, epoch, timeout_ms, state, tuple(sorted(partitions)), last_update_ms, start_ms,
        _tag(tags, TAG_PREVIOUS_PRODUCER_ID, _I64, -1), _tag(tags, TAG_NEXT_PRODUCER_ID, _I64, -1),
        _tag(tags, TAG_CLIENT_TRANSACTION_VERSION, _I16, 0))


def _tag(tags: dict[int, bytes], tag: int, fmt: struct.Struct, default: int) -> int:
    body = tags.get(tag)
    if body is None or len(body) < fmt.size:
        return default
    return fmt.unpack_from(body)[0]
