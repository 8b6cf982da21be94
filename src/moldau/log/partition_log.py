"""`PartitionLog`: one partition's log on disk — append, read, recover, retain, truncate.

Theory of operation
-------------------
A partition directory `<topic>-<partition>/` holds segments (`<20-digit base offset>.log` with
`.index` and `.timeindex`, see segment.py/index.py), `leader-epoch-checkpoint`,
`partition.metadata`, and per-partition `recovery-point-offset-checkpoint` and
`log-start-offset-checkpoint` (checkpoints.py). Offsets: `log_start_offset` is the first
offset a consumer may read, `log_end_offset` (LEO) one past the last appended offset; the high
watermark belongs to replication and arrives here as `read(max_offset=...)`.

Append (`append_as_leader`): validate the batch headers and CRCs (records stay opaque),
assign offsets from the LEO, and write `[patched header, untouched rest]` per batch with one
writev (no copy of the payload); the bytes are in the OS when the call returns (a killed
process loses nothing acknowledged). Rolls a new segment before the append when the active
segment would pass segment.bytes, its index is full, relative offsets would overflow int32,
or segment.ms has passed (Kafka's rule: incoming max timestamp minus the first batch's max
timestamp). A rolled segment is fsynced with its indexes and the recovery point moves to
the new segment's base offset. fsync otherwise follows flush.messages / flush.ms (checked on
append and in `maybe_flush(now_ms)`, which the runtime calls from a timer); a flush is one
fsync of the active segment, and the recovery-point checkpoint file (plus the active
segment's index files) is written at most once a minute, at roll, truncation and close —
Kafka's split between flush.ms and log.flush.offset.checkpoint.interval.ms.

Read (`read`): one region of one segment (Kafka's FetchDataInfo): from the batch holding
`fetch_offset`, whole batches only, never including the batch holding `max_offset` (the high
watermark; exclusive), at most `max_bytes` except that with `min_one_batch` the first batch is
returned whole (KIP-74). Finding positions is O(1) for consumers at the tail (segment position
hints), otherwise bisect on the sparse index plus a short header scan. The region exposes the
segment's handle (`fileno()` for sendfile) and `read_bytes()`.

Recovery (`open`, recovery.py): segments wholly below the recovery point are trusted (their
index files are loaded and sanity-checked, rebuilt if wrong); from the last index entry at or
before the recovery point onwards every batch is CRC-checked. A torn tail past the recovery
point is cut (WARNING); damage anywhere else changes no file and opens the log *offline*
(`offline`, faults.py): appends and reads of the damaged offsets raise KAFKA_STORAGE_ERROR.
Interrupted compaction is finished or discarded (cleaner.py's `.cleaned`/`.swap` protocol).
After recovery everything is fsynced and the recovery point checkpointed at the LEO.

Reads check the CRC of bytes this process has not checked before (segment.verify_read), so
damage inside a trusted segment answers CORRUPT_MESSAGE instead of bad data or an endless
empty read. Write errors (a full disk) undo the append or roll and raise KAFKA_STORAGE_ERROR;
checkpoints that cannot be written are retried later (faults.py).

Deletion: retention (`enforce_retention`) and DeleteRecords (`delete_records_before`) remove
whole segments and raise `log_start_offset`; reads below it are OFFSET_OUT_OF_RANGE. An
active segment that retention finds due is rolled first and then deleted, as in Kafka, so
the log is left with an empty active segment at its log end offset (single node: the high
watermark is the log end offset; replication will bound this by the high watermark). Files of deleted segments are unlinked at once but their handles stay open
for file.delete.delay.ms, so a region handed to sendfile stays readable (Kafka's `.deleted`
delay, without the rename).

Errors: bad input raises `LogError`/`RecordsError` carrying a Kafka error code.

API (all synchronous; time arrives as `now_ms`)
-----------------------------------------------
- `PartitionLog.open(fs, directory, config, now_ms)`; `close()`; `delete()`; `flush()`;
  `maybe_flush(now_ms)`; `update_config(config)`; `roll(now_ms)`.
- `append_as_leader(payload, leader_epoch, now_ms, validated=None) -> AppendInfo`
  (`AppendInfo.duplicate` is True for an idempotent retry: nothing written, original offsets);
  `append_as_follower(payload, now_ms) -> AppendInfo`.
- `read(fetch_offset, max_bytes, max_offset=None, min_one_batch=True) -> ReadResult`.
- `offset_for_timestamp(ts) -> (offset, timestamp) | None`; `max_timestamp_offset()`.
- `end_offset_for_epoch(epoch) -> (epoch, end_offset)`; `leader_epoch_cache`; `latest_epoch`.
- `truncate_to(offset)`, `truncate_fully_and_start_at(offset)`,
  `delete_records_before(offset) -> log_start_offset`, `enforce_retention(now_ms)` (also
  compacts compacted topics).
- State: `offline` (a StorageFault, or None), `faults`, `log_start_offset`, `log_end_offset`,
  `recovery_point`, `size_bytes`, `segments`,
  `active_segment`, `producer_state` (producer_state.py), `cleaner_checkpoint`, `cleaner_pass`
  (the compaction pass under way, cleaner.py).
"""

from __future__ import annotations

import bisect
import logging
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from kio.schema.errors import ErrorCode

from moldau.records.batch import (
    CONTROL_MASK,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    RecordsError,
    parse_header,
    patched_header,
    records_in,
    validate_payload,
)
from moldau.records.control import end_txn_marker_batch, read_end_txn_marker
from moldau.records.record import Record, iterate_batches, iterate_records

from . import checkpoints
from .config import LogConfig
from .faults import COUNTERS, StorageFault, write_error
from .faults import partition_name as faults_partition
from .fs import Chunk, FileHandle, FileSystem
from .leader_epoch import LeaderEpochCache
from .producer_state import CompletedTxn, ProducerStateError, ProducerStateManager
from .recovery import recover_segments
from .segment import SEGMENT_SUFFIXES, LogSegment, segment_file_name
from .txn_index import AbortedTxn, TransactionIndex

if TYPE_CHECKING:
    from .cleaner import CleanerPass

# Kafka's log.flush.offset.checkpoint.interval.ms: how often a moved recovery point is written.
_CHECKPOINT_INTERVAL_MS = 60_000
# Largest relative offset an index entry can hold (int32).
_RELATIVE_OFFSET_MAX = 2**31 - 1
# Followers replicate what the leader accepted; their batch-size bound is only a sanity bound.
_FOLLOWER_BATCH_BYTES_MAX = 2**31 - 1
# Bytes read per step when `records()` walks a log (slow path: replay of internal topics).
_RECORDS_READ_BYTES = 1024 * 1024
# "No end": a damaged range that runs to the end of the log.
_OFFSET_MAX = 2**63 - 1

_log = logging.getLogger("moldau.log")


class LogError(RecordsError):
    """A request the log cannot serve; `error_code` is the Kafka error to answer with."""


@dataclass(slots=True)
class AppendInfo:
    first_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    max_timestamp: int
    offset_of_max_timestamp: int
    record_count: int
    # Headers as validated: for a leader append, base offsets and leader epochs are the
    # client's (see `assigned_base_offsets`); positions are relative to the payload.
    batches: list[BatchHeader]
    log_start_offset: int
    # True when the payload was a retry of batches already in the log (nothing written;
    # the offsets are the original ones).
    duplicate: bool = False

    def assigned_base_offsets(self) -> list[int]:
        """The base offset the log gave each batch, in order."""
        offsets = []
        offset = self.first_offset
        for header in self.batches:
            offsets.append(offset)
            offset += header.last_offset_delta + 1
        return offsets


@dataclass(slots=True)
class FileRegion:
    """`size` bytes at `position` of a segment file; send with sendfile or `read_bytes()`.
    `data` holds the bytes already when the read had to check them (segment.verify_read).
    `first_offset` is the base offset of its first batch and `next_offset` the offset after its
    last batch, when the read knew them (-1 otherwise): what a fetch needs to know about the
    records it sends without reading them."""

    file: FileHandle
    position: int
    size: int
    data: bytes | None = None
    first_offset: int = -1
    next_offset: int = -1

    def fileno(self) -> int:
        return self.file.fileno()

    def __len__(self) -> int:  # a response's records field: its length is all the encoder needs
        return self.size

    def read_bytes(self, offset: int = 0) -> bytes:
        """The region's bytes from `offset` on; RegionGone if the file no longer holds them
        (truncated below the region, or its handle closed since the read that made it)."""
        if self.data is not None:
            return self.data if offset == 0 else self.data[offset:]
        want = self.size - offset
        try:
            data = self.file.pread(want, self.position + offset)
        except (OSError, ValueError) as error:
            raise RegionGone(f"the segment file cannot be read: {error}") from error
        if len(data) != want:
            raise RegionGone(f"read {len(data)} of {want} bytes at {self.position + offset}")
        return data

    __bytes__ = read_bytes  # b"".join(bytes(chunk) for chunk in frame) works on any frame

    def record_count(self) -> int:
        """How many records it holds: counted from the batch headers when the bytes are at hand,
        else the offsets it spans (the same unless compaction left gaps)."""
        if self.data is None and self.first_offset >= 0 and self.next_offset >= 0:
            return self.next_offset - self.first_offset
        return records_in(self.read_bytes())


class RegionGone(Exception):
    """A file region to send no longer holds the bytes the response announced: the connection
    must be closed, as the client would otherwise read a malformed frame."""


@dataclass(slots=True)
class ReadResult:
    fetch_offset: int
    region: FileRegion | None  # None: no records to return
    log_start_offset: int
    log_end_offset: int

    @property
    def size(self) -> int:
        return self.region.size if self.region is not None else 0

    def read_bytes(self) -> bytes:
        return self.region.read_bytes() if self.region is not None else b""


@dataclass
class _Retired:
    handle: FileHandle
    retired_ms: int


class PartitionLog:
    def __init__(self, fs: FileSystem, directory: str, config: LogConfig,
                 segments: list[LogSegment], log_start_offset: int, now_ms: int) -> None:
        assert segments, "a partition log always has an active segment"
        self.fs = fs
        self.directory = directory
        self.config = config
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self.log_start_offset = log_start_offset
        self.log_end_offset = segments[-1].next_offset
        # Everything below recovery_point is fsynced; the checkpoint file may lag behind it
        # (written at most every _CHECKPOINT_INTERVAL_MS, and at roll, truncation, close).
        self.recovery_point = -1
        self._checkpointed_recovery_point = -1
        self._last_checkpoint_ms = now_ms
        self.leader_epoch_cache = LeaderEpochCache.load(fs, directory)
        self._unflushed_records = 0
        self._last_flush_ms = now_ms
        self._now_ms = now_ms
        self._retired: list[_Retired] = []
        self.producer_state = ProducerStateManager()
        # Offsets below this were compacted by the last cleaning (cleaner-offset-checkpoint).
        self.cleaner_checkpoint = checkpoints.read_offset_checkpoint(
            fs, directory, checkpoints.CLEANER_OFFSET_FILE) or 0
        # When the oldest tombstone kept by the last cleaning may go (-1: none, or not known
        # yet: in memory only, like Kafka's delete horizon; the next pass learns it again).
        self.cleaner_tombstone_expiry_ms = -1
        # The compaction pass under way, continued by each enforce_retention (cleaner.py).
        self.cleaner_pass: CleanerPass | None = None
        self.cleaner_bytes_read = 0  # by the cleaning of the last enforce_retention
        self.closed = False
        # A new log's directory (and its entry in the data directory) not yet fsynced: done
        # with its first flush of data.
        self._dirs_unsynced = False
        # Damage found at open (faults.py): the first fault, all of them, and the offset
        # ranges reads refuse. An offline log refuses appends and changes no file.
        self.offline: StorageFault | None = None
        self.faults: list[StorageFault] = []
        self._damaged: list[tuple[int, int]] = []
        # Segments (base offsets) whose bad batch a read already reported (once each).
        self._corrupt_reported: set[int] = set()
        # Why compaction stopped for good (a damaged batch), "" while it runs (Kafka marks
        # such a partition uncleanable too).
        self.uncleanable = ""

    # --- opening and recovery -----------------------------------------------------------------
    @classmethod
    def open(cls, fs: FileSystem, directory: str, config: LogConfig, now_ms: int) -> "PartitionLog":
        """Load (or create) the log in `directory`, recovering from an unclean shutdown.

        Never raises for damaged files: a log with damage below its recovery point opens
        offline (`offline` holds the fault; recovery.py, faults.py). OSError only when the
        directory itself cannot be created or read (the caller retries later)."""
        from .cleaner import finish_interrupted_cleaning

        # A new, empty log writes nothing durable until it holds data: its checkpoints' absence
        # means "nothing to recover", and creating thousands of partitions costs no fsync.
        fresh = not fs.exists(directory) or not fs.listdir(directory)
        fs.makedirs(directory)
        finish_interrupted_cleaning(fs, directory)
        log_start_offset = checkpoints.read_offset_checkpoint(
            fs, directory, checkpoints.LOG_START_OFFSET_FILE)
        checkpointed = checkpoints.read_offset_checkpoint(
            fs, directory, checkpoints.RECOVERY_POINT_FILE)
        recovered = recover_segments(fs, directory, config, checkpointed or 0, now_ms)
        segments = recovered.segments
        if not segments:
            start = log_start_offset or 0
            segments = [LogSegment.create(fs, directory, start, config.index_interval_bytes, now_ms)]
            if checkpointed is not None and checkpointed > start:
                recovered.faults.append(StorageFault(
                    "missing_tail", segments[0].path(".log"), -1, start, checkpointed,
                    f"no segment file is left, but offsets up to the recovery point "
                    f"{checkpointed} were flushed"))
        stored_log_start_offset = log_start_offset
        if log_start_offset is None or log_start_offset < segments[0].base_offset:
            log_start_offset = segments[0].base_offset
        log = cls(fs, directory, config, segments, log_start_offset, now_ms)
        log._checkpointed_recovery_point = -1 if checkpointed is None else checkpointed
        if recovered.faults:
            log._go_offline(recovered.faults)
            return log  # no file is touched: everything stays as found, for the operator
        if log.leader_epoch_cache.load_error:
            log._rebuild_leader_epochs()
        else:  # epochs assigned after the last flush may not have reached the disk
            log._recover_leader_epochs(checkpointed or 0)
        if log.log_start_offset > log.log_end_offset:
            log.truncate_fully_and_start_at(log.log_start_offset)
        log.leader_epoch_cache.truncate_from_end(log.log_end_offset)
        log.leader_epoch_cache.truncate_from_start(log.log_start_offset)
        log._load_producer_state()
        if fresh or (checkpointed is None and stored_log_start_offset is None
                     and not recovered.segments):
            # A new, empty log: nothing to make durable (a missing checkpoint reads as offset
            # 0 anyway), so nothing is written or synced until it holds data: a topic of
            # thousands of partitions is created without thousands of fsyncs on the loop.
            log.recovery_point = log._checkpointed_recovery_point = log.log_end_offset
            log._dirs_unsynced = fresh
            return log
        if log._checkpointed_recovery_point == log.log_end_offset:
            log.recovery_point = log.log_end_offset  # clean shutdown: nothing to sync or write
        else:
            log._try(log.checkpoint, "writing the recovery point after recovery")
        if stored_log_start_offset != log.log_start_offset:
            log._try(log._write_log_start_offset, "writing the log start offset")
        return log

    def _recover_leader_epochs(self, recovery_point: int) -> None:
        """Re-add the epochs of batches above the recovery point that the checkpoint does not
        know (an assign is written unsynced and made durable by the next flush; a power loss
        between the two loses it), as Kafka's recovery does."""
        cache = self.leader_epoch_cache
        for index, segment in enumerate(self._segments):
            following = self._segments[index + 1].base_offset if index + 1 < len(self._segments) else None
            if following is not None and following <= recovery_point:
                continue
            for header in segment.scan_headers(0):
                if header.base_offset + header.last_offset_delta < recovery_point:
                    continue
                if header.partition_leader_epoch > cache.latest_epoch:
                    cache.assign(header.partition_leader_epoch, header.base_offset)

    def _rebuild_leader_epochs(self) -> None:
        """The leader-epoch checkpoint is unreadable: every batch carries the epoch of the
        leader that wrote it, so the entries are rebuilt from the batch headers."""
        cache = self.leader_epoch_cache
        _log.warning("%s: the leader-epoch checkpoint is unreadable (%s); rebuilt it from the "
                     "batch headers", faults_partition(self.directory), cache.load_error)
        for segment in self._segments:
            for header in segment.scan_headers(0):
                if header.partition_leader_epoch > cache.latest_epoch:
                    cache.assign(header.partition_leader_epoch, header.base_offset)
        cache.load_error = ""
        if not cache.entries:
            cache.clear_and_flush()

    def _go_offline(self, faults: list[StorageFault]) -> None:
        """Damage below the recovery point: refuse appends, refuse reads of the damaged
        offsets, change no file (faults.py). In a cluster the replica re-fetches instead."""
        self.offline = faults[0]
        self.faults = list(faults)
        self.leader_epoch_cache.stop_writing()  # leadership may still move in memory
        for fault in faults:
            end = fault.end_offset if fault.end_offset > fault.first_offset else _OFFSET_MAX
            self._damaged.append((fault.first_offset, end))
            COUNTERS.add("damaged_logs")
            _log.error("%s: %s. The partition is offline (clients get KAFKA_STORAGE_ERROR); no "
                       "file was changed. Restore the partition from a replica or a backup, or "
                       "move the damaged files away and restart (docs/operations.md).",
                       faults_partition(self.directory), fault.describe())

    def _try(self, write: Callable[[], object], what: str) -> bool:
        """Run a write whose failure is safe to survive (a checkpoint that lags, an index
        to be rebuilt): count and log an OS error instead of raising it."""
        try:
            write()
        except OSError as error:
            write_error(self.directory, what, error)
            return False
        return True

    # --- append -------------------------------------------------------------------------------
    def append_as_leader(self, payload: bytes | bytearray | memoryview, leader_epoch: int,
                         now_ms: int, *, validated: list[BatchHeader] | None = None) -> AppendInfo:
        """Validate, assign offsets and write a produce payload; see the module docstring.

        `validated` lets the broker pass the headers it already got from `validate_payload`
        (e.g. for idempotence checks) so they are not parsed twice.
        """
        assert not self.closed, "append to a closed log"
        if self.offline is not None:
            raise self._offline_error()
        config = self.config
        headers = validated if validated is not None else validate_payload(
            payload, config.max_message_bytes)
        total = len(payload)
        if total > config.segment_bytes:
            self._check_append_size(total)
        if headers[0].producer_id >= 0 or len(headers) > 1:
            duplicate = self._check_producers(headers)
            if duplicate is not None:
                return duplicate
        append_time = now_ms if config.log_append_time else None
        view = payload if type(payload) is memoryview else memoryview(payload)
        offset = self.log_end_offset
        chunks: list[Chunk] = []
        batches: list[tuple[int, int, int, int]] = []
        max_ts = max_ts_offset = -1
        record_count = 0
        for header in headers:
            size = header.batch_length + LOG_OVERHEAD
            chunks.append(patched_header(view, header, offset, leader_epoch, append_time))
            if size > HEADER_SIZE:
                chunks.append(view[header.position + HEADER_SIZE : header.position + size])
            batch_last = offset + header.last_offset_delta
            timestamp = header.max_timestamp if append_time is None else append_time
            if timestamp > max_ts:
                max_ts, max_ts_offset = timestamp, batch_last
            batches.append((offset, batch_last, timestamp, size))
            record_count += header.records_count
            offset = batch_last + 1
        segment = self._maybe_roll(total, max_ts, offset - 1, now_ms)
        if leader_epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(leader_epoch, self.log_end_offset)
        self._write(segment, chunks, batches)
        self._update_producers(headers, batches, view, now_ms)
        return self._finish_append(batches, record_count, max_ts, max_ts_offset, headers,
                                   append_time, now_ms)

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                              commit: bool, leader_epoch: int, now_ms: int) -> AppendInfo:
        """WriteTxnMarkers on the leader: end the producer's transaction here with a COMMIT or
        ABORT control batch (records/control.py). A marker of a fenced producer epoch is
        INVALID_PRODUCER_EPOCH, of an older coordinator TRANSACTION_COORDINATOR_FENCED."""
        assert not self.closed, "append to a closed log"
        if self.offline is not None:
            raise self._offline_error()
        self.producer_state.check_marker(producer_id, producer_epoch, coordinator_epoch)
        payload = end_txn_marker_batch(producer_id, producer_epoch, coordinator_epoch, commit, now_ms)
        header = parse_header(payload, 0)
        offset = self.log_end_offset
        chunks = [patched_header(payload, header, offset, leader_epoch), payload[HEADER_SIZE:]]
        batches = [(offset, offset, header.max_timestamp, len(payload))]
        segment = self._maybe_roll(len(payload), header.max_timestamp, offset, now_ms)
        if leader_epoch > self.leader_epoch_cache.latest_epoch:
            self.leader_epoch_cache.assign(leader_epoch, self.log_end_offset)
        self._write(segment, chunks, batches)
        self._update_producers([header], batches, memoryview(payload), now_ms)
        return self._finish_append(batches, 1, header.max_timestamp, offset, [header], None, now_ms)

    def append_as_follower(self, payload: bytes | bytearray | memoryview,
                           now_ms: int) -> AppendInfo:
        """Append replicated batches whose offsets and epochs the leader already assigned."""
        assert not self.closed, "append to a closed log"
        if self.offline is not None:
            raise self._offline_error()
        headers = validate_payload(payload, _FOLLOWER_BATCH_BYTES_MAX, require_dense_offsets=False)
        self._check_append_size(len(payload))
        expected = self.log_end_offset
        for header in headers:
            if header.base_offset < expected:
                raise LogError(ErrorCode.offset_out_of_range,
                               f"follower batch at offset {header.base_offset} below {expected}")
            expected = header.base_offset + header.last_offset_delta + 1
        if headers[0].base_offset > self.log_end_offset and self._segments[-1].size == 0:
            self._replace_empty_active_segment(headers[0].base_offset, now_ms)
        segment = self._maybe_roll(len(payload), max(h.max_timestamp for h in headers),
                                   expected - 1, now_ms)
        batches = [(h.base_offset, h.base_offset + h.last_offset_delta, h.max_timestamp,
                    h.batch_length + LOG_OVERHEAD) for h in headers]
        cache = self.leader_epoch_cache
        for header in headers:
            if header.partition_leader_epoch > cache.latest_epoch:
                cache.assign(header.partition_leader_epoch, header.base_offset)
        self._write(segment, [payload], batches)
        self._update_producers(headers, batches, payload if type(payload) is memoryview else memoryview(payload),
                               now_ms)
        max_ts, max_ts_offset = -1, -1
        for _, last, timestamp, _ in batches:
            if timestamp > max_ts:
                max_ts, max_ts_offset = timestamp, last
        record_count = sum(h.records_count for h in headers)
        return self._finish_append(batches, record_count, max_ts, max_ts_offset, headers,
                                   None, now_ms)

    def _write(self, segment: LogSegment, chunks: list[Chunk],
               batches: list[tuple[int, int, int, int]]) -> None:
        """Write to the active segment; on an OS error cut the file back to where it was, so
        no partial batch stays behind, and report KAFKA_STORAGE_ERROR."""
        position = segment.size
        try:
            segment.append(chunks, batches)
        except OSError as error:
            try:
                segment.log.truncate(position)
            except OSError:
                pass  # recovery will cut the torn tail on the next open
            write_error(self.directory, "appending", error)
            raise LogError(ErrorCode.kafka_storage_error, f"write failed: {error}") from error

    def _check_producers(self, headers: list[BatchHeader]) -> AppendInfo | None:
        """Idempotence checks; an AppendInfo of the original if the payload is a retry."""
        state = self.producer_state
        for header in headers:
            if header.producer_id < 0:
                continue
            duplicate = state.check(header)
            if duplicate is None:
                continue
            if len(headers) > 1:
                raise ProducerStateError(ErrorCode.duplicate_sequence_number,
                                         "a retried batch inside a multi-batch payload")
            return AppendInfo(duplicate[0], duplicate[1], -1, -1, -1, 0, headers,
                              self.log_start_offset, duplicate=True)
        return None

    def _update_producers(self, headers: list[BatchHeader], batches: list[tuple[int, int, int, int]],
                          payload: memoryview, now_ms: int) -> None:
        state = self.producer_state
        for header, batch in zip(headers, batches):
            if header.producer_id < 0:
                continue
            if header.attributes & CONTROL_MASK:
                data = bytes(payload[header.position:header.position + header.batch_length + LOG_OVERHEAD])
                self._apply_control_batch(header._replace(base_offset=batch[0]), data, self._segments[-1])
            else:
                state.update(header, batch[0], batch[2], now_ms)

    def _apply_control_batch(self, header: BatchHeader, data: bytes, segment: LogSegment) -> None:
        """A written control batch: end the producer's transaction; index it if it aborted data.
        `header.base_offset` is the batch's offset in this log; `segment` the one holding it."""
        marker = read_end_txn_marker(data)
        if marker is None:  # emptied by compaction: its transaction's data is gone too
            return
        completed = self.producer_state.apply_marker(
            header.producer_id, header.producer_epoch, marker.coordinator_epoch, marker.commit,
            header.base_offset, header.max_timestamp)
        if completed is not None and completed.aborted:
            self._txn_index(segment).append(self._aborted_entry(completed))

    def _aborted_entry(self, completed: CompletedTxn) -> AbortedTxn:
        return AbortedTxn(completed.producer_id, completed.first_offset, completed.last_offset,
                          self.producer_state.last_stable_offset_after(completed))

    @staticmethod
    def _txn_index(segment: LogSegment) -> TransactionIndex:
        if segment.txn_index is None:
            segment.txn_index = TransactionIndex(segment.fs, segment.path(".txnindex"))
        return segment.txn_index

    def _load_producer_state(self) -> None:
        """From a clean-shutdown snapshot (with the aborted-transaction indexes as written),
        else by scanning every batch header of the log."""
        state = self.producer_state
        indexes_intact = self._load_txn_indexes()
        offset = state.read_snapshot(self.fs, self.directory)
        state.remove_snapshot(self.fs, self.directory)  # valid only for this restart
        if offset is None or offset != self.log_end_offset or not indexes_intact:
            self._rebuild_producer_state()

    def _rebuild_producer_state(self) -> None:
        """Replay every batch header (and the marker of each control batch) from the log start:
        producer sequences, open transactions, and each segment's aborted-transaction index,
        rewritten from the markers found (a crash may have lost or torn index appends)."""
        state = self.producer_state
        state.clear()
        for segment in self._segments:
            aborted: list[AbortedTxn] = []
            for header in segment.scan_headers(0):
                if header.producer_id < 0:
                    continue
                if not header.attributes & CONTROL_MASK:
                    state.update(header, header.base_offset, header.max_timestamp)
                    continue
                marker = read_end_txn_marker(segment.log.pread(header.size_bytes, header.position))
                if marker is None:
                    continue
                completed = state.apply_marker(header.producer_id, header.producer_epoch,
                                               marker.coordinator_epoch, marker.commit,
                                               header.base_offset, header.max_timestamp)
                if completed is not None and completed.aborted:
                    aborted.append(self._aborted_entry(completed))
            if aborted or segment.txn_index is not None:
                self._txn_index(segment).rewrite(aborted)

    def _load_txn_indexes(self) -> bool:
        """Load each segment's aborted-transaction index; False if one is damaged."""
        intact = True
        for segment in self._segments:
            path = segment.path(".txnindex")
            if self.fs.exists(path):
                segment.txn_index = TransactionIndex(self.fs, path)
                intact = segment.txn_index.load() and intact
        return intact

    # --- transactions -------------------------------------------------------------------------
    def first_unstable_offset(self) -> int | None:
        """The first offset of a transaction not decided, or decided but not yet replicated."""
        return self.producer_state.first_unstable_offset()

    def collect_aborted_transactions(self, fetch_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [fetch_offset, upper_bound_offset): what a
        read_committed Fetch returns with the records it read there."""
        found: list[AbortedTxn] = []
        if _planted("aborted-transactions-not-returned"):
            return found
        index = max(0, bisect.bisect_right(self._bases, fetch_offset) - 1)
        for segment in self._segments[index:]:
            if segment.txn_index is not None and segment.txn_index.collect(fetch_offset, upper_bound_offset, found):
                break
        return found

    def _check_append_size(self, size: int) -> None:
        if size > self.config.segment_bytes:
            raise LogError(ErrorCode.record_list_too_large,
                           f"{size} bytes exceed segment.bytes {self.config.segment_bytes}")

    def _finish_append(self, batches: list[tuple[int, int, int, int]], record_count: int,
                       max_ts: int, max_ts_offset: int, headers: list[BatchHeader],
                       append_time: int | None, now_ms: int) -> AppendInfo:
        self.log_end_offset = batches[-1][1] + 1
        if now_ms > self._now_ms:
            self._now_ms = now_ms
        self._unflushed_records += record_count
        config = self.config
        if config.flush_messages >= 0 or config.flush_ms >= 0 or self._retired:
            self.maybe_flush(now_ms)
            if 0 <= config.flush_messages <= self._unflushed_records:
                # flush.messages asks for an fsync before the acknowledgement, and it failed:
                # the records are in the log, but the producer must not be told they are safe.
                raise LogError(ErrorCode.kafka_storage_error,
                               f"{faults_partition(self.directory)}: fsync failed after the append")
        return AppendInfo(batches[0][0], self.log_end_offset - 1,
                          append_time if append_time is not None else -1, max_ts,
                          max_ts_offset, record_count, headers, self.log_start_offset)

    def _maybe_roll(self, size: int, incoming_max_ts: int, last_offset: int,
                    now_ms: int) -> LogSegment:
        segment = self._segments[-1]
        if segment.size == 0:
            return segment
        config = self.config
        if segment.rolling_timestamp >= 0:
            waited_ms = incoming_max_ts - segment.rolling_timestamp
        else:
            waited_ms = now_ms - segment.created_ms
        if (segment.size + size > config.segment_bytes
                or waited_ms > config.segment_ms
                or (len(segment.offset_index) + 1) * 8 > config.segment_index_bytes
                or last_offset - segment.base_offset > _RELATIVE_OFFSET_MAX):
            return self.roll(now_ms)
        return segment

    def roll(self, now_ms: int) -> LogSegment:
        """Start a new active segment at the LEO; the old one is sealed, and fsynced in the
        background (`_flush_rolled`). On an OS error (a full disk) while creating the new one,
        the old segment stays active and KAFKA_STORAGE_ERROR is raised."""
        old = self._segments[-1]
        if old.size == 0:
            return old
        old.seal()
        new = None
        try:
            written = old.persist_indexes(sync=False)
            if old.txn_index is not None:  # small, and its state is the loop's: synced here
                old.txn_index.sync()
            new = LogSegment.create(self.fs, self.directory, self.log_end_offset,
                                    self.config.index_interval_bytes, now_ms)
        except OSError as error:
            if new is not None:
                new.delete_files()
            write_error(self.directory, "rolling a new segment", error)
            raise LogError(ErrorCode.kafka_storage_error, f"rolling a new segment failed: {error}") from error
        self._segments.append(new)
        self._bases.append(new.base_offset)
        self._flush_rolled(old, written, new.base_offset)
        return new

    def _flush_rolled(self, old: LogSegment, index_paths: list[str], recovery_point: int) -> None:
        """Make the rolled segment durable and then move the recovery point past it, off the
        event loop's thread (as Kafka flushes rolled segments in its scheduler): the fsync of a
        full segment can take seconds, and nothing waits for it — the data is in the OS already.
        The checkpoint is written after the fsyncs, in the same task, so the file never names
        a recovery point whose data is not on disk."""
        directory, fs = self.directory, self.fs

        def durable() -> None:
            old.sync_written(index_paths)
            fs.sync_dir(directory)
            checkpoints.write_offset_checkpoint(fs, directory, checkpoints.RECOVERY_POINT_FILE, recovery_point)

        def then(error: OSError | None) -> None:
            if self.closed or recovery_point > self.log_end_offset:
                return  # closed, or truncated below it meanwhile (which wrote its own checkpoint)
            if error is not None:
                write_error(directory, "flushing a rolled segment", error)
                return
            if recovery_point > self.recovery_point:
                self.recovery_point = recovery_point
            self._checkpointed_recovery_point = max(self._checkpointed_recovery_point, recovery_point)

        fs.background(durable, then)

    def _replace_empty_active_segment(self, base_offset: int, now_ms: int) -> None:
        """A follower's first batch is beyond our LEO (leader's log starts later): move the
        empty active segment up so offsets stay within its int32 relative range."""
        old = self._segments.pop()
        self._bases.pop()
        self._retire(old)
        new = LogSegment.create(self.fs, self.directory, base_offset,
                                self.config.index_interval_bytes, now_ms)
        self._segments.append(new)
        self._bases.append(base_offset)
        self.log_end_offset = base_offset
        if self.log_start_offset < base_offset and len(self._segments) == 1:
            self.log_start_offset = base_offset
            self._write_log_start_offset()

    # --- read ---------------------------------------------------------------------------------
    def read(self, fetch_offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_batch: bool = True) -> ReadResult:
        """Whole batches from `fetch_offset` below `max_offset` (default: the LEO).

        Raises LogError: OFFSET_OUT_OF_RANGE outside [log start, log end]; CORRUPT_MESSAGE when
        the batch at `fetch_offset` is damaged (bytes never checked before are CRC-checked as
        they are read; valid batches before a bad one are returned first); KAFKA_STORAGE_ERROR
        for the damaged offsets of an offline log."""
        if self._damaged:
            self._check_damaged(fetch_offset, fetch_offset + 1)
        if fetch_offset < self.log_start_offset or fetch_offset > self.log_end_offset:
            raise LogError(
                ErrorCode.offset_out_of_range,
                f"offset {fetch_offset} outside [{self.log_start_offset}, {self.log_end_offset}]")
        if max_offset is None or max_offset > self.log_end_offset:
            max_offset = self.log_end_offset
        index = bisect.bisect_right(self._bases, fetch_offset) - 1
        offset = fetch_offset
        while 0 <= index < len(self._segments) and offset < max_offset:
            segment = self._segments[index]
            region = self._read_segment(segment, offset, max_bytes, max_offset, min_one_batch)
            if region is not None or offset < segment.next_offset and segment.size:
                return self._result(fetch_offset, region)
            index += 1
            if index < len(self._segments):
                following = max(offset, self._segments[index].base_offset)
                if self._damaged:  # never skip over damaged offsets to the next segment
                    self._check_damaged(offset, following + 1)
                offset = following
        return self._result(fetch_offset, None)

    def _result(self, fetch_offset: int, region: FileRegion | None) -> ReadResult:
        return ReadResult(fetch_offset, region, self.log_start_offset, self.log_end_offset)

    def _read_segment(self, segment: LogSegment, offset: int, max_bytes: int,
                      max_offset: int, min_one_batch: bool) -> FileRegion | None:
        if offset >= segment.next_offset:
            return None
        start, first_offset = segment.batch_at(offset)
        if start is None:  # the chain of batch headers is broken before `offset`
            raise self._corrupt(segment, offset, -1, "no batch header leads to this offset")
        end, next_offset = segment.size, segment.next_offset
        if segment.damaged_at >= 0:
            if start >= segment.damaged_at:
                raise self._offline_error()
            end, next_offset = segment.damaged_at, -1
        if max_offset < segment.next_offset:
            limit, limit_offset = segment.batch_at(max_offset)
            if limit is not None:
                end, next_offset = limit, limit_offset
        if end <= start:
            return None
        if end - start > max_bytes:
            end, next_offset = segment.batch_end_and_next_offset(start, start + max_bytes)
            if end == start:
                if not min_one_batch:
                    return None
                first = segment.scan_first(start)
                if first is None:
                    raise self._corrupt(segment, offset, start, "the batch header is invalid")
                end = start + first.batch_length + LOG_OVERHEAD
                next_offset = first.base_offset + first.last_offset_delta + 1
        return self._checked_region(segment, start, end, offset, first_offset, next_offset)

    def _checked_region(self, segment: LogSegment, start: int, end: int, offset: int,
                        first_offset: int = -1, next_offset: int = -1) -> FileRegion:
        """The region, CRC-checked unless its bytes were checked before (segment.verify_read);
        cut before a bad batch, or CORRUPT_MESSAGE if the first batch is bad."""
        if segment.is_verified(start, end):
            return FileRegion(segment.log, start, end - start, None, first_offset, next_offset)
        data = segment.log.pread(end - start, start)
        good, reason = segment.verify_read(start, data, offset)
        if reason is None:
            return FileRegion(segment.log, start, len(data), data, first_offset, next_offset)
        if good == 0:
            raise self._corrupt(segment, offset, start, reason)
        return FileRegion(segment.log, start, good, data[:good], first_offset, -1)

    def _corrupt(self, segment: LogSegment, offset: int, position: int, reason: str) -> LogError:
        """CORRUPT_MESSAGE for a read that met a bad batch; logged once per segment."""
        COUNTERS.add("corrupt_reads")
        where = f" at byte {position}" if position >= 0 else ""
        message = (f"{faults_partition(self.directory)}: the batch holding offset {offset} in "
                   f"{segment_file_name(segment.base_offset, '.log')}{where} is corrupt: {reason}")
        if segment.base_offset not in self._corrupt_reported:
            self._corrupt_reported.add(segment.base_offset)
            COUNTERS.add("corrupt_segments")
            _log.error("%s; fetches of this offset answer CORRUPT_MESSAGE (reported once per "
                       "segment; docs/operations.md, storage faults)", message)
        return LogError(ErrorCode.corrupt_message, message)

    def _check_damaged(self, start: int, end: int) -> None:
        for first, last in self._damaged:
            if first < end and start < last:
                raise self._offline_error()

    def _offline_error(self) -> LogError:
        fault = self.offline
        assert fault is not None, "only an offline log has damaged offsets"
        return LogError(ErrorCode.kafka_storage_error,
                        f"{faults_partition(self.directory)} is offline: {fault.describe()}")

    # --- timestamps ---------------------------------------------------------------------------
    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp_ms`, or None."""
        for segment in self._segments:
            if segment.max_timestamp < timestamp_ms or segment.next_offset <= self.log_start_offset:
                continue
            lower = segment.time_index.lookup_before(timestamp_ms) + 1
            start_offset = max(lower, self.log_start_offset, segment.base_offset)
            found = self._search_timestamp(segment, timestamp_ms, start_offset)
            if found is not None:
                return found
        return None

    def _search_timestamp(self, segment: LogSegment, timestamp_ms: int,
                          start_offset: int) -> tuple[int, int] | None:
        position = segment.position_of(start_offset)
        if position is None:
            return None
        for header in segment.scan_headers(position):
            if header.max_timestamp < timestamp_ms:
                continue
            for record in self._batch_records(segment, header):
                if record.timestamp >= timestamp_ms and record.offset >= start_offset:
                    return record.offset, record.timestamp
        return None

    def records(self, start_offset: int | None = None) -> Iterator[Record]:
        """Every record of the data batches from `start_offset` (default: the log start offset)
        to the log end, in offset order; control batches are skipped. The slow path, for
        replaying internal topics (metadata log, __consumer_offsets): it decodes records."""
        offset = self.log_start_offset if start_offset is None else start_offset
        end = self.log_end_offset
        while offset < end:
            data = self.read(offset, _RECORDS_READ_BYTES, end, True).read_bytes()
            if not data:
                return
            for header, batch in iterate_batches(data):
                if header.next_offset > offset and not header.is_control:
                    for record in iterate_records(batch):
                        if record.offset >= offset:
                            yield record
                offset = max(offset, header.next_offset)

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the record with the largest timestamp (ListOffsets -3)."""
        best: LogSegment | None = None
        for segment in self._segments:
            if segment.next_offset > self.log_start_offset and (
                    best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        if best is None or best.max_timestamp < 0:
            return None
        header = best.find_batch(best.max_timestamp_offset)
        if header is None:
            return None
        for record in self._batch_records(best, header):
            if record.timestamp == best.max_timestamp and record.offset >= self.log_start_offset:
                return record.offset, record.timestamp
        return best.max_timestamp_offset, best.max_timestamp

    @staticmethod
    def _batch_records(segment: LogSegment, header: BatchHeader) -> list[Record]:
        data = segment.log.pread(header.batch_length + LOG_OVERHEAD, header.position)
        return list(iterate_records(data))

    # --- leader epochs ------------------------------------------------------------------------
    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch / diverging-epoch checks."""
        return self.leader_epoch_cache.end_offset_for_epoch(leader_epoch, self.log_end_offset)

    @property
    def latest_epoch(self) -> int:
        return self.leader_epoch_cache.latest_epoch

    # --- truncation and deletion --------------------------------------------------------------
    def truncate_to(self, offset: int) -> bool:
        """Follower truncation: drop everything at or above `offset`; True if anything went.
        Leader epochs that start at or above `offset` go too, even with no records (a leader
        that never appended in its epoch): they must not be claimed to the new leader."""
        if self.offline is not None:
            raise self._offline_error()
        if offset >= self.log_end_offset:
            if self.leader_epoch_cache.latest_start_offset() >= offset:
                self.leader_epoch_cache.truncate_from_end(offset)
            return False
        self._lower_recovery_point(offset)
        if offset <= self._segments[0].base_offset:
            self.truncate_fully_and_start_at(offset)
            return True
        while self._segments[-1].base_offset >= offset:
            self._retire(self._segments.pop())
            self._bases.pop()
        active = self._segments[-1]
        active.truncate_to(offset)
        self.log_end_offset = active.next_offset
        self._after_truncation()
        self._rebuild_producer_state()
        return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment and restart the (empty) log at `offset`."""
        if self.offline is not None:
            raise self._offline_error()
        self._lower_recovery_point(offset)
        for segment in self._segments:
            self._retire(segment)
        segment = LogSegment.create(self.fs, self.directory, offset,
                                    self.config.index_interval_bytes, self._now_ms)
        self._segments = [segment]
        self._bases = [offset]
        self.log_end_offset = offset
        self.log_start_offset = offset
        self.leader_epoch_cache.clear_and_flush()
        self.producer_state.clear()
        self._try(self._write_log_start_offset, "writing the log start offset")
        self._after_truncation()

    def _lower_recovery_point(self, offset: int) -> None:
        """Before offsets go: a recovery point above the new log end would make the next
        open find a log that ends below it (damage), were the process to die in between."""
        self.fs.drain_background()  # a rolled segment's checkpoint must not land after this one
        if self._checkpointed_recovery_point > offset:
            self.recovery_point = min(self.recovery_point, offset)
            checkpoints.write_offset_checkpoint(
                self.fs, self.directory, checkpoints.RECOVERY_POINT_FILE, offset)
            self._checkpointed_recovery_point = offset

    def _after_truncation(self) -> None:
        # Offsets from the LEO on will be written again: they cannot stay below the cleaner
        # checkpoint, and a compaction pass planned over the old ones must not swap them in.
        self._abort_cleaning()
        if self.cleaner_checkpoint > self.log_end_offset:
            self.cleaner_checkpoint = self.log_end_offset
            checkpoints.write_offset_checkpoint(
                self.fs, self.directory, checkpoints.CLEANER_OFFSET_FILE, self.log_end_offset)
        if self.log_start_offset > self.log_end_offset:
            self.log_start_offset = self.log_end_offset
            self._try(self._write_log_start_offset, "writing the log start offset")
        self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
        self._try(self.checkpoint, "checkpointing after a truncation")

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: raise log_start_offset to `offset`; return the new log_start_offset."""
        if self.offline is not None:
            raise self._offline_error()
        if offset > self.log_end_offset or offset < 0:
            raise LogError(ErrorCode.offset_out_of_range,
                           f"cannot delete before {offset}: log end offset {self.log_end_offset}")
        if offset > self.log_start_offset:
            self._advance_log_start_offset(offset)
            self._delete_segments_below_log_start()
        return self.log_start_offset

    def enforce_retention(self, now_ms: int, clean_max_bytes: int | None = None, retention: bool = True) -> int:
        """Delete old non-active segments by retention.ms/bytes; return how many went.

        For cleanup.policy compact this also advances compaction (cleaner.clean_log): a pass
        starts when min.cleanable.dirty.ratio (or a due tombstone, or max.compaction.lag.ms)
        says so, and each call does a bounded step of it (limits.cleaner_bytes_per_call_max
        source bytes; `clean_max_bytes` when the caller shares a budget between logs, 0 to
        skip cleaning this time), so a tick never blocks for long. `cleaner_bytes_read` is what
        this call's cleaning read. With `retention` false (the broker checks retention only
        every log.retention.check.interval.ms) only the cleaning and housekeeping run."""
        self._now_ms = now_ms
        self.cleaner_bytes_read = 0
        if self.offline is not None:
            return 0  # nothing on the disk changes: the operator looks at it as it is
        deleted = 0
        config = self.config
        if retention and config.delete and config.retention_ms >= 0:
            # A closed segment compaction emptied has no timestamp and nothing to keep: it goes
            # too, instead of holding back the older-than-retention segments behind it.
            deleted += self._delete_oldest(
                lambda segment, _: segment.size == 0
                or (segment.max_timestamp >= 0 and now_ms - segment.max_timestamp > config.retention_ms),
                active_too=True)
        if retention and config.delete and config.retention_bytes >= 0:
            excess = [self.size_bytes - config.retention_bytes]

            def over_size(segment: LogSegment, _: int) -> bool:
                if excess[0] - segment.size < 0:
                    return False
                excess[0] -= segment.size
                return True

            deleted += self._delete_oldest(over_size, active_too=True)
        deleted += self._delete_segments_below_log_start()
        self._close_retired(now_ms)
        self.producer_state.expire(now_ms)
        if config.compact:
            from .cleaner import clean_log

            if (clean_max_bytes is None or clean_max_bytes > 0) and not self.uncleanable:
                # no-op unless cleaning is due or a pass is under way
                try:
                    self.cleaner_bytes_read = clean_log(self, now_ms, max_bytes=clean_max_bytes).bytes_read
                except OSError as error:  # a full disk: drop the pass, a later tick starts anew
                    write_error(self.directory, "compaction", error)
                    self._try(self._abort_cleaning, "discarding a compaction pass")
                except LogError as error:  # a damaged batch: Kafka's "uncleanable partition"
                    self.uncleanable = str(error)
                    self._try(self._abort_cleaning, "discarding a compaction pass")
                    _log.error("%s: compaction stopped until the next restart: %s",
                               faults_partition(self.directory), error)
        return deleted

    def _delete_oldest(self, should_delete, active_too: bool = False) -> int:  # type: ignore[no-untyped-def]
        """Delete segments from the oldest while `should_delete(segment, deleted so far)`. With
        `active_too` (retention), an active segment that is due goes too, as in Kafka: it is
        rolled first, so the log keeps an empty active segment at the log end offset and the
        "set retention.ms low and watch the records go" lab works without waiting for a roll."""
        deleted = 0
        while len(self._segments) > 1 and should_delete(self._segments[0], deleted):
            self._retire(self._segments.pop(0))
            self._bases.pop(0)
            deleted += 1
        if active_too and len(self._segments) == 1 and self._segments[0].size > 0 \
                and should_delete(self._segments[0], deleted) and self._roll_for_retention():
            self._retire(self._segments.pop(0))
            self._bases.pop(0)
            deleted += 1
        if deleted:
            self._advance_log_start_offset(self._segments[0].base_offset)
        return deleted

    def _roll_for_retention(self) -> bool:
        try:
            self.roll(self._now_ms)
        except LogError:
            return False  # logged by roll; the segment goes at a later check
        return True

    def _delete_segments_below_log_start(self) -> int:
        return self._delete_oldest(
            lambda segment, _: self._segments[1].base_offset <= self.log_start_offset)

    def _advance_log_start_offset(self, offset: int) -> None:
        if offset <= self.log_start_offset:
            return
        self.log_start_offset = offset
        self.leader_epoch_cache.truncate_from_start(offset)
        self._try(self._write_log_start_offset, "writing the log start offset")

    def _retire(self, segment: LogSegment) -> None:
        """Unlink a segment's files now; close its handle after file.delete.delay.ms."""
        for suffix in SEGMENT_SUFFIXES:
            self.fs.remove(segment.path(suffix))
        self._retired.append(_Retired(segment.log, self._now_ms))

    def _close_retired(self, now_ms: int) -> None:
        delay = self.config.file_delete_delay_ms
        keep = []
        for retired in self._retired:
            if now_ms - retired.retired_ms >= delay:
                retired.handle.close()
            else:
                keep.append(retired)
        self._retired = keep

    # --- durability and lifecycle -------------------------------------------------------------
    def maybe_flush(self, now_ms: int) -> None:
        """fsync when flush.messages or flush.ms says so (call from a timer for flush.ms);
        checkpoint the recovery point when it moved and the interval has passed. Never raises:
        a failed fsync or checkpoint is logged and tried again on the next call (the recovery
        point stays where it was, which is always safe)."""
        self._now_ms = max(self._now_ms, now_ms)
        if self.offline is not None:
            return
        config = self.config
        if self._unflushed_records and (
                (0 <= config.flush_messages <= self._unflushed_records)
                or (config.flush_ms >= 0 and now_ms - self._last_flush_ms >= config.flush_ms)):
            if self._try(self.flush, "fsync of the active segment"):
                self._last_flush_ms = now_ms
        if (self.recovery_point != self._checkpointed_recovery_point
                and now_ms - self._last_checkpoint_ms >= _CHECKPOINT_INTERVAL_MS):
            if self._try(self.checkpoint, "checkpointing the recovery point"):
                self._last_checkpoint_ms = now_ms
        self.leader_epoch_cache.persist_if_dirty()
        if self._retired:
            self._close_retired(now_ms)

    def flush(self) -> None:
        """fsync the active segment: everything appended so far is durable (one fsync; none
        when nothing was appended since the last, so closing an idle log costs no disk wait)."""
        if self.recovery_point != self.log_end_offset or self._unflushed_records:
            active = self._segments[-1]
            active.log.sync()
            if active.txn_index is not None:
                active.txn_index.sync()
            if self._dirs_unsynced:  # a new log's first data: its directory entry too
                self.fs.sync_dir(self.directory)
                self.fs.sync_dir(posixpath.dirname(self.directory.rstrip("/")) or "/")
                self._dirs_unsynced = False
        self.leader_epoch_cache.sync()  # before the recovery point can move past its epochs
        self._unflushed_records = 0
        self.recovery_point = self.log_end_offset

    def checkpoint(self) -> None:
        """Flush, persist the active segment's indexes and write the recovery point, so that
        recovery after a crash verifies only what was appended later."""
        self.flush()
        active = self._segments[-1]
        if active.max_timestamp >= 0:  # lets recovery restore max_timestamp from the index
            active.time_index.maybe_append(active.max_timestamp, active.max_timestamp_offset)
        active.persist_indexes()
        self._write_recovery_point()

    def _write_recovery_point(self) -> None:
        if self._checkpointed_recovery_point != self.recovery_point:
            checkpoints.write_offset_checkpoint(
                self.fs, self.directory, checkpoints.RECOVERY_POINT_FILE, self.recovery_point)
            self._checkpointed_recovery_point = self.recovery_point

    def _write_log_start_offset(self) -> None:
        checkpoints.write_offset_checkpoint(
            self.fs, self.directory, checkpoints.LOG_START_OFFSET_FILE, self.log_start_offset)

    def close(self) -> None:
        if self.closed:
            return
        self.fs.drain_background()  # a rolled segment's flush first: checkpoints stay ordered
        if self.offline is not None:  # write nothing: the files stay as they were found
            for segment in self._segments:
                segment.close()
            self.closed = True
            return
        self._try(self._abort_cleaning, "discarding a compaction pass")
        self._try(self.checkpoint, "checkpointing at close")
        if self.log_end_offset > self.log_start_offset or self.producer_state.producers:
            # An empty log needs no snapshot: there is nothing to scan at the next start.
            self._try(lambda: self.producer_state.write_snapshot(self.fs, self.directory, self.log_end_offset),
                      "writing the producer-state snapshot")
        for segment in self._segments:
            segment.close()
        for retired in self._retired:
            retired.handle.close()
        self._retired = []
        self.closed = True

    def delete(self) -> None:
        """Topic deletion: close everything and remove the partition directory."""
        self._abort_cleaning()
        for segment in self._segments:
            segment.close()
        for retired in self._retired:
            retired.handle.close()
        self.closed = True
        self.fs.remove_tree(self.directory)

    def _abort_cleaning(self) -> None:
        if self.cleaner_pass is not None:
            from .cleaner import abort_cleaning

            abort_cleaning(self)

    # --- introspection ------------------------------------------------------------------------
    @property
    def segments(self) -> list[LogSegment]:
        return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        if not config.compact:
            self._abort_cleaning()  # no longer compacted: drop a pass under way
        for segment in self._segments:
            segment.index_interval_bytes = config.index_interval_bytes

    def replace_segments(self, old: list[LogSegment], new: LogSegment) -> None:
        """Cleaner hook: `new` (already in place on disk) replaces the consecutive `old`."""
        first = self._segments.index(old[0])
        assert self._segments[first : first + len(old)] == old, "segments must be consecutive"
        assert old[-1] is not self._segments[-1], "the active segment is never replaced"
        self._segments[first : first + len(old)] = [new]
        self._bases = [s.base_offset for s in self._segments]
        for segment in old:
            self._retired.append(_Retired(segment.log, self._now_ms))


def _planted(name: str) -> bool:
    """A test's planted bug (moldau.raft.faults), imported here: moldau.raft imports the log."""
    from moldau.raft import faults

    return faults.active(name)
