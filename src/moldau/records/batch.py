"""RecordBatch v2 headers: parse, validate and patch without looking at the records.

Theory of operation
-------------------
A produce payload is one or more concatenated record batches (magic 2). The broker treats each
batch as opaque bytes behind a fixed 61-byte header::

    base_offset int64 | batch_length int32 | partition_leader_epoch int32 | magic int8 |
    crc uint32 | attributes int16 | last_offset_delta int32 | base_timestamp int64 |
    max_timestamp int64 | producer_id int64 | producer_epoch int16 | base_sequence int32 |
    records_count int32 | records...

`batch_length` counts the bytes after the length field (so a batch occupies
`batch_length + 12` bytes). The CRC32C covers `attributes` to the end of the batch, which is
why the broker can rewrite `base_offset` and `partition_leader_epoch` without recomputing it.
Only a LogAppendTime topic forces a CRC recomputation (attributes and max_timestamp change);
even then the CRC is computed over a new 40-byte header prefix and *extended* over the
untouched record bytes, so nothing is copied.

`validate_payload` walks the headers (one `struct.unpack_from` per batch) and checks the CRC of
each batch: cost is ~1 µs per batch plus the CRC (≈ 45 µs per MiB with google-crc32c, which
accepts only `bytes`, so a slice of a larger payload costs one extra copy, ≈ 23 µs per MiB).
It never iterates records. Errors carry Kafka's error code in a `RecordsError`:

- truncated/trailing bytes, batch_length too small, unknown magic (> 2), bad CRC, unknown
  compression codec → CORRUPT_MESSAGE (2), as Kafka's CorruptRecordException;
- magic 0/1 → UNSUPPORTED_FOR_MESSAGE_FORMAT (43) (message formats v0/v1 are gone since 4.0);
- a batch larger than max.message.bytes → MESSAGE_TOO_LARGE (10);
- records_count < 1 or inconsistent with last_offset_delta, empty payload → INVALID_RECORD (87),
  as Kafka's InvalidRecordException from LogValidator.

Attribute bits: 0-2 compression codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), 3 timestamp
type (1 = LogAppendTime), 4 transactional, 5 control, 6 delete-horizon set (compaction).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from google_crc32c import extend as _crc_extend
from google_crc32c import value as _crc_value
from kio.schema.errors import ErrorCode

from moldau.limits import records_per_batch_max

# Header layout (see module docstring). `>` = big-endian, no padding.
HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER_STRUCT.size  # 61
assert HEADER_SIZE == 61, "RecordBatch v2 header must be 61 bytes"
# base_offset + batch_length: the log-level framing every batch starts with.
LOG_OVERHEAD = 12
# Smallest legal batch_length: the v2 header minus the framing (an empty batch).
BATCH_LENGTH_MIN = HEADER_SIZE - LOG_OVERHEAD  # 49
# Byte offsets of individual header fields.
OFFSET_BASE_OFFSET = 0
OFFSET_BATCH_LENGTH = 8
OFFSET_LEADER_EPOCH = 12
OFFSET_MAGIC = 16
OFFSET_CRC = 17
OFFSET_ATTRIBUTES = 21  # the CRC covers from here to the end of the batch
OFFSET_MAX_TIMESTAMP = 35

CURRENT_MAGIC = 2
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

TIMESTAMP_CREATE_TIME = 0
TIMESTAMP_LOG_APPEND_TIME = 1

_unpack_header = HEADER_STRUCT.unpack_from
_pack_header = HEADER_STRUCT.pack
_pack_i64_i32 = struct.Struct(">qi").pack_into
_pack_i64 = struct.Struct(">q").pack_into
_pack_i32 = struct.Struct(">i").pack_into
_pack_u32 = struct.Struct(">I").pack_into
_pack_i16 = struct.Struct(">h").pack_into
_unpack_prefix = struct.Struct(">qi").unpack_from


class RecordsError(Exception):
    """Bad record data from a peer; `error_code` is the Kafka error code to answer with."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(f"{error_code.name}: {message}")
        self.error_code = error_code
        self.message = message


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, plus where it sits in its buffer (`position`)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    position: int

    @property
    def size_bytes(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.attributes & TIMESTAMP_TYPE_MASK else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_MASK)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Parse the header at `position`; the caller has checked that 61 bytes are there."""
    return BatchHeader(*_unpack_header(buf, position), position)


def _corrupt(message: str) -> RecordsError:
    return RecordsError(ErrorCode.corrupt_message, message)


def batch_crc(buf: bytes | bytearray | memoryview, position: int, size_bytes: int) -> int:
    """CRC32C of one batch from its attributes field to its end (what the header stores)."""
    start = position + OFFSET_ATTRIBUTES
    end = position + size_bytes
    if type(buf) is bytes and start == 0 and end == len(buf):
        return _crc_value(buf)
    return _crc_value(bytes(buf[start:end]))


def check_header(header: BatchHeader, available: int, max_message_bytes: int) -> None:
    """Header-only checks of one batch; `available` = bytes from its start to buffer end."""
    if header.batch_length < BATCH_LENGTH_MIN:
        raise _corrupt(f"batch_length {header.batch_length} < {BATCH_LENGTH_MIN}")
    if header.magic != CURRENT_MAGIC:
        if header.magic in (0, 1):
            raise RecordsError(
                ErrorCode.unsupported_for_message_format,
                f"message format v{header.magic} is not supported; use magic 2",
            )
        raise _corrupt(f"unknown magic {header.magic}")
    size_bytes = header.batch_length + LOG_OVERHEAD
    if size_bytes > max_message_bytes:
        raise RecordsError(
            ErrorCode.message_too_large,
            f"batch of {size_bytes} bytes exceeds max.message.bytes {max_message_bytes}",
        )
    if size_bytes > available:
        raise _corrupt(f"batch of {size_bytes} bytes truncated at {available} bytes")
    if header.attributes & COMPRESSION_MASK > COMPRESSION_ZSTD:
        raise _corrupt(f"unknown compression codec {header.attributes & COMPRESSION_MASK}")


def check_offsets_dense(header: BatchHeader) -> None:
    """Kafka's LogValidator check for client batches: count == last_offset_delta + 1 >= 1."""
    if header.records_count > records_per_batch_max:
        raise RecordsError(ErrorCode.invalid_record,
                           f"records_count {header.records_count} > {records_per_batch_max}")
    if header.records_count < 1 or header.last_offset_delta < 0:
        raise RecordsError(
            ErrorCode.invalid_record, f"invalid records_count {header.records_count}"
        )
    if header.records_count != header.last_offset_delta + 1:
        raise RecordsError(
            ErrorCode.invalid_record,
            f"records_count {header.records_count} inconsistent with "
            f"last_offset_delta {header.last_offset_delta}",
        )


def validate_payload(
    payload: bytes | bytearray | memoryview,
    max_message_bytes: int,
    *,
    require_dense_offsets: bool = True,
    verify_crc: bool = True,
) -> list[BatchHeader]:
    """Validate concatenated batches; return their headers (positions relative to payload).

    `require_dense_offsets` is the produce (leader) check; replicated or compacted data may
    legitimately have records_count < last_offset_delta + 1 and is validated without it.
    """
    total = len(payload)
    if total == 0:
        raise RecordsError(ErrorCode.invalid_record, "payload contains no record batches")
    headers: list[BatchHeader] = []
    position = 0
    new_header = tuple.__new__
    while position < total:
        available = total - position
        if available < HEADER_SIZE:
            raise _corrupt(f"{available} trailing bytes do not hold a batch header")
        fields = _unpack_header(payload, position)
        size_bytes = fields[1] + LOG_OVERHEAD
        records_count = fields[12]
        if (fields[1] < BATCH_LENGTH_MIN or fields[3] != CURRENT_MAGIC
                or size_bytes > available or size_bytes > max_message_bytes
                or fields[5] & COMPRESSION_MASK > COMPRESSION_ZSTD
                or records_count > records_per_batch_max
                or (require_dense_offsets
                    and (records_count < 1 or records_count != fields[6] + 1))):
            _raise_detailed(BatchHeader(*fields, position), available, max_message_bytes,
                            require_dense_offsets)
        if verify_crc and _crc_value(
                bytes(payload[position + OFFSET_ATTRIBUTES : position + size_bytes])) != fields[4]:
            raise _corrupt(f"CRC mismatch in batch at byte {position}")
        headers.append(new_header(BatchHeader, fields + (position,)))
        position += size_bytes
    return headers


def _raise_detailed(header: BatchHeader, available: int, max_message_bytes: int,
                    require_dense_offsets: bool) -> None:
    check_header(header, available, max_message_bytes)
    if require_dense_offsets or header.records_count > records_per_batch_max:
        check_offsets_dense(header)
    raise AssertionError(f"header checks disagree about {header}")


def patch_in_place(
    buf: bytearray | memoryview,
    position: int,
    base_offset: int,
    partition_leader_epoch: int,
    log_append_time_ms: int | None = None,
) -> None:
    """Rewrite base_offset and leader epoch of the batch at `position` in a writable buffer.

    With `log_append_time_ms`, also set the LogAppendTime bit and max_timestamp and recompute
    the CRC (Kafka's behaviour for message.timestamp.type=LogAppendTime).
    """
    _pack_i64(buf, position + OFFSET_BASE_OFFSET, base_offset)
    _pack_i32(buf, position + OFFSET_LEADER_EPOCH, partition_leader_epoch)
    if log_append_time_ms is None:
        return
    (attributes,) = struct.unpack_from(">h", buf, position + OFFSET_ATTRIBUTES)
    _pack_i16(buf, position + OFFSET_ATTRIBUTES, attributes | TIMESTAMP_TYPE_MASK)
    _pack_i64(buf, position + OFFSET_MAX_TIMESTAMP, log_append_time_ms)
    (batch_length,) = struct.unpack_from(">i", buf, position + OFFSET_BATCH_LENGTH)
    crc = batch_crc(buf, position, batch_length + LOG_OVERHEAD)
    _pack_u32(buf, position + OFFSET_CRC, crc)


def patched_header(
    payload: bytes | bytearray | memoryview,
    header: BatchHeader,
    base_offset: int,
    partition_leader_epoch: int,
    log_append_time_ms: int | None = None,
) -> bytes:
    """A new 61-byte header for `header`'s batch, leaving the payload untouched (no copy).

    The log writes `[patched_header, payload[position + 61 : end]]` with one writev, so a
    read-only request buffer never has to be copied to be patched.
    """
    if log_append_time_ms is None:
        return _pack_header(
            base_offset, header.batch_length, partition_leader_epoch, header.magic, header.crc,
            header.attributes, header.last_offset_delta, header.base_timestamp,
            header.max_timestamp, header.producer_id, header.producer_epoch,
            header.base_sequence, header.records_count)
    new = bytearray(_pack_header(
        base_offset, header.batch_length, partition_leader_epoch, header.magic, 0,
        header.attributes | TIMESTAMP_TYPE_MASK, header.last_offset_delta,
        header.base_timestamp, log_append_time_ms, header.producer_id, header.producer_epoch,
        header.base_sequence, header.records_count))
    crc = _crc_value(bytes(new[OFFSET_ATTRIBUTES:]))
    position = header.position
    end = position + header.batch_length + LOG_OVERHEAD
    if end > position + HEADER_SIZE:
        crc = _crc_extend(crc, bytes(payload[position + HEADER_SIZE : end]))
    _pack_u32(new, OFFSET_CRC, crc)
    return bytes(new)


def read_prefix(buf: bytes | bytearray | memoryview, position: int = 0) -> tuple[int, int]:
    """(base_offset, batch_length) at `position`: the 12-byte log framing."""
    return _unpack_prefix(buf, position)


_RECORDS_COUNT_INT32 = struct.Struct(">i")  # a batch's length (byte 8) and records_count (byte 57)


def records_in(payload: bytes | memoryview) -> int:
    """The number of records in a run of RecordBatch v2 batches, read from their headers
    (records_count at byte 57, batch length at byte 8): a few struct reads per batch, no
    decompression. A truncated tail batch (a fetch may end mid-batch) is not counted."""
    count, position, end = 0, 0, len(payload)
    int32_at = _RECORDS_COUNT_INT32.unpack_from
    while position + 61 <= end:
        (length,) = int32_at(payload, position + 8)
        if position + 12 + length > end:
            break
        count += int32_at(payload, position + 57)[0]
        position += 12 + length
    return count
