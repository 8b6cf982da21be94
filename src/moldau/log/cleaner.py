"""Log compaction (cleanup.policy=compact): keep the latest record per key.

Theory of operation
-------------------
Simpler than Kafka's LogCleaner, same guarantees. One pass (`clean_log`, run by PartitionLog.enforce_retention for compacted topics whenever a
segment was closed since the last pass, per `cleaner-offset-checkpoint`) over the *cleanable*
segments — all non-active segments from the oldest up to the first one whose max timestamp is
newer than now - min.compaction.lag.ms:

1. Build the offset map key -> last offset of that key within the cleanable range.
2. Rewrite each batch keeping a record only if it is the latest for its key (records without
   a key are kept). A tombstone (null value) is dropped once its batch's max timestamp is
   older than now - delete.retention.ms (Kafka uses a per-batch delete horizon set at the
   first cleaning; using the batch timestamp gives consumers at least as long to see it).
   Control batches (transaction markers) are kept whole. A batch that keeps every record is
   copied byte for byte; a rewritten batch keeps its base offset, last_offset_delta,
   producer id/epoch, base sequence, leader epoch, compression and flags, so offsets never
   move and producer metadata survives. A batch that keeps nothing is dropped (Kafka may keep
   an empty batch to preserve producer state; Moldau has no producer-state snapshot yet).
3. All cleanable segments become one segment with the first one's base offset, replaced by a
   crash-safe protocol: write `<base>.log.cleaned` and fsync it; rename it to
   `<base>.<end>.swap` (the commit point; `end` is the base offset of the first segment kept);
   delete the old segments; rename the swap to `<base>.log`. `finish_interrupted_cleaning`
   (called by PartitionLog.open) deletes a leftover `.cleaned` and completes a `.swap`.

Offsets removed by compaction leave gaps; reads skip them (a fetch at a missing offset gets
the next batch), exactly as in Kafka.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from moldau.records.batch import LOG_OVERHEAD, BatchHeader
from moldau.records.record import Record, build_batch, iterate_records

from .checkpoints import CLEANER_OFFSET_FILE, write_offset_checkpoint
from .fs import FileSystem
from .partition_log import PartitionLog
from .segment import LogSegment, segment_file_name

_NO_CRC_CHECK = 2**63 - 1  # we wrote these bytes ourselves: re-index without CRC checks


@dataclass(slots=True)
class CleanResult:
    segments_cleaned: int = 0
    records_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def clean_log(log: PartitionLog, now_ms: int) -> CleanResult:
    """Compact the cleanable segments of `log` (no-op unless its policy includes compact)."""
    if not log.config.compact:
        return CleanResult()
    candidates = _cleanable_segments(log, now_ms)
    if not candidates:
        return CleanResult()
    end_offset = log.segments[len(candidates)].base_offset
    expiry_ms = log.cleaner_tombstone_expiry_ms
    if end_offset <= log.cleaner_checkpoint and (expiry_ms < 0 or 0 < now_ms < expiry_ms):
        return CleanResult()  # nothing closed since the last pass, no tombstone due
    latest = _build_offset_map(log, candidates)
    tombstone_horizon_ms = now_ms - log.config.delete_retention_ms
    result = CleanResult(len(candidates), 0, sum(s.size for s in candidates), 0)
    chunks: list[bytes] = []
    expiries = [-1]
    for segment in candidates:
        for header, data in _segment_batches(segment):
            kept, removed = _clean_batch(header, data, latest, tombstone_horizon_ms,
                                         log.config.delete_retention_ms, expiries)
            result.records_removed += removed
            if kept is not None:
                chunks.append(kept)
    new = _swap_in(log, candidates, chunks, end_offset, now_ms)
    log.cleaner_checkpoint = end_offset
    log.cleaner_tombstone_expiry_ms = expiries[0]
    write_offset_checkpoint(log.fs, log.directory, CLEANER_OFFSET_FILE, end_offset)
    result.bytes_after = new.size
    return result


def _cleanable_segments(log: PartitionLog, now_ms: int) -> list[LogSegment]:
    horizon = now_ms - log.config.min_compaction_lag_ms
    cleanable = []
    for segment in log.segments[:-1]:
        if segment.max_timestamp > horizon:
            break
        cleanable.append(segment)
    return cleanable


def _segment_batches(segment: LogSegment):  # type: ignore[no-untyped-def]
    for header in segment.scan_headers(0):
        size = header.batch_length + LOG_OVERHEAD
        yield header, segment.log.pread(size, header.position)


def _build_offset_map(log: PartitionLog, segments: list[LogSegment]) -> dict[bytes, int]:
    latest: dict[bytes, int] = {}
    for segment in segments:
        for header, data in _segment_batches(segment):
            if header.is_control:
                continue
            for record in iterate_records(data):
                if record.key is not None:
                    latest[record.key] = record.offset
    return latest


def _clean_batch(header: BatchHeader, data: bytes, latest: dict[bytes, int],
                 tombstone_horizon_ms: int, delete_retention_ms: int,
                 expiries: list[int]) -> tuple[bytes | None, int]:
    """(the batch to keep or None, records removed); expiries[0] tracks the earliest time a
    kept tombstone may be dropped (-1: none kept)."""
    if header.is_control:
        return data, 0
    records = list(iterate_records(data))
    kept: list[Record] = []
    for record in records:
        if record.key is not None and latest.get(record.key) != record.offset:
            continue
        if record.value is None:
            if header.max_timestamp < tombstone_horizon_ms:
                continue
            due_ms = header.max_timestamp + delete_retention_ms + 1
            expiries[0] = due_ms if expiries[0] < 0 else min(expiries[0], due_ms)
        kept.append(record)
    removed = len(records) - len(kept)
    if removed == 0:
        return data, 0
    if not kept:
        return None, removed
    log_append_time = bool(header.timestamp_type)
    rebuilt = build_batch(
        kept, base_offset=header.base_offset, compression=header.compression,
        log_append_time=log_append_time, producer_id=header.producer_id,
        producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
        transactional=header.is_transactional,
        partition_leader_epoch=header.partition_leader_epoch,
        last_offset_delta=header.last_offset_delta,
        max_timestamp=header.max_timestamp if log_append_time else None,
    )
    return rebuilt, removed


def _swap_name(base_offset: int, end_offset: int) -> str:
    return f"{base_offset:020d}.{end_offset:020d}.swap"


def _swap_in(log: PartitionLog, old: list[LogSegment], chunks: list[bytes], end_offset: int,
             now_ms: int) -> LogSegment:
    fs, directory = log.fs, log.directory
    base = old[0].base_offset
    cleaned_path = posixpath.join(directory, segment_file_name(base, ".log.cleaned"))
    fs.remove(cleaned_path)
    handle = fs.open(cleaned_path, create=True)
    if chunks:
        handle.append(chunks)
    handle.sync()
    handle.close()
    swap_path = posixpath.join(directory, _swap_name(base, end_offset))
    fs.rename(cleaned_path, swap_path)
    fs.sync_dir(directory)
    _replace_with_swap(fs, directory, base, end_offset, [s.base_offset for s in old])
    new = _open_cleaned_segment(log, base, now_ms)
    log.replace_segments(old, new)
    return new


def _replace_with_swap(fs: FileSystem, directory: str, base: int, end: int,
                       old_bases: list[int]) -> None:
    for old_base in old_bases:
        assert base <= old_base < end, "a swap replaces segments inside its range only"
        for suffix in (".log", ".index", ".timeindex"):
            fs.remove(posixpath.join(directory, segment_file_name(old_base, suffix)))
    fs.rename(posixpath.join(directory, _swap_name(base, end)),
              posixpath.join(directory, segment_file_name(base, ".log")))
    fs.sync_dir(directory)


def _open_cleaned_segment(log: PartitionLog, base: int, now_ms: int) -> LogSegment:
    path = posixpath.join(log.directory, segment_file_name(base, ".log"))
    segment = LogSegment(log.fs, log.directory, base, log.fs.open(path),
                         log.config.index_interval_bytes, now_ms)
    segment.recover_from(0, _NO_CRC_CHECK)
    segment.seal()
    segment.persist_indexes()
    return segment


def finish_interrupted_cleaning(fs: FileSystem, directory: str) -> None:
    """On open: drop a half-written `.cleaned`; complete a committed `.swap`."""
    for name in fs.listdir(directory):
        if name.endswith(".log.cleaned"):
            fs.remove(posixpath.join(directory, name))
    for name in fs.listdir(directory):
        parts = name.split(".")
        if len(parts) == 3 and parts[2] == "swap" and parts[0].isdigit() and parts[1].isdigit():
            base, end = int(parts[0]), int(parts[1])
            old_bases = []
            for other in fs.listdir(directory):
                stem, _, suffix = other.partition(".")
                if suffix == "log" and stem.isdigit() and base <= int(stem) < end:
                    old_bases.append(int(stem))
            _replace_with_swap(fs, directory, base, end, sorted(old_bases))
