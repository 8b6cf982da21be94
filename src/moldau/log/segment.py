"""One log segment: `<base offset>.log` plus its `.index` and `.timeindex`.

Theory of operation
-------------------
A segment holds consecutive batches starting at `base_offset`; only the last (active) segment
is appended to. The segment keeps in memory what reads and appends need without touching
the disk: its size, `next_offset` (one past its last offset), the max timestamp and the
offset of the batch carrying it, the timestamp used for time-based rolling, and a small
`position_hints` map base_offset -> byte position of recently appended or read batches, so a
consumer reading at the tail finds its position with one dict lookup.

Finding a batch in a segment: `position_hints`, else the sparse offset index followed by a
forward scan of batch headers (`scan_headers`, which reads in chunks of `_SCAN_CHUNK_BYTES`,
so a scan of index.interval.bytes costs one or two preads). `recover_from(position)` is the
crash path: it verifies every batch (length, magic, CRC, ascending offsets) from a position,
truncates the file at the first bad byte and rebuilds the index entries past that position.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

from moldau.records.batch import (
    BATCH_LENGTH_MIN,
    CURRENT_MAGIC,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    parse_header,
)
from google_crc32c import value as _crc_value

from .fs import Chunk, FileHandle, FileSystem
from .index import OFFSET_ENTRY, TIME_ENTRY, OffsetIndex, TimeIndex, persist_index
from .txn_index import TransactionIndex

_SCAN_CHUNK_BYTES = 16 * 1024
# Hints kept per segment (base_offset -> position); cleared wholesale past this bound.
_POSITION_HINTS_MAX = 4096
# The files of one segment (the aborted-transaction index exists only once it has an entry).
SEGMENT_SUFFIXES = (".log", ".index", ".timeindex", ".txnindex")


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    def __init__(self, fs: FileSystem, directory: str, base_offset: int, log: FileHandle,
                 index_interval_bytes: int, created_ms: int) -> None:
        self.fs = fs
        self.directory = directory
        self.base_offset = base_offset
        self.log = log
        self.index_interval_bytes = index_interval_bytes
        self.offset_index = OffsetIndex(base_offset)
        self.time_index = TimeIndex(base_offset)
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.max_timestamp_offset = -1  # last offset of the batch holding max_timestamp
        self.rolling_timestamp = -1  # max timestamp of the first batch (time-based roll)
        self.created_ms = created_ms
        self.bytes_since_index_entry = 0
        self.position_hints: dict[int, int] = {}
        # Aborted transactions whose marker is in this segment (txn_index.py); loaded or
        # created by the partition log, None until then.
        self.txn_index: TransactionIndex | None = None

    # --- files ------------------------------------------------------------------------------
    def path(self, suffix: str) -> str:
        return posixpath.join(self.directory, segment_file_name(self.base_offset, suffix))

    @classmethod
    def create(cls, fs: FileSystem, directory: str, base_offset: int,
               index_interval_bytes: int, now_ms: int) -> "LogSegment":
        path = posixpath.join(directory, segment_file_name(base_offset, ".log"))
        log = fs.open(path, create=True)
        if log.size:
            log.truncate(0)
        segment = cls(fs, directory, base_offset, log, index_interval_bytes, now_ms)
        for suffix in (".index", ".timeindex", ".txnindex"):
            fs.remove(segment.path(suffix))
        return segment

    @property
    def size(self) -> int:
        return self.log.size

    def persist_indexes(self) -> None:
        """Bring both index files in line with memory and fsync them (skipped when current)."""
        for suffix, index, entry in ((".index", self.offset_index, OFFSET_ENTRY),
                                     (".timeindex", self.time_index, TIME_ENTRY)):
            if index.persisted == len(index) and index.file_entries == index.persisted:
                continue
            handle = self.fs.open(self.path(suffix), create=True)
            try:
                persist_index(handle, index, entry.size)
                handle.sync()
            finally:
                handle.close()

    def flush(self) -> None:
        self.log.sync()
        self.persist_indexes()
        if self.txn_index is not None:
            self.txn_index.sync()

    def seal(self) -> None:
        """The segment stops being active: record its final max timestamp in the time index."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.max_timestamp_offset)

    def close(self) -> None:
        self.log.close()

    def delete_files(self) -> None:
        self.log.close()
        for suffix in SEGMENT_SUFFIXES:
            self.fs.remove(self.path(suffix))

    # --- append -----------------------------------------------------------------------------
    def append(self, chunks: list[Chunk], batches: list[tuple[int, int, int, int]]) -> None:
        """Write `chunks` (the batches' bytes) and index `batches` = (base, last, max_ts, size)."""
        position = self.log.size
        self.log.append(chunks)  # may raise OSError: nothing below has happened yet
        hints = self.position_hints
        if len(hints) > _POSITION_HINTS_MAX:
            hints.clear()
        for base_offset, last_offset, max_timestamp, size in batches:
            self._index_batch(base_offset, last_offset, max_timestamp, size, position)
            hints[base_offset] = position
            position += size
        assert position == self.log.size, "segment size out of step with appended batches"

    def _index_batch(self, base_offset: int, last_offset: int, max_timestamp: int,
                     size: int, position: int) -> None:
        if self.rolling_timestamp < 0 and self.next_offset == self.base_offset:
            self.rolling_timestamp = max_timestamp
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.max_timestamp_offset = last_offset
        if self.bytes_since_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            self.time_index.maybe_append(self.max_timestamp, self.max_timestamp_offset)
            self.bytes_since_index_entry = 0
        self.bytes_since_index_entry += size
        self.next_offset = last_offset + 1

    # --- lookup -----------------------------------------------------------------------------
    def scan_headers(self, position: int, end: int | None = None) -> Iterator[BatchHeader]:
        """Headers of the complete batches from byte `position` (absolute positions)."""
        end = self.log.size if end is None else end
        while end - position >= HEADER_SIZE:
            chunk = self.log.pread(min(_SCAN_CHUNK_BYTES, end - position), position)
            offset = 0
            while len(chunk) - offset >= HEADER_SIZE:
                header = parse_header(chunk, offset)
                size = header.batch_length + LOG_OVERHEAD
                if header.batch_length < BATCH_LENGTH_MIN or position + offset + size > end:
                    return
                yield header._replace(position=position + offset)
                offset += size
            if offset == 0:
                return
            position += offset

    def find_batch(self, offset: int) -> BatchHeader | None:
        """Header of the first batch whose last offset >= `offset`, or None."""
        for header in self.scan_headers(self.offset_index.lookup(offset)):
            if header.base_offset + header.last_offset_delta >= offset:
                return header
        return None

    def position_of(self, offset: int) -> int | None:
        """Byte position of the first batch whose last offset >= `offset`, or None."""
        position = self.position_hints.get(offset)
        if position is not None:
            return position
        header = self.find_batch(offset)
        return None if header is None else header.position

    def batch_end_at_or_before(self, start: int, limit: int) -> int:
        """End of the last whole batch from `start` that ends at or before byte `limit`."""
        _, index_position = self.offset_index.lookup_position(limit)
        end = position = max(start, index_position)
        for header in self.scan_headers(position):
            batch_end = header.position + header.batch_length + LOG_OVERHEAD
            if batch_end > limit:
                break
            end = batch_end
        if end != start and len(self.position_hints) <= _POSITION_HINTS_MAX:
            header = self.scan_first(end)
            if header is not None:
                self.position_hints[header.base_offset] = end
        return end

    def scan_first(self, position: int) -> BatchHeader | None:
        for header in self.scan_headers(position):
            return header
        return None

    # --- recovery and truncation ------------------------------------------------------------
    def recover_from(self, position: int, verify_from_offset: int) -> int:
        """Re-index batches from byte `position`, verifying the CRC of every batch whose last
        offset >= `verify_from_offset` (older ones were fsynced: header checks suffice), and
        truncate the file at the first bad batch. Returns the number of bytes truncated."""
        self.offset_index.truncate_to_position(position)
        self.position_hints.clear()
        size = self.log.size
        valid_end = position
        next_offset = self.base_offset
        self.bytes_since_index_entry = self.index_interval_bytes + 1 if position else 0
        while size - valid_end >= HEADER_SIZE:
            header = self._checked_header(valid_end, size, verify_from_offset)
            if header is None or header.base_offset < next_offset:
                break
            batch_size = header.batch_length + LOG_OVERHEAD
            last_offset = header.base_offset + header.last_offset_delta
            if valid_end == 0:
                self.rolling_timestamp = header.max_timestamp
            self._index_batch(header.base_offset, last_offset, header.max_timestamp,
                              batch_size, valid_end)
            next_offset = last_offset + 1
            valid_end += batch_size
        if valid_end == position > 0:
            # Nothing valid from `position`: the state of the prefix is unknown here, so
            # recover the whole segment instead (rare: the start is always a trusted batch).
            self.offset_index.truncate_to_position(0)
            self.time_index.truncate_to_offset(self.base_offset)
            self.max_timestamp = self.max_timestamp_offset = -1
            return self.recover_from(0, verify_from_offset)
        truncated = size - valid_end
        if truncated:
            self.log.truncate(valid_end)
        return truncated

    def _checked_header(self, position: int, size: int, verify_from_offset: int) -> BatchHeader | None:
        header = parse_header(self.log.pread(HEADER_SIZE, position), 0)
        batch_size = header.batch_length + LOG_OVERHEAD
        if (header.batch_length < BATCH_LENGTH_MIN or header.magic != CURRENT_MAGIC
                or position + batch_size > size or header.base_offset < self.base_offset
                or header.last_offset_delta < 0
                or header.last_offset_delta > 0x7FFFFFFF - (header.base_offset - self.base_offset)):
            return None
        if header.base_offset + header.last_offset_delta >= verify_from_offset:
            body = self.log.pread(batch_size - 21, position + 21)
            if _crc_value(body) != header.crc:
                return None
        return header._replace(position=position)

    def truncate_to(self, offset: int) -> int:
        """Drop batches whose last offset >= `offset`; return bytes dropped."""
        header = self.find_batch(offset)
        if header is None:
            return 0
        position = header.position
        dropped = self.log.size - position
        self.log.truncate(position)
        self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(offset)
        self._rescan_tail_state()
        return dropped

    def _rescan_tail_state(self) -> None:
        """Recompute next_offset and max timestamp after the file shrank."""
        self.position_hints.clear()
        self.next_offset = self.base_offset
        self.max_timestamp = self.max_timestamp_offset = self.rolling_timestamp = -1
        for header in self.scan_headers(0):
            if self.rolling_timestamp < 0 and self.next_offset == self.base_offset:
                self.rolling_timestamp = header.max_timestamp
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.max_timestamp_offset = header.base_offset + header.last_offset_delta
            self.next_offset = header.base_offset + header.last_offset_delta + 1
        self.bytes_since_index_entry = self.index_interval_bytes + 1 if self.size else 0
