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
so a scan of index.interval.bytes costs one or two preads). An index entry that does not name
the batch it points at is caught when used, and the index rebuilt in memory.

`recover_from(position)` is the crash path: it verifies every batch (length, magic, CRC,
ascending offsets) from a position, rebuilds the index entries past it, and returns where the
valid batches end (recovery.py decides whether to cut the rest). `verify_read` checks what a
read returns, unless its bytes are known valid: from `verified_from` to the end of the file
(appended by this process, or CRC-checked by recovery), or in `checked_start`..`checked_end`
(checked by an earlier read; consumers read in order, so this range grows, and joins the
tail once it reaches `verified_from`).
"""

from __future__ import annotations

import errno

import logging
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

from .faults import COUNTERS, partition_name
from .fs import Chunk, FileHandle, FileSystem
from .index import OFFSET_ENTRY, TIME_ENTRY, OffsetIndex, TimeIndex, persist_index
from .txn_index import TransactionIndex

log = logging.getLogger("moldau.log")

_SCAN_CHUNK_BYTES = 16 * 1024
# `verified_from` of a segment whose bytes nothing checked yet.
_NOTHING_VERIFIED = 2**63 - 1
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
        # Known-valid bytes, which reads need not check (verify_read): from `verified_from` to
        # the end of the file, and [checked_start, checked_end). Nothing, until recovery or
        # `create` says otherwise.
        self.verified_from = _NOTHING_VERIFIED
        self.checked_start = self.checked_end = 0
        # Position of the first unreadable byte of a damaged segment (-1: none); the bytes from
        # there on stay in the file, untouched, for the operator (faults.py).
        self.damaged_at = -1
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
        segment.verified_from = 0  # every byte will be appended, validated, by this process
        for suffix in (".index", ".timeindex", ".txnindex"):
            fs.remove(segment.path(suffix))
        return segment

    @property
    def size(self) -> int:
        return self.log.size

    def persist_indexes(self, sync: bool = True) -> list[str]:
        """Bring both index files in line with memory and fsync them (skipped when current);
        with sync=False only write them, and return the paths written (for a later fsync)."""
        written = []
        for suffix, index, entry in ((".index", self.offset_index, OFFSET_ENTRY),
                                     (".timeindex", self.time_index, TIME_ENTRY)):
            if index.persisted == len(index) and index.file_entries == index.persisted:
                continue
            handle = self.fs.open(self.path(suffix), create=True)
            try:
                persist_index(handle, index, entry.size)
                if sync:
                    handle.sync()
            finally:
                handle.close()
            written.append(self.path(suffix))
        return written

    def sync_written(self, paths: list[str]) -> None:
        """fsync the segment's data and the index files `paths` (what persist_indexes(sync=False)
        wrote): safe on another thread, as the log no longer appends to a sealed segment."""
        try:
            self.log.sync()
            for path in paths:
                handle = self.fs.open(path)
                try:
                    handle.sync()
                finally:
                    handle.close()
        except (FileNotFoundError, ValueError):
            pass  # retention or deletion removed the segment meanwhile: nothing left to sync
        except OSError as error:
            if error.errno != errno.EBADF:  # closed meanwhile, as above
                raise

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
        if self.verified_from > position:  # the batches were validated before the append
            self.verified_from = position
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
        indexed, position = self.offset_index.lookup_entry(offset)
        for header in self.scan_headers(position):
            last_offset = header.base_offset + header.last_offset_delta
            if indexed >= 0 and header.position == position and last_offset != indexed:
                return self._find_past_bad_entry(offset, position)
            if last_offset >= offset:
                return header
        return None

    def _find_past_bad_entry(self, offset: int, position: int) -> BatchHeader | None:
        """An index entry does not name the batch it points at: rebuild the index from the
        batch headers if they are intact, else drop the entry; then look again."""
        COUNTERS.add("index_rebuilds")
        if self.reindex():
            how = "rebuilt the index in memory"
        else:
            self.offset_index.remove_entry(position)
            how = "dropped the entry"
        log.warning("%s: the offset index of %s points at byte %d, where no batch it names "
                    "starts; %s", partition_name(self.directory),
                    segment_file_name(self.base_offset, ".log"), position, how)
        return self.find_batch(offset)

    def reindex(self) -> bool:
        """Rebuild both indexes in memory from the batch headers; False (nothing changed) if
        the headers do not lead to the segment's end."""
        offset_index, time_index = OffsetIndex(self.base_offset), TimeIndex(self.base_offset)
        since, max_timestamp, max_timestamp_offset = 0, -1, -1
        end = self.size if self.damaged_at < 0 else self.damaged_at
        next_offset = self.base_offset
        for header in self.scan_headers(0, end):
            if header.magic != CURRENT_MAGIC or header.base_offset < next_offset \
                    or header.last_offset_delta < 0 \
                    or header.base_offset + header.last_offset_delta >= self.next_offset:
                return False  # the headers themselves are damaged
            next_offset = header.base_offset + header.last_offset_delta + 1
            if header.max_timestamp > max_timestamp:
                max_timestamp, max_timestamp_offset = header.max_timestamp, next_offset - 1
            if since > self.index_interval_bytes:
                offset_index.append(next_offset - 1, header.position)
                time_index.maybe_append(max_timestamp, max_timestamp_offset)
                since = 0
            since += header.batch_length + LOG_OVERHEAD
        if next_offset != self.next_offset:
            return False
        offset_index.file_entries = time_index.file_entries = -1
        self.offset_index, self.time_index = offset_index, time_index
        self.position_hints.clear()
        return True

    def position_of(self, offset: int) -> int | None:
        """Byte position of the first batch whose last offset >= `offset`, or None."""
        return self.batch_at(offset)[0]

    def batch_at(self, offset: int) -> tuple[int | None, int]:
        """(byte position, base offset) of the first batch whose last offset >= `offset`;
        (None, -1) when there is none."""
        position = self.position_hints.get(offset)
        if position is not None:  # hints are keyed by a batch's base offset
            return position, offset
        header = self.find_batch(offset)
        return (None, -1) if header is None else (header.position, header.base_offset)

    def batch_end_at_or_before(self, start: int, limit: int) -> int:
        """End of the last whole batch from `start` that ends at or before byte `limit`."""
        return self.batch_end_and_next_offset(start, limit)[0]

    def batch_end_and_next_offset(self, start: int, limit: int) -> tuple[int, int]:
        """(end of the last whole batch from `start` that ends at or before byte `limit`, base
        offset of the batch that starts there, or -1 when unknown)."""
        _, index_position = self.offset_index.lookup_position(limit)
        end = position = max(start, index_position)
        following = -1
        for header in self.scan_headers(position):
            batch_end = header.position + header.batch_length + LOG_OVERHEAD
            if batch_end > limit:
                following = header.base_offset if header.position == end else -1
                break
            end = batch_end
        if end != start and following < 0:
            header = self.scan_first(end)
            following = header.base_offset if header is not None else -1
        if end != start and following >= 0 and len(self.position_hints) <= _POSITION_HINTS_MAX:
            self.position_hints[following] = end
        return end, following

    def scan_first(self, position: int) -> BatchHeader | None:
        for header in self.scan_headers(position):
            return header
        return None

    def is_verified(self, start: int, end: int) -> bool:
        """Whether bytes [start, end) are known valid (see the module docstring)."""
        if start >= self.verified_from:
            return True
        return self.checked_start <= start and end <= self.checked_end

    def verify_read(self, start: int, data: bytes, first_offset: int) -> tuple[int, str | None]:
        """Check the batches of `data` (read from byte `start`) unless they are known valid;
        return how many leading bytes are whole valid batches, and why it stopped short (None:
        all of it). Reads never serve a batch that fails its CRC."""
        end = start + len(data)
        if self.is_verified(start, end):
            return len(data), None
        good, reason = check_batches(data, first_offset, self.base_offset, self.next_offset)
        self._mark_verified(start, start + good)
        return good, reason

    def _mark_verified(self, start: int, end: int) -> None:
        if start <= self.checked_end and end >= self.checked_start:  # touches: one range
            start, end = min(start, self.checked_start), max(end, self.checked_end)
        if end >= self.verified_from:  # reached the valid tail
            self.verified_from = min(self.verified_from, start)
            self.checked_start = self.checked_end = 0
        elif end - start >= self.checked_end - self.checked_start:
            self.checked_start, self.checked_end = start, end

    # --- recovery and truncation ------------------------------------------------------------
    def recover_from(self, position: int, verify_from_offset: int,
                     end_offset_max: int | None = None) -> int:
        """Re-index batches from byte `position`, verifying the CRC of every batch whose last
        offset >= `verify_from_offset` (older ones were fsynced: header checks suffice); a
        batch reaching `end_offset_max` (the next segment's base offset) is invalid too.
        Returns the end of the valid batches: the file's size when all of it is valid, else
        the position of the first bad byte. The file is not changed; the caller decides
        whether the rest is a torn tail to cut or damage to keep (recovery.py)."""
        self.offset_index.truncate_to_position(position)
        self.position_hints.clear()
        if position == 0:
            self.next_offset = self.base_offset
        size = self.log.size
        valid_end = position
        next_offset = self.base_offset
        self.bytes_since_index_entry = self.index_interval_bytes + 1 if position else 0
        verified_start = -1
        while size - valid_end >= HEADER_SIZE:
            header = self._checked_header(valid_end, size, verify_from_offset)
            if header is None or header.base_offset < next_offset or (
                    end_offset_max is not None
                    and header.base_offset + header.last_offset_delta >= end_offset_max):
                break
            batch_size = header.batch_length + LOG_OVERHEAD
            last_offset = header.base_offset + header.last_offset_delta
            if verified_start < 0 and last_offset >= verify_from_offset:
                verified_start = valid_end
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
            return self.recover_from(0, verify_from_offset, end_offset_max)
        self.verified_from = verified_start if verified_start >= 0 else valid_end
        self.checked_start = self.checked_end = 0
        return valid_end

    def truncate_file(self, position: int) -> None:
        """Cut the file at `position` (recovery: a torn tail); in-memory state is already
        that of the batches before it."""
        self.log.truncate(position)
        self.position_hints.clear()

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


def check_batches(data: bytes, first_offset: int, base_offset: int = 0,
                  end_offset: int = 2**63 - 1) -> tuple[int, str | None]:
    """Walk the batches at the start of `data`: length, magic, CRC and ascending offsets within
    [base_offset, end_offset) (a segment's range; the first batch must end at or after
    `first_offset`). Returns the bytes of valid whole batches and the reason the walk stopped
    early, or (len(data), None)."""
    position = 0
    size = len(data)
    next_base = base_offset  # the smallest base offset the next batch may have
    while position < size:
        if size - position < HEADER_SIZE:
            return position, f"{size - position} bytes after the last batch"
        header = parse_header(data, position)
        batch_size = header.batch_length + LOG_OVERHEAD
        last_offset = header.base_offset + header.last_offset_delta
        if header.batch_length < BATCH_LENGTH_MIN or position + batch_size > size:
            return position, f"batch length {header.batch_length} is impossible here"
        if header.magic != CURRENT_MAGIC:
            return position, f"magic byte {header.magic}"
        if (header.last_offset_delta < 0 or header.base_offset < next_base
                or last_offset >= end_offset or (position == 0 and last_offset < first_offset)):
            return position, f"offsets {header.base_offset}..{last_offset} out of order"
        if _crc_value(data[position + 21 : position + batch_size]) != header.crc:
            return position, f"CRC mismatch in the batch at offset {header.base_offset}"
        next_base = last_offset + 1
        position += batch_size
    return position, None
