"""Records inside a v2 batch: iterate them (varint decoding) and build batches from them.

Theory of operation
-------------------
This is the *slow path*: produce and fetch never come here (they move batches as opaque
bytes). Compaction, timestamp lookups and internal topics (__consumer_offsets, control
records) do. A record is laid out as::

    length varint | attributes int8 | timestamp_delta varlong | offset_delta varint |
    key_length varint | key | value_length varint | value |
    header_count varint | (header_key_length varint | key utf-8 |
                           header_value_length varint | value)*

All varints are zigzag-encoded (protobuf `sint`); a length of -1 is null. A record's offset is
`base_offset + offset_delta` and its timestamp `base_timestamp + timestamp_delta`, except in a
LogAppendTime batch, where every record's timestamp is the batch's max_timestamp.

`build_batch` writes records with *absolute* offsets: deltas are taken from `base_offset`, and
`last_offset_delta` may exceed `len(records) - 1` (compaction leaves offset gaps; Kafka keeps
the original last_offset_delta so producer sequence numbers stay meaningful).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from google_crc32c import value as _crc_value
from kio.schema.errors import ErrorCode

from .batch import (
    COMPRESSION_MASK,
    CONTROL_MASK,
    CURRENT_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    OFFSET_ATTRIBUTES,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_MASK,
    BatchHeader,
    RecordsError,
    parse_header,
)
from .codec import compress, decompress

Header = tuple[str, bytes | None]


@dataclass(slots=True)
class Record:
    """One record with absolute offset and timestamp (as a consumer sees it)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[Header] = field(default_factory=list)
    attributes: int = 0


def _corrupt(message: str) -> RecordsError:
    return RecordsError(ErrorCode.corrupt_message, message)


def read_varint(buf: bytes, position: int) -> tuple[int, int]:
    """Decode a zigzag varint at `position`; return (value, next position)."""
    shift = 0
    result = 0
    while True:
        if position >= len(buf):
            raise _corrupt("truncated varint")
        byte = buf[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise _corrupt("varint longer than 10 bytes")


def write_varint(out: bytearray, value: int) -> None:
    """Append `value` as a zigzag varint (64-bit)."""
    encoded = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while encoded > 0x7F:
        out.append((encoded & 0x7F) | 0x80)
        encoded >>= 7
    out.append(encoded)


def _read_bytes(buf: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = read_varint(buf, position)
    if length < 0:
        return None, position
    end = position + length
    if end > len(buf):
        raise _corrupt("record field overruns its record")
    return buf[position:end], end


def _read_record(
    buf: bytes, position: int, base_offset: int, base_timestamp: int, append_time: int | None
) -> tuple[Record, int]:
    length, position = read_varint(buf, position)
    end = position + length
    if length < 0 or end > len(buf):
        raise _corrupt("record length overruns its batch")
    attributes = buf[position]
    timestamp_delta, position = read_varint(buf, position + 1)
    offset_delta, position = read_varint(buf, position)
    key, position = _read_bytes(buf, position)
    value, position = _read_bytes(buf, position)
    header_count, position = read_varint(buf, position)
    headers: list[Header] = []
    for _ in range(header_count):
        header_key, position = _read_bytes(buf, position)
        header_value, position = _read_bytes(buf, position)
        if header_key is None:
            raise _corrupt("null header key")
        headers.append((header_key.decode("utf-8", "replace"), header_value))
    if position != end:
        raise _corrupt("record length does not match its fields")
    timestamp = append_time if append_time is not None else base_timestamp + timestamp_delta
    record = Record(base_offset + offset_delta, timestamp, key, value, headers, attributes)
    return record, end


def iterate_records(batch: bytes | bytearray | memoryview) -> Iterator[Record]:
    """Records of one complete batch (decompressing as needed)."""
    header = parse_header(batch, 0)
    body = decompress(header.compression, batch[HEADER_SIZE : header.size_bytes])
    append_time = header.max_timestamp if header.timestamp_type else None
    position = 0
    for _ in range(header.records_count):
        record, position = _read_record(
            body, position, header.base_offset, header.base_timestamp, append_time
        )
        yield record
    if position != len(body):
        raise _corrupt("bytes left after the last record of the batch")


def iterate_batches(data: bytes | bytearray | memoryview) -> Iterator[tuple[BatchHeader, bytes]]:
    """(header, batch bytes) of each complete batch in `data`; a partial tail is ignored."""
    position = 0
    total = len(data)
    while total - position >= HEADER_SIZE:
        header = parse_header(data, position)
        end = position + header.size_bytes
        if header.batch_length < HEADER_SIZE - LOG_OVERHEAD or end > total:
            return
        yield header, bytes(data[position:end])
        position = end


def _encode_record(out: bytearray, record: Record, offset_delta: int, timestamp_delta: int) -> None:
    body = bytearray()
    body.append(record.attributes & 0xFF)
    write_varint(body, timestamp_delta)
    write_varint(body, offset_delta)
    for blob in (record.key, record.value):
        if blob is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(blob))
            body += blob
    write_varint(body, len(record.headers))
    for header_key, header_value in record.headers:
        encoded_key = header_key.encode("utf-8")
        write_varint(body, len(encoded_key))
        body += encoded_key
        if header_value is None:
            write_varint(body, -1)
        else:
            write_varint(body, len(header_value))
            body += header_value
    write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int | None = None,
    compression: int = 0,
    log_append_time: bool = False,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
    max_timestamp: int | None = None,
) -> bytes:
    """Encode `records` (absolute offsets, ascending) as one v2 batch with a valid CRC."""
    assert records, "a batch needs at least one record"
    if base_offset is None:
        base_offset = records[0].offset
    if base_timestamp is None:
        base_timestamp = records[0].timestamp
    if max_timestamp is None:
        max_timestamp = max(record.timestamp for record in records)
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset - base_offset
    body = bytearray()
    previous = base_offset - 1
    for record in records:
        assert record.offset > previous, "records must have ascending offsets"
        previous = record.offset
        _encode_record(body, record, record.offset - base_offset, record.timestamp - base_timestamp)
    compressed = compress(compression, bytes(body))
    attributes = compression & COMPRESSION_MASK
    attributes |= TIMESTAMP_TYPE_MASK if log_append_time else 0
    attributes |= TRANSACTIONAL_MASK if transactional else 0
    attributes |= CONTROL_MASK if control else 0
    header = bytearray(HEADER_STRUCT.pack(
        base_offset, HEADER_SIZE - LOG_OVERHEAD + len(compressed), partition_leader_epoch,
        CURRENT_MAGIC, 0, attributes, last_offset_delta, base_timestamp, max_timestamp,
        producer_id, producer_epoch, base_sequence, len(records),
    ))
    crc = _crc_value(bytes(header[OFFSET_ATTRIBUTES:]) + compressed)
    header[17:21] = crc.to_bytes(4, "big")
    return bytes(header) + compressed
