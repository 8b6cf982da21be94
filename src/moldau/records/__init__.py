"""RecordBatch v2: header parse/validate/patch (batch.py), codecs (codec.py), records (record.py).

Theory of operation: the broker's hot paths (produce, fetch, replication) use only `batch.py`,
which reads the 61-byte header with one `struct` call and checks the CRC32C; records stay
opaque bytes. `record.py` decodes and encodes individual records for the slow paths
(compaction, timestamp search, internal topics), decompressing through `codec.py`.
"""

from .batch import (
    COMPRESSION_GZIP,
    COMPRESSION_LZ4,
    COMPRESSION_NONE,
    COMPRESSION_SNAPPY,
    COMPRESSION_ZSTD,
    HEADER_SIZE,
    LOG_OVERHEAD,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    BatchHeader,
    RecordsError,
    parse_header,
    patch_in_place,
    patched_header,
    validate_payload,
)
from .record import Record, build_batch, iterate_batches, iterate_records

__all__ = [
    "COMPRESSION_GZIP",
    "COMPRESSION_LZ4",
    "COMPRESSION_NONE",
    "COMPRESSION_SNAPPY",
    "COMPRESSION_ZSTD",
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "BatchHeader",
    "Record",
    "RecordsError",
    "build_batch",
    "iterate_batches",
    "iterate_records",
    "parse_header",
    "patch_in_place",
    "patched_header",
    "validate_payload",
]
