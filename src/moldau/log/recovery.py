"""Opening a partition log from its files: repair what a crash leaves, keep what damage left.

Theory of operation
-------------------
`recover_segments` loads the segments in offset order and decides, for each, how much of its
file holds valid batches (faults.py explains the kinds of trouble):

- Indexes are loaded and sanity-checked; a missing or invalid index of a non-empty segment is
  rebuilt from the log (WARNING, counter `index_rebuilds`).
- A segment wholly below the recovery point was fsynced before the recovery point moved past
  it: its batches are trusted, as in Kafka, and only its tail after the last index entry is
  walked to find its end. If that walk does not end exactly at the end of the file, or the
  index entry does not point at the batch it names, the segment is re-indexed from byte 0
  with every CRC checked: a clean walk means only the index was wrong; otherwise the segment
  is damaged.
- The segment holding the recovery point, and any after it, are walked from the last index
  entry before the recovery point, CRC-checking every batch at or past it.
- No batch of a segment may reach the next segment's base offset: the offsets a batch header
  claims are not covered by its CRC, so a flipped bit there is caught only by this bound.

Where a walk stops before the end of its file, the bytes after it are either
- a **torn tail** — the valid batches reach the recovery point and no later segment holds
  data, which is all a crash can leave: the file is cut there and empty later segment files
  are removed (WARNING with file, offsets and bytes dropped; `recovery_truncations`); or
- **damage**: nothing is cut or removed. The segment remembers where its valid batches end
  (`LogSegment.damaged_at`), later segments load as usual, and a `StorageFault` is returned;
  the log then opens offline (partition_log.py).

After the segments: an index file without its `.log`, at an offset the log should hold, is a
vanished segment (damage); one outside the log is the leftover of a deletion cut short by a
crash and is removed. A log that ends below its recovery point lost durable data (damage).
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from moldau.records.batch import (
    BATCH_LENGTH_MIN,
    CURRENT_MAGIC,
    HEADER_SIZE,
    LOG_OVERHEAD,
    parse_header,
)

from .config import LogConfig
from .faults import COUNTERS, StorageFault, partition_name
from .fs import FileSystem
from .segment import SEGMENT_SUFFIXES, LogSegment, check_batches, segment_file_name

log = logging.getLogger("moldau.log")

# A segment's files besides its .log (offset, time and aborted-transaction indexes).
_INDEX_SUFFIXES = tuple(suffix for suffix in SEGMENT_SUFFIXES if suffix != ".log")


@dataclass
class Recovered:
    segments: list[LogSegment] = field(default_factory=list)
    faults: list[StorageFault] = field(default_factory=list)


def segment_bases(names: list[str], suffix: str = ".log") -> list[int]:
    """Base offsets of the files named `<20 digits><suffix>`, ascending."""
    bases = []
    for name in names:
        stem, dot, rest = name.partition(".")
        if dot and "." + rest == suffix and len(stem) == 20 and stem.isdigit():
            bases.append(int(stem))
    return sorted(bases)


def recover_segments(fs: FileSystem, directory: str, config: LogConfig, recovery_point: int,
                     now_ms: int) -> Recovered:
    """Load every segment of `directory` (see the module docstring)."""
    names = fs.listdir(directory)
    bases = segment_bases(names)
    result = Recovered()
    torn: tuple[LogSegment, int, str, list[int]] | None = None
    for number, base in enumerate(bases):
        path = posixpath.join(directory, segment_file_name(base, ".log"))
        segment = LogSegment(fs, directory, base, fs.open(path), config.index_interval_bytes, now_ms)
        next_base = bases[number + 1] if number + 1 < len(bases) else None
        valid_end = _recover_segment(segment, next_base, recovery_point)
        result.segments.append(segment)
        if valid_end == segment.size:
            continue
        reason = describe_invalid(segment, valid_end, next_base)
        later = bases[number + 1 :]
        if segment.next_offset >= recovery_point and not _hold_data(fs, directory, later):
            torn = (segment, valid_end, reason, later)
            break
        segment.damaged_at = valid_end
        result.faults.append(StorageFault(
            "damaged_segment", path, valid_end, segment.next_offset,
            next_base if next_base is not None else -1,
            f"{reason}, below the recovery point {recovery_point}" if segment.next_offset < recovery_point
            else f"{reason}, with later segments holding data"))
    result.faults += _vanished_segments(fs, directory, names, result.segments, recovery_point)
    if torn is not None:
        segment, valid_end, reason, later = torn
        if result.faults:  # the log opens offline: cut nothing, serve nothing past valid_end
            segment.damaged_at = valid_end
        else:
            _cut_torn_tail(segment, valid_end, recovery_point, reason)
            _remove_empty_segments(fs, directory, later)
    if result.segments and not result.faults and result.segments[-1].next_offset < recovery_point:
        last = result.segments[-1]
        result.faults.append(StorageFault(
            "missing_tail", last.path(".log"), last.size, last.next_offset, recovery_point,
            f"the log ends at offset {last.next_offset} but offsets up to the recovery point "
            f"{recovery_point} were flushed: the end of the file is missing"))
    return result


def _recover_segment(segment: LogSegment, next_base: int | None, recovery_point: int) -> int:
    """Load indexes and in-memory state; return where the valid batches end (see above)."""
    indexes_ok, why = _load_indexes(segment)
    if segment.size and not indexes_ok:
        _report_index_rebuild(segment, why)
    if indexes_ok and next_base is not None and next_base <= recovery_point:
        if _restore_trusted_state(segment, next_base):  # wholly flushed before the recovery point
            return segment.size
        # The tail does not fit its index: re-index with every CRC checked; a clean walk
        # means the index alone was wrong.
        _reset_indexes(segment)
        segment.max_timestamp = segment.max_timestamp_offset = -1
        valid_end = segment.recover_from(0, segment.base_offset, next_base)
        if valid_end == segment.size:
            _report_index_rebuild(segment, "its entries do not match the log")
        return valid_end
    start = 0
    if indexes_ok and segment.base_offset < recovery_point:
        last = segment.time_index.last_entry()  # persisted at flush: covers offsets < it
        if last is not None:
            segment.max_timestamp, segment.max_timestamp_offset = last
        # Restart at the index entry *before* the one covering the recovery point: that batch
        # is fsynced and complete, so re-indexing it restores next_offset exactly.
        _, start = segment.offset_index.lookup_position(
            segment.offset_index.lookup(recovery_point) - 1)
        first = segment.scan_first(0)
        if first is not None:
            segment.rolling_timestamp = first.max_timestamp
    elif indexes_ok:
        _reset_indexes(segment)
    return segment.recover_from(start, recovery_point, next_base)


def _load_indexes(segment: LogSegment) -> tuple[bool, str]:
    fs = segment.fs
    try:
        offset_data = fs.read_file(segment.path(".index"))
        time_data = fs.read_file(segment.path(".timeindex"))
    except FileNotFoundError:
        return False, "the index file is missing"
    if not (segment.offset_index.load(offset_data, segment.size)
            and segment.time_index.load(time_data)):
        _reset_indexes(segment)
        return False, "the index file is invalid"
    if not _entries_name_their_batches(segment):
        _reset_indexes(segment)
        return False, "its entries do not match the log"
    return True, ""


def _entries_name_their_batches(segment: LogSegment) -> bool:
    """Spot check (first and last entry; the others are checked when a read uses them):
    an entry's position holds a batch whose last offset is the entry's offset."""
    index = segment.offset_index
    for entry in {0, len(index) - 1} if len(index) else ():
        offset, position = segment.base_offset + index.relative_offsets[entry], index.positions[entry]
        data = segment.log.pread(HEADER_SIZE, position)
        if len(data) < HEADER_SIZE:
            return False
        header = parse_header(data, 0)
        if header.magic != CURRENT_MAGIC or header.base_offset + header.last_offset_delta != offset:
            return False
    return True


def _reset_indexes(segment: LogSegment) -> None:
    segment.offset_index.truncate_to_position(0)
    segment.time_index.truncate_to_offset(segment.base_offset)


def _restore_trusted_state(segment: LogSegment, next_base: int) -> bool:
    """A fully flushed segment: max timestamp from its time index, end from its tail. False
    if the tail does not end exactly at the file's end, or the last index entry does not name
    the batch it points at (the file or the index was damaged)."""
    last = segment.time_index.last_entry()
    if last is not None:
        segment.max_timestamp, segment.max_timestamp_offset = last
    indexed_offset, position = segment.offset_index.lookup_position(segment.size)
    end = position
    for header in segment.scan_headers(position):
        last_offset = header.base_offset + header.last_offset_delta
        if header.position == position and indexed_offset >= 0 and last_offset != indexed_offset:
            return False
        if header.magic != CURRENT_MAGIC or header.base_offset < segment.next_offset \
                or last_offset >= next_base:
            return False
        segment.next_offset = last_offset + 1
        end = header.position + header.batch_length + LOG_OVERHEAD
        if last is None and header.max_timestamp > segment.max_timestamp:
            segment.max_timestamp = header.max_timestamp
            segment.max_timestamp_offset = last_offset
    segment.bytes_since_index_entry = segment.index_interval_bytes + 1
    return end == segment.size and (segment.size == 0 or segment.next_offset > segment.base_offset)


def describe_invalid(segment: LogSegment, position: int, next_base: int | None) -> str:
    """Why the bytes at `position` are not a valid batch, for the operator."""
    left = segment.size - position
    data = segment.log.pread(min(left, HEADER_SIZE), position)
    if not data.strip(b"\x00"):
        return f"{left} zero bytes where a batch should start"
    if left < HEADER_SIZE:
        return f"{left} bytes, fewer than a batch header"
    header = parse_header(data, 0)
    if header.batch_length < BATCH_LENGTH_MIN or header.batch_length + LOG_OVERHEAD > left:
        return f"batch length {header.batch_length} does not fit the {left} bytes left in the file"
    if header.magic != CURRENT_MAGIC:
        return f"magic byte {header.magic} where 2 is expected"
    last_offset = header.base_offset + header.last_offset_delta
    if header.base_offset < segment.next_offset or header.last_offset_delta < 0:
        return f"batch offsets {header.base_offset}..{last_offset} go backwards"
    if next_base is not None and last_offset >= next_base:
        return f"batch offsets {header.base_offset}..{last_offset} reach into the next segment"
    batch = segment.log.pread(header.batch_length + LOG_OVERHEAD, position)
    _, reason = check_batches(batch, header.base_offset)
    return reason or "an invalid batch"


def _hold_data(fs: FileSystem, directory: str, bases: list[int]) -> bool:
    for base in bases:
        handle = fs.open(posixpath.join(directory, segment_file_name(base, ".log")))
        try:
            if handle.size:
                return True
        finally:
            handle.close()
    return False


def _cut_torn_tail(segment: LogSegment, valid_end: int, recovery_point: int, reason: str) -> None:
    dropped = segment.size - valid_end
    segment.truncate_file(valid_end)
    COUNTERS.add("recovery_truncations")
    COUNTERS.add("recovery_truncated_bytes", dropped)
    log.warning("%s: truncated a torn tail of %s at byte %d: %d bytes dropped after offset %d "
                "(%s); the log now ends at offset %d, recovery point %d",
                partition_name(segment.directory), posixpath.basename(segment.path(".log")),
                valid_end, dropped, segment.next_offset - 1, reason, segment.next_offset,
                recovery_point)


def _remove_empty_segments(fs: FileSystem, directory: str, bases: list[int]) -> None:
    for base in bases:
        for suffix in SEGMENT_SUFFIXES:
            fs.remove(posixpath.join(directory, segment_file_name(base, suffix)))
        COUNTERS.add("recovery_segments_deleted")
        log.warning("%s: removed the empty segment %s after the torn tail",
                    partition_name(directory), segment_file_name(base, ".log"))


def _report_index_rebuild(segment: LogSegment, why: str) -> None:
    COUNTERS.add("index_rebuilds")
    log.warning("%s: rebuilt the offset and time indexes of %s (%d bytes): %s",
                partition_name(segment.directory), posixpath.basename(segment.path(".log")),
                segment.size, why)


def _vanished_segments(fs: FileSystem, directory: str, names: list[str],
                       segments: list[LogSegment], recovery_point: int) -> list[StorageFault]:
    """Index files without their `.log`: a vanished segment if the log should hold its
    offsets, else the leftover of a deletion (retention, truncation) cut short by a crash."""
    logs = set(segment_bases(names))
    orphans = sorted({b for suffix in _INDEX_SUFFIXES for b in segment_bases(names, suffix)} - logs)
    faults = []
    for base in orphans:
        inside = bool(segments) and segments[0].base_offset <= base < max(
            segments[-1].next_offset, recovery_point)
        path = posixpath.join(directory, segment_file_name(base, ".log"))
        if inside:
            following = [s.base_offset for s in segments if s.base_offset > base]
            faults.append(StorageFault(
                "vanished_segment", path, -1, base, following[0] if following else -1,
                "the segment file is missing but its index files are there"))
            continue
        for suffix in _INDEX_SUFFIXES:
            fs.remove(posixpath.join(directory, segment_file_name(base, suffix)))
        log.warning("%s: removed the index files of %s, a segment whose deletion a crash cut short",
                    partition_name(directory), segment_file_name(base, ".log"))
    return faults
