"""Sparse offset and time indexes of one segment, in Kafka's file formats.

Theory of operation
-------------------
Offset index (`.index`): entries of (relative offset int32, position int32), big-endian,
8 bytes each. An entry (r, p) says "the batch at byte p of the .log ends with offset
base_offset + r" (Kafka indexes the batch's *last* offset). A lookup for offset T takes the
largest entry with offset <= T and scans batch headers forward from its position; the log
adds an entry whenever more than index.interval.bytes were appended since the last one, so a
scan covers about that many bytes.

Time index (`.timeindex`): entries of (timestamp int64, relative offset int32), 12 bytes,
appended alongside offset-index entries when the segment's max timestamp so far grew; the
offset is the last offset of the batch holding that max timestamp. All records at offsets <=
an entry's offset have timestamps <= the entry's timestamp, which is what lookups rely on.

Both indexes live in memory as `array`s (4-8 bytes per entry; bisect works on them). Entries
are appended to the files only on `persist()` (at flush, roll and close), so an index file is
never ahead of its fsynced log; on recovery an index is validated (size, monotonic, within the
log) and rebuilt from the log when it is missing or wrong. Files hold exactly the entries
(no preallocation), which is also how Kafka leaves them after a clean shutdown.
"""

from __future__ import annotations

import bisect
import struct
from array import array

from .fs import FileHandle

OFFSET_ENTRY = struct.Struct(">ii")
TIME_ENTRY = struct.Struct(">qi")


class OffsetIndex:
    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self.relative_offsets = array("i")
        self.positions = array("i")
        self.persisted = 0  # entries already in the file
        self.file_entries = -1  # entries the file is known to hold (-1: unknown)

    def __len__(self) -> int:
        return len(self.relative_offsets)

    def append(self, last_offset: int, position: int) -> None:
        relative = last_offset - self.base_offset
        if self.relative_offsets:
            assert relative > self.relative_offsets[-1], "offset index must ascend"
            assert position > self.positions[-1], "offset index positions must ascend"
        self.relative_offsets.append(relative)
        self.positions.append(position)

    def lookup(self, offset: int) -> int:
        """Byte position to start scanning for the batch holding `offset` (0 if none)."""
        index = bisect.bisect_right(self.relative_offsets, offset - self.base_offset) - 1
        return self.positions[index] if index >= 0 else 0

    def lookup_entry(self, offset: int) -> tuple[int, int]:
        """(last offset, position) of the entry `lookup` starts from, or (-1, 0)."""
        index = bisect.bisect_right(self.relative_offsets, offset - self.base_offset) - 1
        if index < 0:
            return -1, 0
        return self.base_offset + self.relative_offsets[index], self.positions[index]

    def remove_entry(self, position: int) -> None:
        """Drop the entry for byte `position` (found wrong); the file is rewritten at the
        next persist."""
        index = bisect.bisect_left(self.positions, position)
        if index < len(self.positions) and self.positions[index] == position:
            del self.relative_offsets[index]
            del self.positions[index]
            self.persisted = min(self.persisted, index)
            self.file_entries = -1

    def lookup_position(self, position: int) -> tuple[int, int]:
        """(last offset, position) of the last entry at or before byte `position`, or (-1, 0)."""
        index = bisect.bisect_right(self.positions, position) - 1
        if index < 0:
            return -1, 0
        return self.base_offset + self.relative_offsets[index], self.positions[index]

    def truncate_to_position(self, position: int) -> None:
        """Drop entries for batches at or after byte `position`."""
        keep = bisect.bisect_left(self.positions, position)
        del self.relative_offsets[keep:]
        del self.positions[keep:]
        self.persisted = min(self.persisted, keep)

    def encode(self, start: int = 0) -> bytes:
        pack = OFFSET_ENTRY.pack
        return b"".join(
            pack(self.relative_offsets[i], self.positions[i]) for i in range(start, len(self))
        )

    def load(self, data: bytes, log_size: int) -> bool:
        """Load entries from file bytes; False if they are not a valid index for the log."""
        if len(data) % OFFSET_ENTRY.size:
            return False
        previous_offset = previous_position = -1
        for relative, position in OFFSET_ENTRY.iter_unpack(data):
            if relative <= previous_offset or position <= previous_position or position >= log_size:
                return False
            previous_offset, previous_position = relative, position
            self.relative_offsets.append(relative)
            self.positions.append(position)
        self.persisted = self.file_entries = len(self)
        return True


class TimeIndex:
    def __init__(self, base_offset: int) -> None:
        self.base_offset = base_offset
        self.timestamps = array("q")
        self.relative_offsets = array("i")
        self.persisted = 0
        self.file_entries = -1

    def __len__(self) -> int:
        return len(self.timestamps)

    def last_entry(self) -> tuple[int, int] | None:
        if not self.timestamps:
            return None
        return self.timestamps[-1], self.base_offset + self.relative_offsets[-1]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if self.timestamps and timestamp <= self.timestamps[-1]:
            return
        relative = offset - self.base_offset
        if self.relative_offsets and relative <= self.relative_offsets[-1]:
            return
        self.timestamps.append(timestamp)
        self.relative_offsets.append(relative)

    def lookup_before(self, timestamp: int) -> int:
        """An offset all of whose predecessors are older than `timestamp` (base-1 if none)."""
        index = bisect.bisect_left(self.timestamps, timestamp) - 1
        if index < 0:
            return self.base_offset - 1
        return self.base_offset + self.relative_offsets[index]

    def truncate_to_offset(self, offset: int) -> None:
        """Drop entries whose offset is >= `offset`."""
        keep = bisect.bisect_left(self.relative_offsets, offset - self.base_offset)
        del self.timestamps[keep:]
        del self.relative_offsets[keep:]
        self.persisted = min(self.persisted, keep)

    def encode(self, start: int = 0) -> bytes:
        pack = TIME_ENTRY.pack
        return b"".join(
            pack(self.timestamps[i], self.relative_offsets[i]) for i in range(start, len(self))
        )

    def load(self, data: bytes) -> bool:
        if len(data) % TIME_ENTRY.size:
            return False
        previous_ts = previous_offset = -(2**63)
        for timestamp, relative in TIME_ENTRY.iter_unpack(data):
            if timestamp <= previous_ts or relative <= previous_offset:
                return False
            previous_ts, previous_offset = timestamp, relative
            self.timestamps.append(timestamp)
            self.relative_offsets.append(relative)
        self.persisted = self.file_entries = len(self)
        return True


def persist_index(handle: FileHandle, index: OffsetIndex | TimeIndex, entry_size: int) -> None:
    """Bring the index file in line with memory: truncate dropped entries, append new ones."""
    if handle.size != index.persisted * entry_size:
        handle.truncate(index.persisted * entry_size)
    if index.persisted < len(index):
        handle.append([index.encode(index.persisted)])
        index.persisted = len(index)
    index.file_entries = index.persisted
