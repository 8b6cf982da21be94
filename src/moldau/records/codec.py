"""Compression codecs of record batches (attributes bits 0-2), all through cramjam.

Theory of operation
-------------------
The broker only decompresses where it must look inside a batch (compaction, timestamp search,
internal topics). The record section of a compressed batch (everything after the 61-byte
header) is one compressed blob:

- gzip (1): a gzip stream.
- snappy (2): Java clients write snappy-java's *xerial* framing (magic ``\\x82SNAPPY\\x00``,
  version and compat int32s, then blocks of ``int32 length + raw snappy block``); librdkafka
  writes raw snappy. We read both and write xerial (readable by every client).
- lz4 (3): the LZ4 frame format (Kafka's KafkaLZ4BlockOutputStream, magic v1+).
- zstd (4): a zstd frame.

Decompressed size is bounded by `decompressed_bytes_max` so a small hostile batch cannot
blow up memory ("zip bomb"); going past it is CORRUPT_MESSAGE.
"""

from __future__ import annotations

import struct

import cramjam
from kio.schema.errors import ErrorCode

from .batch import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    RecordsError,
)

# Bound on one batch's decompressed record section (ours; Kafka bounds it only indirectly).
decompressed_bytes_max = 256 * 1024 * 1024

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_BYTES = 32 * 1024  # snappy-java's default block size
_unpack_i32 = struct.Struct(">i").unpack_from


def _xerial_decompress(data: bytes) -> bytes:
    position = len(_XERIAL_HEADER)
    out = bytearray()
    total = len(data)
    while position < total:
        if position + 4 > total:
            raise ValueError("truncated xerial block length")
        (length,) = _unpack_i32(data, position)
        position += 4
        if length < 0 or position + length > total:
            raise ValueError("truncated xerial block")
        out += bytes(cramjam.snappy.decompress_raw(data[position : position + length]))
        position += length
        if len(out) > decompressed_bytes_max:
            raise ValueError("decompressed size over bound")
    return bytes(out)


def _xerial_compress(data: bytes) -> bytes:
    parts = [_XERIAL_HEADER]
    view = memoryview(data)
    for start in range(0, len(data), _XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(bytes(view[start : start + _XERIAL_BLOCK_BYTES])))
        parts.append(struct.pack(">i", len(block)))
        parts.append(block)
    return b"".join(parts)


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """The record section of a batch compressed with `codec`; CORRUPT_MESSAGE if garbled."""
    data = bytes(data)
    try:
        if codec == COMPRESSION_NONE:
            return data
        if codec == COMPRESSION_GZIP:
            out = bytes(cramjam.gzip.decompress(data))
        elif codec == COMPRESSION_SNAPPY:
            if data.startswith(XERIAL_MAGIC):
                out = _xerial_decompress(data)
            else:
                out = bytes(cramjam.snappy.decompress_raw(data))
        elif codec == COMPRESSION_LZ4:
            out = bytes(cramjam.lz4.decompress(data))
        elif codec == COMPRESSION_ZSTD:
            out = bytes(cramjam.zstd.decompress(data))
        else:
            raise ValueError(f"unknown codec {codec}")
    except (ValueError, cramjam.DecompressionError) as exc:
        raise RecordsError(ErrorCode.corrupt_message, f"cannot decompress: {exc}") from exc
    if len(out) > decompressed_bytes_max:
        raise RecordsError(ErrorCode.corrupt_message, "decompressed batch over bound")
    return out


def compress(codec: int, data: bytes) -> bytes:
    """Compress a record section with `codec` (xerial framing for snappy, lz4 frame)."""
    if codec == COMPRESSION_NONE:
        return data
    if codec == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == COMPRESSION_SNAPPY:
        return _xerial_compress(data)
    if codec == COMPRESSION_LZ4:
        # Independent blocks, no content checksum: the frame flavour Kafka's Java
        # Lz4BlockInputStream reads (cramjam's default links blocks).
        compressor = cramjam.lz4.Compressor(content_checksum=False, block_linked=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    if codec == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(f"unknown compression codec {codec}")
