"""Log compaction (cleanup.policy=compact): keep the latest record per key, in small steps.

Theory of operation
-------------------
Kafka's LogCleaner, run in bounded steps on the caller's thread. A compacted log has a *clean*
section, from its first segment up to the cleaner checkpoint (`cleaner-offset-checkpoint`), in
which every key occurs at most once, then a *dirty* section up to the first uncleanable
offset: the active segment's base offset, or the first segment whose max timestamp is newer
than now - min.compaction.lag.ms, if that comes earlier.

`clean_log(log, now_ms)` is called by PartitionLog.enforce_retention on every broker tick. One
call reads about `limits.cleaner_bytes_per_call_max` source bytes (at least one batch) and
returns; a *pass* spans as many calls as it needs, its state kept in `log.cleaner_pass`. A pass
starts only when cleaning is due, as in Kafka:

- dirty bytes / (clean + dirty bytes) >= min.cleanable.dirty.ratio, counted in whole segments
  (the segment holding the checkpoint counts as dirty); or
- the first dirty segment's first batch is older than max.compaction.lag.ms; or
- a tombstone kept by the last pass is due (`log.cleaner_tombstone_expiry_ms`; held in memory,
  as Kafka holds its delete horizon: after a restart the next pass learns it again).

A pass:

1. Offset map over the dirty section only: key -> last offset of the key. It is bounded
   (`limits.cleaner_offset_map_keys_max`, `..._key_bytes_max`); when it fills, the pass covers
   the dirty section only up to the batch where it filled (`end_offset`), the rest stays dirty.
2. The segments below end_offset, from the first, are grouped so that each group's total size
   fits segment.bytes, its index sizes segment.index.bytes and its offsets the index's int32
   (Kafka's groupSegmentsBySize). A group's output is no bigger than its input: a rewritten
   batch copies a subset of its records' bytes (then compresses them with the batch's codec).
3. Groups are cleaned oldest first, each into `<base>.log.cleaned`. A record below end_offset
   goes when the map holds a later offset for its key; records without a key stay. A tombstone
   (null value) that survives goes once its batch's max timestamp is older than
   now - delete.retention.ms (Kafka sets a per-batch delete horizon at the first cleaning; the
   batch timestamp gives consumers at least as long to see it). Every batch at or after
   end_offset is copied whole. A batch that keeps every
   record is copied byte for byte; a rewritten one keeps its base offset, last_offset_delta,
   base timestamp, producer id/epoch, base sequence, leader epoch, compression and flags, so
   offsets never move and producer metadata survives. A batch that keeps nothing is dropped,
   unless it is the last batch of a producer the log's producer state still knows: that one
   stays as an empty batch (a bare uncompressed header, as in Kafka), because after a crash or a
   truncation the producer state is rebuilt from the batch headers (a clean restart reads
   the producer-state snapshot of producer_state.py instead), and without it the producer's
   next sequence would be refused as out of order. An empty batch goes once its producer has
   written again or expired.
4. A finished group is swapped in crash-safely: fsync `<base>.log.cleaned`; rename it to
   `<base>.<end>.swap` (the commit point; `end` is the base offset of the segment after the
   group); delete the group's segments; rename the swap to `<base>.log`; write its indexes
   (built while writing). `finish_interrupted_cleaning` (called by PartitionLog.open) deletes a
   leftover `.cleaned` and completes a `.swap`. A one-segment group in which nothing changed is
   left in place.
5. After the last group the checkpoint moves to end_offset.

Transactions (Kafka's rules). A pass never reaches the first unstable offset: a segment with an
undecided transaction (or a decided one whose marker is not replicated) is not cleanable. The
aborted transactions of the pass's range come from the .txnindex files; walking in offset
order (`TxnTracker`), a transactional batch of a producer inside one of them is aborted data:
it never enters the offset map (an aborted record must not hide a committed one) and its
records go whatever their keys. A marker stays while records of its transaction were seen in
this pass (an ABORT marker is then indexed again in its output segment's .txnindex); once its
transaction holds no records it goes after delete.retention.ms, like a tombstone — unless it
is its producer's latest entry, which keeps the epoch that fences the producer's zombies.

Offsets removed by compaction leave gaps; reads skip them (a fetch at a missing offset gets
the next batch), as in Kafka. An emptied group leaves an empty segment holding its base offset;
later passes merge it into its neighbours.

Why this is cheap: the offset map holds the dirty section's keys only; a pass rereads the
clean section (Kafka's does too) but only once the dirty section is at least
min.cleanable.dirty.ratio of the total, so the work stays proportional to the bytes written;
no output segment outgrows segment.bytes; no call blocks for long. Records are scanned for
offset, key and null value only; values and headers are never decoded.

Invariants:
- Between two calls the log may change under a pass: retention or DeleteRecords delete
  segments, a follower truncates, the topic is deleted or closed. Each call first checks that
  the segments the pass has yet to swap are still in the log, consecutive, not active and of
  the sizes it planned with; if not, it drops its work and a later call starts a new pass.
  Truncation, close, deletion and a policy without compact also abort the pass directly
  (`abort_cleaning`), and truncation lowers the checkpoint to the new log end offset.
- Groups are swapped oldest first, each swap is atomic, and records at or after end_offset are
  never touched, so after any call (or a crash at any point) every key's latest record is where
  it was, and a tombstone disappears only after the older records of its key below it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.records.batch import (
    COMPRESSION_MASK,
    CURRENT_MAGIC,
    HEADER_SIZE,
    HEADER_STRUCT,
    LOG_OVERHEAD,
    OFFSET_CRC,
    BatchHeader,
    batch_crc,
    parse_header,
)
from moldau.records.codec import compress, decompress
from moldau.records.control import read_end_txn_marker
from moldau.records.record import iterate_batches, read_varint

from .checkpoints import CLEANER_OFFSET_FILE, write_offset_checkpoint
from .fs import Chunk, FileSystem
from .index import OFFSET_ENTRY, TIME_ENTRY
from .partition_log import LogError, PartitionLog
from .producer_state import ProducerEntry
from .txn_index import AbortedTxn, TransactionIndex
from .segment import SEGMENT_SUFFIXES, LogSegment, check_batches, segment_file_name

# Largest relative offset an index entry can hold (int32): bounds a group's offset span.
_RELATIVE_OFFSET_MAX = 2**31 - 1
# What a step of a pass says to the loop of clean_log.
_MORE = "more"  # progress made, more to do
_DONE = "done"  # the phase is complete
_OUT_OF_BUDGET = "out of budget"  # the next batch does not fit this call's byte budget


@dataclass(slots=True)
class CleanResult:
    """What one `clean_log` call did; a group counts once it is swapped in (or left as is)."""

    segments_cleaned: int = 0
    records_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_read: int = 0  # source bytes read by this call (offset map and cleaning)
    pass_finished: bool = False  # this call moved the checkpoint


@dataclass(slots=True)
class _Output:
    """The group being cleaned: a segment written to `<base>.log.cleaned`."""

    segment: LogSegment
    records_removed: int = 0
    changed: bool = False  # some batch was dropped or rewritten
    aborted: list[AbortedTxn] = field(default_factory=list)  # its .txnindex entries


@dataclass(slots=True)
class CleanerPass:
    """A pass under way (`PartitionLog.cleaner_pass`): offset map, groups, cursor, output."""

    horizon_ms: int  # tombstones in batches older than this go
    first_dirty: int
    first_uncleanable: int
    sources: list[tuple[LogSegment, int]]  # segments of the pass not swapped yet, with sizes
    dirty: list[LogSegment]
    offset_map: dict[bytes, int] = field(default_factory=dict)
    key_bytes: int = 0
    end_offset: int = -1  # -1 while the offset map is being built
    cursor: tuple[int, int] = (0, 0)  # (segment number, byte position) of the current phase
    groups: list[list[LogSegment]] = field(default_factory=list)
    group_number: int = 0
    output: _Output | None = None
    tombstone_expiry_ms: int = -1  # earliest due time of a kept tombstone (-1: none)
    map_txns: TxnTracker = field(default_factory=lambda: TxnTracker())  # the map phase's view
    clean_txns: TxnTracker = field(default_factory=lambda: TxnTracker())  # the cleaning's view


def clean_log(log: PartitionLog, now_ms: int, *, max_bytes: int | None = None,
              map_keys_max: int | None = None,
              map_key_bytes_max: int | None = None) -> CleanResult:
    """Advance the compaction of `log` by about `max_bytes` (default
    limits.cleaner_bytes_per_call_max); no-op unless its policy includes compact and cleaning
    is due or a pass is under way."""
    result = CleanResult()
    if log.closed or not log.config.compact:
        abort_cleaning(log)
        return result
    budget = limits.cleaner_bytes_per_call_max if max_bytes is None else max_bytes
    state = log.cleaner_pass
    if state is not None and not _still_valid(log, state):
        abort_cleaning(log)
        state = None
    if state is None:
        state = _start_pass(log, now_ms)
        if state is None:
            return result
        log.cleaner_pass = state
    keys_max = limits.cleaner_offset_map_keys_max if map_keys_max is None else map_keys_max
    key_bytes_max = (limits.cleaner_offset_map_key_bytes_max if map_key_bytes_max is None
                     else map_key_bytes_max)
    while True:
        remaining, first = budget - result.bytes_read, result.bytes_read == 0
        if state.end_offset < 0:
            read, status = _map_step(state, remaining, first, keys_max, key_bytes_max)
            if status == _DONE:
                _plan_groups(log, state)
                status = _MORE
        else:
            read, status = _clean_step(log, state, remaining, first, now_ms, result)
            if status == _DONE:
                _finish_pass(log, state, result)
                return result
        result.bytes_read += read
        if status == _OUT_OF_BUDGET or result.bytes_read >= budget:
            return result


def abort_cleaning(log: PartitionLog) -> None:
    """Drop the pass under way, if any (its swapped groups stay: each is a valid cleaning)."""
    state = log.cleaner_pass
    log.cleaner_pass = None
    if state is not None and state.output is not None:
        _discard_output(log, state.output.segment)
        state.output = None


# --- starting a pass ------------------------------------------------------------------------
def _start_pass(log: PartitionLog, now_ms: int) -> CleanerPass | None:
    segments = log.segments
    cleanable = _cleanable_segments(segments, now_ms - log.config.min_compaction_lag_ms,
                                    log.first_unstable_offset())
    if not cleanable:
        return None
    first_uncleanable = segments[len(cleanable)].base_offset
    first_dirty = min(max(log.cleaner_checkpoint, cleanable[0].base_offset), first_uncleanable)
    clean_bytes = 0
    dirty: list[LogSegment] = []
    for number, segment in enumerate(cleanable):
        if segments[number + 1].base_offset <= first_dirty:
            clean_bytes += segment.size
        else:
            dirty.append(segment)
    if not _cleaning_due(log, clean_bytes, dirty, now_ms):
        return None
    state = CleanerPass(now_ms - log.config.delete_retention_ms, first_dirty, first_uncleanable,
                  [(s, s.size) for s in cleanable], dirty)
    state.map_txns.add(log.collect_aborted_transactions(first_dirty, first_uncleanable))
    state.clean_txns.add(log.collect_aborted_transactions(cleanable[0].base_offset, first_uncleanable))
    if dirty and first_dirty > dirty[0].base_offset:
        position = dirty[0].position_of(first_dirty)
        state.cursor = (0, dirty[0].size if position is None else position)
    return state


def _cleanable_segments(segments: list[LogSegment], horizon_ms: int,
                        first_unstable_offset: int | None) -> list[LogSegment]:
    """Non-active segments from the first up to one newer than the min.compaction.lag.ms
    horizon or reaching the first unstable offset (an undecided transaction is never cleaned:
    whether its records stay depends on the marker still to come)."""
    cleanable = []
    for number, segment in enumerate(segments[:-1]):
        if segment.max_timestamp > horizon_ms:
            break
        if first_unstable_offset is not None and segments[number + 1].base_offset > first_unstable_offset:
            break
        cleanable.append(segment)
    return cleanable


def _cleaning_due(log: PartitionLog, clean_bytes: int, dirty: list[LogSegment],
                  now_ms: int) -> bool:
    expiry_ms = log.cleaner_tombstone_expiry_ms
    if 0 <= expiry_ms <= now_ms:
        return True
    dirty_bytes = sum(segment.size for segment in dirty)
    if dirty_bytes == 0:
        return False
    config = log.config
    if dirty_bytes >= config.min_cleanable_dirty_ratio * (clean_bytes + dirty_bytes):
        return True
    first_timestamp = dirty[0].rolling_timestamp
    return 0 <= first_timestamp and now_ms - first_timestamp > config.max_compaction_lag_ms


def _still_valid(log: PartitionLog, state: CleanerPass) -> bool:
    """The segments the pass has yet to swap are still in the log, in order, inactive and
    unchanged (retention, DeleteRecords or truncation may have run since the last call)."""
    if not state.sources:
        return True
    segments = log.segments
    try:
        first = segments.index(state.sources[0][0])
    except ValueError:
        return False
    for number, (segment, size) in enumerate(state.sources):
        place = first + number
        if place >= len(segments) - 1 or segments[place] is not segment or segment.size != size:
            return False
    return True


# --- phase 1: the offset map over the dirty section -----------------------------------------
def _map_step(state: CleanerPass, budget: int, must_progress: bool, keys_max: int,
              key_bytes_max: int) -> tuple[int, str]:
    """Read some dirty batches into the map: (bytes read, status)."""
    number, position = state.cursor
    if number >= len(state.dirty):
        state.end_offset = state.first_uncleanable
        return 0, _DONE
    segment = state.dirty[number]
    batches, end = _read_batches(segment, position, budget, must_progress)
    if not batches:
        if end < segment.size:
            return 0, _OUT_OF_BUDGET
        state.cursor = (number + 1, 0)
        return 0, _MORE
    read = 0
    for header, data in batches:
        if not _map_batch(state, header, data, keys_max):
            state.end_offset = header.base_offset  # full: this batch waits for the next pass
            return read, _DONE
        read += len(data)
        if state.key_bytes >= key_bytes_max:
            state.end_offset = header.next_offset
            return read, _DONE
    state.cursor = (number, end)
    return read, _MORE


def _map_batch(state: CleanerPass, header: BatchHeader, data: bytes, keys_max: int) -> bool:
    """Add a batch's keys to the map; False (nothing added) if they might not fit."""
    if header.next_offset <= state.first_dirty:
        return True
    if header.is_control:
        state.map_txns.on_control(header, data)
        return True
    if state.map_txns.on_data(header):
        return True  # aborted: its records must not supersede committed ones
    offset_map = state.offset_map
    if offset_map and len(offset_map) + header.records_count > keys_max:
        return False
    for offset, key, _, _, _ in _scan_records(header, data)[1]:
        if key is not None:
            if key not in offset_map:
                state.key_bytes += len(key)
            offset_map[key] = offset
    return True


def _plan_groups(log: PartitionLog, state: CleanerPass) -> None:
    """Group the segments below end_offset by size (Kafka's groupSegmentsBySize)."""
    config = log.config
    planned = [s for s, _ in state.sources if s.base_offset < state.end_offset]
    groups: list[list[LogSegment]] = []
    log_bytes = offset_index_bytes = time_index_bytes = 0
    for segment in planned:
        log_bytes += segment.size
        offset_index_bytes += len(segment.offset_index) * OFFSET_ENTRY.size
        time_index_bytes += len(segment.time_index) * TIME_ENTRY.size
        if (groups and log_bytes <= config.segment_bytes
                and max(offset_index_bytes, time_index_bytes) <= config.segment_index_bytes
                and segment.next_offset - 1 - groups[-1][0].base_offset <= _RELATIVE_OFFSET_MAX):
            groups[-1].append(segment)
            continue
        groups.append([segment])
        log_bytes = segment.size
        offset_index_bytes = len(segment.offset_index) * OFFSET_ENTRY.size
        time_index_bytes = len(segment.time_index) * TIME_ENTRY.size
    state.groups = groups
    state.sources = [(s, s.size) for s in planned]
    state.cursor = (0, 0)


# --- phase 2: cleaning group by group -------------------------------------------------------
def _clean_step(log: PartitionLog, state: CleanerPass, budget: int, must_progress: bool,
                now_ms: int, result: CleanResult) -> tuple[int, str]:
    """Clean some batches of the current group, swapping it in once complete:
    (bytes read, status)."""
    if state.group_number >= len(state.groups):
        return 0, _DONE
    group = state.groups[state.group_number]
    if state.output is None:
        state.output = _Output(_open_output(log, group[0].base_offset, now_ms))
    number, position = state.cursor
    if number >= len(group):
        _finish_group(log, state, group, result)
        return 0, _MORE
    source = group[number]
    batches, end = _read_batches(source, position, budget, must_progress)
    if not batches:
        if end < source.size:
            return 0, _OUT_OF_BUDGET
        state.cursor = (number + 1, 0)
        return 0, _MORE
    chunks: list[Chunk] = []
    indexed: list[tuple[int, int, int, int]] = []
    producers = log.producer_state.producers
    retention_ms = log.config.delete_retention_ms
    for header, data in batches:
        if header.base_offset >= state.end_offset:
            kept = data
            _carry_index_entry(state.output, source, header)
        elif header.is_control:
            kept = _clean_control(state, header, data, retention_ms, producers)
        elif header.is_transactional and state.clean_txns.on_data(header):
            kept = _drop_aborted(state, header, _last_of_its_producer(producers, header))
        else:
            kept = _clean_batch(state, header, data, retention_ms, _last_of_its_producer(producers, header))
        if kept is not data:
            state.output.changed = True
        if kept is None:
            continue
        if kept is not data:
            header = parse_header(kept, 0)
        chunks.append(kept)
        indexed.append((header.base_offset, header.next_offset - 1, header.max_timestamp,
                        len(kept)))
    if chunks:
        state.output.segment.append(chunks, indexed)
    state.cursor = (number, end)
    return end - position, _MORE


def _last_of_its_producer(producers: dict[int, ProducerEntry], header: BatchHeader) -> bool:
    entry = producers.get(header.producer_id) if header.producer_id >= 0 else None
    return entry is not None and bool(entry.batches) and (
        entry.batches[-1][3] == header.next_offset - 1)


def _last_marker_of_its_producer(producers: dict[int, ProducerEntry], header: BatchHeader) -> bool:
    """The producer's latest entry is this marker (no data since, same epoch): it keeps the
    epoch that fences the producer's zombies, as Kafka keeps it."""
    entry = producers.get(header.producer_id)
    return entry is not None and not entry.batches and entry.producer_epoch == header.producer_epoch


def _clean_control(state: CleanerPass, header: BatchHeader, data: bytes, delete_retention_ms: int,
                   producers: dict[int, ProducerEntry]) -> bytes | None:
    """A transaction marker stays while records of its transaction remain in the log (an ABORT
    marker is then indexed again in the output); once none do, it goes after
    delete.retention.ms, like a tombstone, unless it is its producer's last word."""
    discardable, entry = state.clean_txns.on_control(header, data)
    output = state.output
    assert output is not None, "cleaning writes into the group's output"
    if entry is not None:
        output.aborted.append(entry)
    if not discardable or _last_marker_of_its_producer(producers, header):
        return data
    if header.max_timestamp < state.horizon_ms:
        return None
    due_ms = header.max_timestamp + delete_retention_ms + 1
    if state.tombstone_expiry_ms < 0 or due_ms < state.tombstone_expiry_ms:
        state.tombstone_expiry_ms = due_ms
    return data


def _drop_aborted(state: CleanerPass, header: BatchHeader, last_of_its_producer: bool) -> bytes | None:
    """Records of an aborted transaction go at once, whatever their keys (Kafka's rule); the
    batch header stays, empty, if it holds its producer's last sequence."""
    assert state.output is not None, "cleaning writes into the group's output"
    state.output.records_removed += header.records_count
    if not last_of_its_producer:
        return None
    return _rebuilt_batch(header, b"", [])


def _carry_index_entry(output: _Output | None, source: LogSegment, header: BatchHeader) -> None:
    """A batch past the pass's end is copied whole; an ABORT marker keeps its index entry."""
    if output is None or not header.is_control or source.txn_index is None:
        return
    for txn in source.txn_index.all():
        if txn.last_offset == header.base_offset:
            output.aborted.append(txn)


class TxnTracker:
    """What the cleaner knows of transactions as it walks the log in offset order (Kafka's
    CleanedTransactionMetadata): the aborted transactions of the range (from the .txnindex
    files) become *current* once the walk reaches their first offset; a transactional batch of
    a producer with a current aborted transaction is aborted data; a marker ends the producer's
    current transaction and says whether it may go (no record of its transaction was seen)."""

    def __init__(self) -> None:
        self.pending: list[AbortedTxn] = []  # by first offset, descending (pop from the end)
        self.aborted: dict[int, list] = {}  # producer id -> [AbortedTxn, last offset seen or -1]
        self.committed: set[int] = set()  # producers with records of a transaction seen

    def add(self, txns: list[AbortedTxn]) -> None:
        self.pending = sorted(self.pending + txns, key=lambda t: t.first_offset, reverse=True)

    def _reach(self, offset: int) -> None:
        while self.pending and self.pending[-1].first_offset <= offset:
            txn = self.pending.pop()
            self.aborted.setdefault(txn.producer_id, [txn, -1])

    def on_data(self, header: BatchHeader) -> bool:
        """True if the batch belongs to an aborted transaction."""
        self._reach(header.last_offset)
        if not header.is_transactional:
            return False
        current = self.aborted.get(header.producer_id)
        if current is not None:
            current[1] = header.last_offset
            return True
        self.committed.add(header.producer_id)
        return False

    def on_control(self, header: BatchHeader, data: bytes) -> tuple[bool, AbortedTxn | None]:
        """(may the marker go, the index entry to keep for it)."""
        self._reach(header.last_offset)
        marker = read_end_txn_marker(data) if header.records_count else None
        if marker is None:
            return True, None  # emptied earlier
        if marker.commit:
            seen = header.producer_id in self.committed
            self.committed.discard(header.producer_id)
            return not seen, None
        current = self.aborted.pop(header.producer_id, None)
        if current is not None and current[1] >= 0:
            return False, current[0]
        return True, None


def _clean_batch(state: CleanerPass, header: BatchHeader, data: bytes,
                 delete_retention_ms: int, last_of_its_producer: bool) -> bytes | None:
    """The batch to keep (`data` itself when unchanged) or None; counts removed records and
    tracks the earliest time a kept tombstone may go. The last batch of an active producer
    stays, empty if need be, so its sequence survives a rebuild of the producer state."""
    if header.is_control or header.base_offset >= state.end_offset:
        return data
    if header.records_count == 0:  # kept empty by an earlier pass
        return data if last_of_its_producer else None
    offset_map = state.offset_map
    body, scanned = _scan_records(header, data)
    kept: list[tuple[int, int, int]] = []  # (timestamp delta, start, end) in the body
    for offset, key, timestamp_delta, start, end in scanned:
        if key is not None and offset_map.get(key, -1) > offset:
            continue  # superseded by a later record of its key
        if start < 0:  # a tombstone
            if header.max_timestamp < state.horizon_ms:
                continue
            due_ms = header.max_timestamp + delete_retention_ms + 1
            if state.tombstone_expiry_ms < 0 or due_ms < state.tombstone_expiry_ms:
                state.tombstone_expiry_ms = due_ms
        kept.append((timestamp_delta, abs(start), end))
    removed = len(scanned) - len(kept)
    assert state.output is not None, "cleaning writes into the group's output"
    state.output.records_removed += removed
    if removed == 0:
        return data
    if not kept and not last_of_its_producer:
        return None
    return _rebuilt_batch(header, body, kept)


def _scan_records(header: BatchHeader,
                  data: bytes) -> tuple[bytes, list[tuple[int, bytes | None, int, int, int]]]:
    """The uncompressed records of a data batch and, per record, (offset, key, timestamp
    delta, start, end): its byte span, with start negated (-start - 1) for a tombstone.
    Values and headers are skipped: this is the cleaner's hot loop."""
    body = decompress(header.compression, data[HEADER_SIZE:])
    base_offset = header.base_offset
    scanned = []
    position = 0
    for _ in range(header.records_count):
        start = position
        length, position = read_varint(body, position)
        end = position + length
        timestamp_delta, cursor = read_varint(body, position + 1)  # after the attributes
        offset_delta, cursor = read_varint(body, cursor)
        key_length, cursor = read_varint(body, cursor)
        key = None
        if key_length >= 0:
            key = body[cursor : cursor + key_length]
            cursor += key_length
        value_length, _ = read_varint(body, cursor)
        if value_length < 0:
            start = -start - 1
        scanned.append((base_offset + offset_delta, key, timestamp_delta, start, end))
        position = end
    return body, scanned


def _rebuilt_batch(header: BatchHeader, body: bytes, kept: list[tuple[int, int, int]]) -> bytes:
    """The batch with only the `kept` records. Base offset and base timestamp stay, so each
    record's bytes (deltas from them) stay too: they are copied, not re-encoded; the header
    keeps every field but length, max timestamp (CreateTime), records count and CRC. With
    nothing kept it is a bare header, uncompressed (as Kafka writes an empty batch)."""
    attributes = header.attributes
    max_timestamp = header.max_timestamp
    if kept:
        payload = compress(header.compression,
                           b"".join(body[start:end] for _, start, end in kept))
        if not header.timestamp_type:  # CreateTime: the newest record kept
            max_timestamp = header.base_timestamp + max(delta for delta, _, _ in kept)
    else:
        payload = b""
        attributes &= ~COMPRESSION_MASK
    batch = bytearray(HEADER_STRUCT.pack(
        header.base_offset, HEADER_SIZE - LOG_OVERHEAD + len(payload),
        header.partition_leader_epoch, CURRENT_MAGIC, 0, attributes,
        header.last_offset_delta, header.base_timestamp, max_timestamp, header.producer_id,
        header.producer_epoch, header.base_sequence, len(kept)))
    batch += payload
    batch[OFFSET_CRC : OFFSET_CRC + 4] = batch_crc(batch, 0, len(batch)).to_bytes(4, "big")
    return bytes(batch)


def _read_batches(segment: LogSegment, position: int, budget: int,
                  must_progress: bool) -> tuple[list[tuple[BatchHeader, bytes]], int]:
    """Whole batches from byte `position` within `budget` bytes (one bigger batch alone if
    `must_progress`) and the position after them; no batches and the segment's size at its
    end, no batches and `position` when the next batch does not fit the budget."""
    size = segment.size
    if size - position < HEADER_SIZE:
        return [], size
    want = min(budget, size - position)
    if want < HEADER_SIZE and not must_progress:
        return [], position
    data = segment.log.pread(max(want, HEADER_SIZE), position)
    batches = list(iterate_batches(data))
    if not batches:
        if not must_progress:
            return [], position
        batch_bytes = parse_header(data, 0).size_bytes
        batches = list(iterate_batches(segment.log.pread(batch_bytes, position)))
        if not batches:
            raise LogError(ErrorCode.corrupt_message,
                           f"{segment_file_name(segment.base_offset, '.log')}: no valid batch at byte {position}")
    for header, batch in batches:  # never compact a damaged batch into a new segment
        _, reason = check_batches(batch, header.base_offset)
        if reason is not None:
            raise LogError(ErrorCode.corrupt_message,
                           f"{segment_file_name(segment.base_offset, '.log')} at byte {header.position + position}: {reason}")
    return batches, position + sum(len(data) for _, data in batches)


def _finish_group(log: PartitionLog, state: CleanerPass, group: list[LogSegment],
                  result: CleanResult) -> None:
    output = state.output
    assert output is not None, "a finished group has an output"
    before = sum(segment.size for segment in group)
    if len(group) == 1 and not output.changed:
        _discard_output(log, output.segment)
        after = before  # nothing changed: the segment stays as it is
    else:
        after = _swap_in(log, group, output.segment, output.aborted).size
    state.output = None
    state.sources = state.sources[len(group):]
    state.group_number += 1
    state.cursor = (0, 0)
    result.segments_cleaned += len(group)
    result.records_removed += output.records_removed
    result.bytes_before += before
    result.bytes_after += after


def _finish_pass(log: PartitionLog, state: CleanerPass, result: CleanResult) -> None:
    log.cleaner_pass = None
    log.cleaner_checkpoint = state.end_offset
    log.cleaner_tombstone_expiry_ms = state.tombstone_expiry_ms
    write_offset_checkpoint(log.fs, log.directory, CLEANER_OFFSET_FILE, state.end_offset)
    result.pass_finished = True


# --- the crash-safe swap --------------------------------------------------------------------
def _cleaned_path(directory: str, base_offset: int) -> str:
    return posixpath.join(directory, segment_file_name(base_offset, ".log.cleaned"))


def _swap_name(base_offset: int, end_offset: int) -> str:
    return f"{base_offset:020d}.{end_offset:020d}.swap"


def _open_output(log: PartitionLog, base_offset: int, now_ms: int) -> LogSegment:
    path = _cleaned_path(log.directory, base_offset)
    log.fs.remove(path)
    handle = log.fs.open(path, create=True)
    return LogSegment(log.fs, log.directory, base_offset, handle,
                      log.config.index_interval_bytes, now_ms)


def _discard_output(log: PartitionLog, output: LogSegment) -> None:
    output.log.close()
    log.fs.remove(_cleaned_path(log.directory, output.base_offset))


def _swap_in(log: PartitionLog, group: list[LogSegment], new: LogSegment,
             aborted: list[AbortedTxn]) -> LogSegment:
    """Replace `group` by `new` (written to its `.cleaned` file) on disk, then in the log."""
    fs, directory = log.fs, log.directory
    segments = log.segments
    end_offset = segments[segments.index(group[-1]) + 1].base_offset
    base = group[0].base_offset
    new.log.sync()
    new.log.close()
    swap_path = posixpath.join(directory, _swap_name(base, end_offset))
    fs.rename(_cleaned_path(directory, base), swap_path)  # the commit point
    fs.sync_dir(directory)
    _replace_with_swap(fs, directory, base, end_offset, [s.base_offset for s in group])
    new.log = fs.open(new.path(".log"))
    new.seal()
    new.persist_indexes()
    new.txn_index = TransactionIndex(fs, new.path(".txnindex"))
    new.txn_index.rewrite(aborted)
    log.replace_segments(group, new)
    return new


def _replace_with_swap(fs: FileSystem, directory: str, base: int, end: int,
                       old_bases: list[int]) -> None:
    for old_base in old_bases:
        assert base <= old_base < end, "a swap replaces segments inside its range only"
        for suffix in SEGMENT_SUFFIXES:
            fs.remove(posixpath.join(directory, segment_file_name(old_base, suffix)))
    fs.rename(posixpath.join(directory, _swap_name(base, end)),
              posixpath.join(directory, segment_file_name(base, ".log")))
    fs.sync_dir(directory)


def finish_interrupted_cleaning(fs: FileSystem, directory: str) -> None:
    """On open: drop a half-written `.cleaned`; complete a committed `.swap`."""
    for name in fs.listdir(directory):
        if name.endswith(".log.cleaned"):
            fs.remove(posixpath.join(directory, name))
    for name in fs.listdir(directory):
        parts = name.split(".")
        if len(parts) == 3 and parts[2] == "swap" and parts[0].isdigit() and parts[1].isdigit():
            base, end = int(parts[0]), int(parts[1])
            # Index files count too: a crash between removing a segment's .log and its
            # indexes must not leave an index that looks like a vanished segment (recovery.py).
            old_bases = set()
            for other in fs.listdir(directory):
                stem, _, suffix = other.partition(".")
                if "." + suffix in SEGMENT_SUFFIXES and stem.isdigit() \
                        and base <= int(stem) < end:
                    old_bases.add(int(stem))
            _replace_with_swap(fs, directory, base, end, sorted(old_bases))
