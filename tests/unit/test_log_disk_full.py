"""A full disk under the log (issue 14, finding 3): appends, rolls, checkpoints, leader epochs
and compaction fail cleanly with KAFKA_STORAGE_ERROR or are retried later; nothing
acknowledged is lost and everything works again, without a reopen, once space returns."""

from __future__ import annotations

import logging

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, LogError, MemoryFileSystem, PartitionLog, faults
from moldau.records import Record, build_batch, iterate_batches, iterate_records

DIR = "/data/full-0"


def batch(offset: int, value_bytes: int = 100, key: bytes | None = None) -> bytes:
    return build_batch([Record(0, 1000 + offset, key, b"v%d-" % offset + b"x" * value_bytes)])


def values(log: PartitionLog) -> list[bytes]:
    return [r.value.split(b"-")[0] for r in log.records()]


def fill(fs: MemoryFileSystem) -> None:
    """No byte left."""
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values())


def test_append_on_a_full_disk_fails_cleanly_and_recovers_without_reopen() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    for offset in range(10):
        log.append_as_leader(batch(offset), 0, 0)
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values()) + 50  # half a batch fits
    size = log.active_segment.size
    counted = faults.COUNTERS.write_errors
    with pytest.raises(LogError) as error:
        log.append_as_leader(batch(10), 0, 0)
    assert error.value.error_code == ErrorCode.kafka_storage_error
    assert log.active_segment.size == size, "no partial batch stays behind"
    assert len(fs.files[log.active_segment.path(".log")].data) == size
    assert log.log_end_offset == 10
    assert faults.COUNTERS.write_errors > counted
    fs.capacity_bytes = None  # space is back
    assert log.append_as_leader(batch(10), 0, 0).first_offset == 10
    fs.crash("keep")  # kill -9
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)
    assert values(again) == [b"v%d" % i for i in range(11)]


def test_roll_on_a_full_disk_keeps_the_old_segment_active() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=600, index_interval_bytes=50)
    log = PartitionLog.open(fs, DIR, config, 0)
    while len(log.segments) == 1 or log.active_segment.size + len(batch(0)) <= 600:
        log.append_as_leader(batch(log.log_end_offset), 0, 0)
    fill(fs)  # the next append rolls, and the roll writes index files
    segments = [s.base_offset for s in log.segments]
    with pytest.raises(LogError) as error:
        log.append_as_leader(batch(log.log_end_offset), 0, 0)
    assert error.value.error_code == ErrorCode.kafka_storage_error
    assert [s.base_offset for s in log.segments] == segments
    assert sorted(p for p in fs.files if p.endswith(".log")) == sorted(s.path(".log") for s in log.segments)
    fs.capacity_bytes = None
    end = log.log_end_offset
    assert log.append_as_leader(batch(end), 0, 0).first_offset == end
    assert len(log.segments) == len(segments) + 1
    assert values(log) == [b"v%d" % i for i in range(end + 1)]


def test_checkpoints_that_fail_are_retried_and_logged_sparingly(caplog) -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(flush_ms=0), 0)
    log.append_as_leader(batch(0), 0, 0)
    fill(fs)
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        for tick in range(1, 30):
            log.maybe_flush(tick * 61_000)  # a checkpoint is due each time; it never fits
    lines = [r for r in caplog.records if "checkpointing the recovery point" in r.getMessage()]
    assert 1 <= len(lines) <= 3
    fs.capacity_bytes = None
    log.maybe_flush(10**9)
    assert log._checkpointed_recovery_point == 1


def test_flush_messages_one_does_not_acknowledge_an_append_whose_fsync_failed() -> None:
    class FailingSync(MemoryFileSystem):
        failing = False

        def open(self, path, *, create=False):
            handle = super().open(path, create=create)
            original = handle.sync

            def sync():
                if self.failing:
                    raise OSError(5, "Input/output error")
                original()

            handle.sync = sync
            return handle

    fs = FailingSync()
    log = PartitionLog.open(fs, DIR, LogConfig(flush_messages=1), 0)
    log.append_as_leader(batch(0), 0, 0)
    fs.failing = True
    with pytest.raises(LogError) as error:
        log.append_as_leader(batch(1), 0, 0)
    assert error.value.error_code == ErrorCode.kafka_storage_error


def test_leader_epoch_checkpoint_that_cannot_be_written_is_written_later() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.append_as_leader(batch(0), 0, 0)
    fill(fs)
    log.leader_epoch_cache.assign(3, 1)  # leadership moved: the checkpoint does not fit
    assert log.leader_epoch_cache.entries[-1] == (3, 1)
    assert log.leader_epoch_cache.dirty
    fs.capacity_bytes = None
    log.maybe_flush(1)
    assert not log.leader_epoch_cache.dirty
    assert b"3 1" in fs.read_file(DIR + "/leader-epoch-checkpoint")


def test_compaction_on_a_full_disk_drops_its_pass() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=700, cleanup_policy="compact", min_cleanable_dirty_ratio=0.01,
                       min_compaction_lag_ms=0)
    log = PartitionLog.open(fs, DIR, config, 0)
    for offset in range(40):
        key = b"first" if offset == 0 else b"k%d" % (offset % 3)  # the first group keeps a record
        log.append_as_leader(batch(offset, key=key), 0, 0)
    fill(fs)
    counted = faults.COUNTERS.write_errors
    for now in range(3):
        log.enforce_retention(10**6 + now)  # cleaning is due: it would write .cleaned files
    assert faults.COUNTERS.write_errors > counted
    assert log.cleaner_pass is None
    assert not any(p.endswith((".cleaned", ".swap")) for p in fs.files)
    fs.capacity_bytes = None
    size = log.size_bytes
    for now in range(3, 10):
        log.enforce_retention(10**6 + now)
    assert log.size_bytes < size
    latest = {}
    for record in log.records():
        latest[record.key] = record.value
    assert sorted(latest) == [b"first", b"k0", b"k1", b"k2"]


def test_open_on_a_full_disk_works_and_appends_fail() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    for offset in range(5):
        log.append_as_leader(batch(offset), 0, 0)
    fs.crash("keep")
    fill(fs)
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)  # its checkpoint does not fit: fine
    assert values(again) == [b"v%d" % i for i in range(5)]
    new = PartitionLog.open(fs, "/data/new-0", LogConfig(), 0)  # empty files fit
    with pytest.raises(LogError) as error:
        new.append_as_leader(batch(0), 0, 0)
    assert error.value.error_code == ErrorCode.kafka_storage_error


def test_abort_marker_whose_index_entry_does_not_fit_keeps_the_entry_and_writes_it_later() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.producer_state.mark_verified(9, 0)
    log.append_as_leader(build_batch([Record(0, 1000, b"k", b"v")], producer_id=9, producer_epoch=0,
                                     base_sequence=0, transactional=True), 0, 1000)
    marker_bytes = 78  # an end-transaction marker batch
    fs.capacity_bytes = sum(len(f.data) for f in fs.files.values()) + marker_bytes  # no room for the index
    log.append_end_txn_marker(9, 0, 0, False, 0, 2000)  # abort: the data at offset 0 is aborted
    assert [t.first_offset for t in log.collect_aborted_transactions(0, 10)] == [0]
    fs.capacity_bytes = None
    log.close()  # space is back: the index is written whole at the next flush
    path = log.segments[0].path(".txnindex")
    assert fs.exists(path) and len(fs.read_file(path)) > 0
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)  # a clean restart trusts the file
    assert [t.first_offset for t in again.collect_aborted_transactions(0, 10)] == [0]
