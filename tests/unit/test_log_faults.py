"""Storage faults (issue 14): every kind of damage to a partition's files, one test each.

For each kind the log opens, keeps every intact record, says what it did (WARNING for crash
debris it repaired, ERROR for damage it refused to repair), and reads of the damaged offsets
raise instead of returning nothing forever. Damage below the recovery point never removes or
changes a file: the log opens offline (KAFKA_STORAGE_ERROR).
"""

from __future__ import annotations

import logging
import posixpath

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, LogError, MemoryFileSystem, PartitionLog
from moldau.log import faults
from moldau.log.segment import segment_file_name
from moldau.records import Record, build_batch, iterate_batches, iterate_records
from moldau.records.batch import OFFSET_BASE_OFFSET, OFFSET_BATCH_LENGTH

DIR = "/data/orders-0"
CONFIG = LogConfig(segment_bytes=1200, index_interval_bytes=150)
BATCH_VALUE_BYTES = 60


def batch(offset: int) -> bytes:
    return build_batch([Record(0, 1000 + offset, b"k%d" % offset,
                               b"v%d-" % offset + b"x" * BATCH_VALUE_BYTES)])


def build(count: int = 120, close: bool = True) -> tuple[MemoryFileSystem, PartitionLog]:
    """A log of `count` one-record batches over several segments; closed cleanly (the
    recovery point is then the log end offset) unless `close` is False."""
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, CONFIG, 0)
    for offset in range(count):
        log.append_as_leader(batch(offset), 0, 0)
    if close:
        log.close()
    else:
        fs.crash("keep")
    return fs, log


def log_path(base: int, suffix: str = ".log") -> str:
    return posixpath.join(DIR, segment_file_name(base, suffix))


def batch_starts(data: bytes | bytearray) -> list[int]:
    starts, position = [], 0
    while position + 12 <= len(data):
        starts.append(position)
        position += int.from_bytes(data[position + 8 : position + 12], "big") + 12
    return starts


def snapshot(fs: MemoryFileSystem) -> dict[str, bytes]:
    return {path: bytes(file.data) for path, file in fs.files.items()}


def offsets_read(log: PartitionLog, start: int, end: int) -> list[int]:
    """Offsets of the records read from `start` up to `end` (exclusive), batch by batch."""
    got, offset = [], start
    while offset < end:
        data = log.read(offset, 1 << 20, end).read_bytes()
        if not data:
            break
        for header, body in iterate_batches(data):
            got += [r.offset for r in iterate_records(body) if r.offset >= offset]
            offset = header.next_offset
    return got


def reopen(fs: MemoryFileSystem) -> PartitionLog:
    return PartitionLog.open(fs, DIR, CONFIG, 0)


def test_flipped_length_in_last_batch_of_a_closed_segment_deletes_nothing(caplog) -> None:
    """Finding 1: the cut at the bad batch used to delete every later segment."""
    fs, old = build()
    bases = [s.base_offset for s in old.segments]
    damaged = bases[3]
    data = fs.files[log_path(damaged)].data
    last = batch_starts(data)[-1]
    data[last + OFFSET_BATCH_LENGTH + 3] ^= 0x40  # the length field of the segment's last batch
    before = snapshot(fs)
    counted = faults.COUNTERS.damaged_logs

    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        log = reopen(fs)

    assert snapshot(fs) == before, "no file may change"
    assert [s.base_offset for s in log.segments] == bases
    assert log.log_end_offset == 120
    assert log.offline is not None and log.offline.kind == "damaged_segment"
    first_bad = bases[4] - 1  # the damaged batch holds the segment's last offset
    assert (log.offline.first_offset, log.offline.end_offset) == (first_bad, bases[4])
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert segment_file_name(damaged, ".log") in errors[0] and f"byte {last}" in errors[0]
    assert "orders-0" in errors[0] and "offline" in errors[0]
    assert faults.COUNTERS.damaged_logs == counted + 1
    # Intact records before and after the damage stay readable; the damaged offset errs.
    assert offsets_read(log, 0, first_bad) == list(range(first_bad))
    assert offsets_read(log, bases[4], 120) == list(range(bases[4], 120))
    with pytest.raises(LogError) as error:
        log.read(first_bad, 1 << 20)
    assert error.value.error_code == ErrorCode.kafka_storage_error
    assert offsets_read(log, first_bad - 1, first_bad) == [first_bad - 1]
    with pytest.raises(LogError) as error:
        log.append_as_leader(batch(120), 0, 0)
    assert error.value.error_code == ErrorCode.kafka_storage_error
    log.enforce_retention(10**12)
    log.leader_epoch_cache.assign(5, 120)  # leadership moves (in a cluster): memory only
    log.close()
    assert snapshot(fs) == before, "an offline log writes nothing, not even at close"


def test_flipped_base_offset_of_a_closed_segment_batch_is_damage() -> None:
    """The CRC does not cover base_offset: a flip there is caught by the next segment's base."""
    fs, old = build()
    bases = [s.base_offset for s in old.segments]
    data = fs.files[log_path(bases[2])].data
    last = batch_starts(data)[-1]
    data[last + OFFSET_BASE_OFFSET + 6] ^= 0x01  # base offset + 256
    before = snapshot(fs)
    log = reopen(fs)
    assert snapshot(fs) == before
    assert log.offline is not None
    assert [s.base_offset for s in log.segments] == bases
    assert offsets_read(log, bases[3], 120) == list(range(bases[3], 120))


def test_bad_crc_in_the_middle_of_a_segment_answers_corrupt_message(caplog) -> None:
    """Finding 2: a read used to return nothing, forever, at the bad batch."""
    fs, old = build()
    base = old.segments[2].base_offset
    data = fs.files[log_path(base)].data
    starts = batch_starts(data)
    bad = base + 4
    data[starts[4] + 70] ^= 0xFF  # inside the records of the batch at offset base+4
    log = reopen(fs)  # below the recovery point the CRCs are trusted at start, as in Kafka
    assert log.offline is None
    assert offsets_read(log, base, bad) == list(range(base, bad))
    # A read from before the bad batch stops before it; a read at it errs.
    data = log.read(base, 1 << 20, 120).read_bytes()
    assert [h.last_offset for h, _ in iterate_batches(data)] == list(range(base, bad))
    counted = faults.COUNTERS.corrupt_reads
    with caplog.at_level(logging.ERROR, logger="moldau.log"):
        for _ in range(3):
            with pytest.raises(LogError) as error:
                log.read(bad, 1 << 20)
            assert error.value.error_code == ErrorCode.corrupt_message
            assert str(bad) in str(error.value)
    assert faults.COUNTERS.corrupt_reads == counted + 3
    reported = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(reported) == 1, "logged once per segment"
    assert segment_file_name(base, ".log") in reported[0].getMessage()
    # The batches after it are served; the log stays online.
    assert offsets_read(log, bad + 1, 120) == list(range(bad + 1, 120))
    assert log.append_as_leader(batch(120), 0, 0).first_offset == 120


def test_bad_length_in_the_middle_of_a_segment_answers_corrupt_message() -> None:
    fs, old = build()
    base = old.segments[1].base_offset
    data = fs.files[log_path(base)].data
    starts = batch_starts(data)
    data[starts[2] + OFFSET_BATCH_LENGTH : starts[2] + OFFSET_BATCH_LENGTH + 4] = b"\x7f\x00\x00\x00"
    log = reopen(fs)
    bad = base + 2
    assert offsets_read(log, base, bad) == [base, base + 1]
    with pytest.raises(LogError) as error:
        log.read(bad, 1 << 20)
    assert error.value.error_code == ErrorCode.corrupt_message
    next_base = log.segments[2].base_offset
    assert offsets_read(log, next_base, 120) == list(range(next_base, 120))


def test_torn_tail_after_the_recovery_point_is_cut_and_reported(caplog) -> None:
    fs, old = build(close=False)  # killed: the active segment is past the recovery point
    active = old.active_segment.path(".log")
    size = len(fs.files[active].data)
    del fs.files[active].data[size - 25 :]
    counted = faults.COUNTERS.recovery_truncated_bytes
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        log = reopen(fs)
    assert log.offline is None
    assert log.log_end_offset == 119
    assert offsets_read(log, 0, 119) == list(range(119))
    warning = [r.getMessage() for r in caplog.records if "torn tail" in r.getMessage()]
    assert len(warning) == 1
    dropped = len(batch(119)) - 25
    assert f"{dropped} bytes dropped after offset 118" in warning[0]
    assert posixpath.basename(active) in warning[0] and "orders-0" in warning[0]
    assert faults.COUNTERS.recovery_truncated_bytes == counted + dropped
    assert log.append_as_leader(batch(119), 0, 0).first_offset == 119
    with pytest.raises(LogError) as error:
        log.read(121, 1 << 20)
    assert error.value.error_code == ErrorCode.offset_out_of_range


def test_zero_filled_tail_is_cut() -> None:
    """What some file systems leave after a power loss: the size grew, the data did not."""
    fs, old = build(close=False)
    active = old.active_segment.path(".log")
    size = len(fs.files[active].data)
    fs.files[active].data += bytes(300)
    log = reopen(fs)
    assert log.offline is None and log.log_end_offset == 120
    assert len(fs.files[active].data) == size
    assert log.append_as_leader(batch(120), 0, 0).first_offset == 120


def test_truncated_tail_below_the_recovery_point_is_damage() -> None:
    """After a clean shutdown every batch is durable: a shorter file lost acknowledged data."""
    fs, old = build()
    active = old.active_segment.path(".log")
    del fs.files[active].data[-25:]
    before = snapshot(fs)
    log = reopen(fs)
    assert log.offline is not None
    assert snapshot(fs) == before
    assert offsets_read(log, 0, 119) == list(range(119))
    with pytest.raises(LogError) as error:
        log.read(119, 1 << 20)
    assert error.value.error_code == ErrorCode.kafka_storage_error


def test_bad_index_is_rebuilt(caplog) -> None:
    fs, old = build()
    base = old.segments[1].base_offset
    index = fs.files[log_path(base, ".index")].data
    assert len(index) >= 16
    index[4:8] = (7).to_bytes(4, "big")  # the first entry points into the middle of a batch
    counted = faults.COUNTERS.index_rebuilds
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        log = reopen(fs)
    assert log.offline is None
    assert offsets_read(log, 0, 120) == list(range(120))
    assert offsets_read(log, base + 3, 120)[0] == base + 3
    assert faults.COUNTERS.index_rebuilds == counted + 1
    assert any("rebuilt" in r.getMessage() and segment_file_name(base, ".log") in r.getMessage()
               for r in caplog.records)


def test_missing_index_is_rebuilt(caplog) -> None:
    fs, old = build()
    base = old.segments[2].base_offset
    fs.remove(log_path(base, ".index"))
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        log = reopen(fs)
    assert log.offline is None
    assert offsets_read(log, 0, 120) == list(range(120))
    assert any("missing" in r.getMessage() and segment_file_name(base, ".log") in r.getMessage()
               for r in caplog.records)


def test_vanished_segment_file_takes_the_log_offline(caplog) -> None:
    fs, old = build()
    bases = [s.base_offset for s in old.segments]
    gone = bases[2]
    fs.remove(log_path(gone))
    before = snapshot(fs)
    with caplog.at_level(logging.ERROR, logger="moldau.log"):
        log = reopen(fs)
    assert snapshot(fs) == before
    assert log.offline is not None and log.offline.kind == "vanished_segment"
    assert (log.offline.first_offset, log.offline.end_offset) == (gone, bases[3])
    assert any(segment_file_name(gone, ".log") in r.getMessage() for r in caplog.records)
    assert offsets_read(log, 0, gone) == list(range(gone))
    assert offsets_read(log, bases[3], 120) == list(range(bases[3], 120))
    for offset in (gone, gone + 1):
        with pytest.raises(LogError) as error:
            log.read(offset, 1 << 20, 120)
        assert error.value.error_code == ErrorCode.kafka_storage_error


def test_every_segment_file_vanished() -> None:
    fs, old = build()
    for segment in old.segments:
        fs.remove(segment.path(".log"))
    log = reopen(fs)
    assert log.offline is not None
    with pytest.raises(LogError):
        log.append_as_leader(batch(0), 0, 0)


def test_empty_segments_after_a_torn_tail_are_removed() -> None:
    """A power loss during a roll: the old segment's unsynced tail is torn and the new,
    empty segment exists. That is crash debris, not damage."""
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, CONFIG, 0)
    for offset in range(5):
        log.append_as_leader(batch(offset), 0, 0)
    fs.crash("keep")
    active = log.active_segment.path(".log")
    del fs.files[active].data[-10:]
    fs.files[log_path(500)] = type(fs.files[active])()  # an empty later segment
    again = reopen(fs)
    assert again.offline is None
    assert again.log_end_offset == 4
    assert not fs.exists(log_path(500))


def test_damage_with_later_data_is_never_cut() -> None:
    """A bad batch past the recovery point is a torn tail only at the end of the log."""
    fs, old = build(close=False)
    base = old.segments[-2].base_offset  # closed, but written after the last checkpoint?
    data = fs.files[log_path(base)].data
    data[batch_starts(data)[1] + 70] ^= 0xFF
    before = snapshot(fs)
    log = reopen(fs)
    if log.offline is None:  # the segment was below the recovery point: found when read
        with pytest.raises(LogError):
            log.read(base + 1, 1 << 20)
    else:
        assert snapshot(fs) == before
    assert all(fs.exists(s.path(".log")) for s in old.segments)


def test_counters_are_plain_numbers_for_a_metrics_exporter() -> None:
    values = faults.counters()
    assert set(values) == set(faults.StorageCounters.NAMES)
    assert all(isinstance(v, int) for v in values.values())


def test_compaction_stops_at_a_damaged_batch_instead_of_copying_it(caplog) -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=700, cleanup_policy="compact", min_cleanable_dirty_ratio=0.01,
                       min_compaction_lag_ms=0)
    log = PartitionLog.open(fs, DIR, config, 0)
    for offset in range(40):
        log.append_as_leader(build_batch([Record(0, 1000, b"k%d" % (offset % 3), b"v%d" % offset)]), 0, 0)
    log.close()
    data = fs.files[log.segments[0].path(".log")].data
    data[batch_starts(data)[1] + 65] ^= 0xFF
    log = reopen_with(fs, config)
    with caplog.at_level(logging.ERROR, logger="moldau.log"):
        for now in range(1, 6):
            log.enforce_retention(10**6 + now)
    assert log.uncleanable and log.cleaner_pass is None
    assert len([r for r in caplog.records if "compaction stopped" in r.getMessage()]) == 1
    assert not any(p.endswith((".cleaned", ".swap")) for p in fs.files)


def reopen_with(fs: MemoryFileSystem, config: LogConfig) -> PartitionLog:
    return PartitionLog.open(fs, DIR, config, 0)


def test_reads_check_old_bytes_once_and_never_what_this_process_appended() -> None:
    fs, old = build(count=30)  # closed: after a restart nothing below the end is known valid
    log = reopen(fs)
    active = log.active_segment
    start_of_new = active.size
    log.append_as_leader(batch(30), 0, 0)
    assert active.is_verified(start_of_new, active.size), "appended by this process"
    assert not active.is_verified(0, start_of_new), "written before the restart: checked when read"
    first = active.base_offset
    log.read(first, 200, 30)  # a consumer catching up reads the old part in steps
    assert active.is_verified(start_of_new, active.size), "the tail stays known valid meanwhile"
    offset = first
    while offset < 30:
        data = log.read(offset, 200, 30).read_bytes()
        offset = [h for h, _ in iterate_batches(data)][-1].next_offset
    assert active.is_verified(0, active.size), "the checked range joined the tail"
