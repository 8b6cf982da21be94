"""PartitionLog: append/read, rolling, indexes, timestamps, retention, truncation, OS file system."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, LogError, MemoryFileSystem, PartitionLog
from moldau.log.checkpoints import (
    read_partition_metadata,
    topic_id_from_string,
    topic_id_to_string,
    write_partition_metadata,
)
from moldau.records import Record, RecordsError, build_batch, iterate_batches, iterate_records
from moldau.runtime.disk import OsFileSystem

DIR = "/data/topic-0"


def batch(count: int = 1, timestamp: int = 1000, value_bytes: int = 10, key: bytes | None = None,
          first_value: int = 0) -> bytes:
    return build_batch([
        Record(i, timestamp + i, key, b"%d" % (first_value + i) + b"x" * value_bytes)
        for i in range(count)
    ])


def open_log(fs=None, directory: str = DIR, now_ms: int = 0, **config) -> PartitionLog:
    return PartitionLog.open(fs or MemoryFileSystem(), directory, LogConfig(**config), now_ms)


def read_offsets(log: PartitionLog, start: int | None = None, max_bytes: int = 1 << 30,
                 max_offset: int | None = None) -> list[int]:
    start = log.log_start_offset if start is None else start
    result = log.read(start, max_bytes, max_offset)
    return [r.offset for _, data in iterate_batches(result.read_bytes())
            for r in iterate_records(data)]


def read_all(log: PartitionLog) -> list[int]:
    """Every offset readable from log_start_offset, following segments."""
    return [record.offset for record in log.records()]


def test_append_assigns_offsets_and_reads_back() -> None:
    log = open_log()
    info = log.append_as_leader(batch(3) + batch(2), leader_epoch=4, now_ms=5)
    assert (info.first_offset, info.last_offset, info.record_count) == (0, 4, 5)
    assert info.assigned_base_offsets() == [0, 3]
    assert log.log_end_offset == 5
    assert read_offsets(log) == [0, 1, 2, 3, 4]
    assert read_offsets(log, 3) == [3, 4]
    assert read_offsets(log, 4) == [3, 4]  # whole batch holding offset 4
    assert log.read(5, 100).region is None
    data = log.read(0, 1 << 20).read_bytes()
    assert all(h.partition_leader_epoch == 4 for h, _ in iterate_batches(data))
    assert log.end_offset_for_epoch(4) == (4, 5)


def test_read_bounds_high_watermark_and_max_bytes() -> None:
    log = open_log()
    for _ in range(10):
        log.append_as_leader(batch(2, value_bytes=100), 0, 0)
    size = len(batch(2, value_bytes=100))
    assert read_offsets(log, 0, max_offset=4) == [0, 1, 2, 3]
    assert read_offsets(log, 0, max_offset=5) == [0, 1, 2, 3]  # batch holding 5 excluded
    assert read_offsets(log, 4, max_offset=4) == []
    result = log.read(0, size * 3 + 5)
    assert result.size == size * 3
    result = log.read(0, 10)  # KIP-74: the first batch even when larger than max_bytes
    assert result.size == size
    assert log.read(0, 10, min_one_batch=False).region is None
    with pytest.raises(LogError) as info:
        log.read(21, 100)
    assert info.value.error_code == ErrorCode.offset_out_of_range


def test_log_append_time_stamps_batches() -> None:
    log = open_log(message_timestamp_type="LogAppendTime")
    info = log.append_as_leader(batch(3, timestamp=5), 0, now_ms=777)
    assert info.log_append_time_ms == 777 and info.max_timestamp == 777
    records = list(iterate_records(log.read(0, 1 << 20).read_bytes()))
    assert [r.timestamp for r in records] == [777, 777, 777]


def test_validation_errors_propagate() -> None:
    log = open_log(max_message_bytes=100)
    with pytest.raises(RecordsError) as info:
        log.append_as_leader(batch(1, value_bytes=200), 0, 0)
    assert info.value.error_code == ErrorCode.message_too_large
    assert log.log_end_offset == 0


def test_roll_by_size_and_index_lookups() -> None:
    log = open_log(segment_bytes=2000, index_interval_bytes=100)
    for i in range(100):
        log.append_as_leader(batch(2, value_bytes=50, first_value=i), 0, 0)
    assert len(log.segments) > 5
    assert all(s.size <= 2000 for s in log.segments)
    assert all(len(s.offset_index) > 0 for s in log.segments[:-1])
    for offset in range(0, 200, 7):
        first = read_offsets(log, offset, max_bytes=1)
        assert first[0] <= offset <= first[-1]
    assert read_all(log) == list(range(200))


def test_roll_by_time_uses_record_timestamps() -> None:
    log = open_log(segment_ms=1000)
    log.append_as_leader(batch(1, timestamp=10_000), 0, 0)
    log.append_as_leader(batch(1, timestamp=10_500), 0, 0)
    assert len(log.segments) == 1
    log.append_as_leader(batch(1, timestamp=11_001), 0, 0)
    assert len(log.segments) == 2 and log.active_segment.base_offset == 2


def test_offset_for_timestamp_and_max_timestamp() -> None:
    log = open_log(segment_bytes=600, index_interval_bytes=50)
    for i in range(30):
        log.append_as_leader(batch(2, timestamp=1000 + 10 * i), 0, 0)
    assert len(log.segments) > 2
    # batch i holds offsets 2i, 2i+1 with timestamps 1000+10i, 1001+10i
    assert log.offset_for_timestamp(0) == (0, 1000)
    assert log.offset_for_timestamp(1001) == (1, 1001)
    assert log.offset_for_timestamp(1002) == (2, 1010)
    assert log.offset_for_timestamp(1155) == (32, 1160)
    assert log.offset_for_timestamp(1292) is None
    assert log.max_timestamp_offset() == (59, 1291)


def test_retention_by_time_and_bytes() -> None:
    log = open_log(segment_bytes=500, retention_ms=1000)
    for i in range(20):
        log.append_as_leader(batch(1, timestamp=i * 100, value_bytes=100), 0, 0)
    segments_before = len(log.segments)
    assert segments_before > 4
    deleted = log.enforce_retention(now_ms=2500)  # keeps segments with max ts >= 1500
    assert deleted > 0 and len(log.segments) < segments_before
    assert all(s.max_timestamp >= 1500 for s in log.segments[:-1])
    assert log.log_start_offset == log.segments[0].base_offset
    assert read_all(log) == list(range(log.log_start_offset, 20))
    with pytest.raises(LogError):
        log.read(0, 100)
    log.update_config(LogConfig(segment_bytes=500, retention_ms=-1, retention_bytes=300))
    log.enforce_retention(now_ms=2500)
    assert log.size_bytes - log.active_segment.size <= 300
    assert len(log.segments) >= 1
    assert log.enforce_retention(now_ms=10**9) == 0 or len(log.segments) == 1


def test_retention_also_takes_a_due_active_segment() -> None:
    """Kafka's lab: set retention.ms low and the records go, without waiting for a roll."""
    log = open_log(retention_ms=2000)
    for i in range(5):
        log.append_as_leader(batch(1, timestamp=1000 + i), 0, 0)
    assert len(log.segments) == 1
    assert log.enforce_retention(now_ms=2500) == 0  # not due yet
    assert log.enforce_retention(now_ms=4000) == 1
    assert (log.log_start_offset, log.log_end_offset) == (5, 5) and read_all(log) == []
    assert len(log.segments) == 1 and log.active_segment.base_offset == 5 and log.active_segment.size == 0
    assert log.enforce_retention(now_ms=10**9) == 0  # an empty active segment stays
    assert log.append_as_leader(batch(1, timestamp=10**9), 0, 0).first_offset == 5

    log.update_config(LogConfig(retention_ms=-1, retention_bytes=0))  # by size, too
    assert log.enforce_retention(now_ms=10**9) == 1 and log.log_start_offset == 6


def test_delete_records_before() -> None:
    log = open_log(segment_bytes=300)
    for _ in range(10):
        log.append_as_leader(batch(1, value_bytes=100), 0, 0)
    assert log.delete_records_before(5) == 5
    assert log.segments[0].base_offset <= 5 < log.segments[0].next_offset
    assert read_all(log)[0] == 5
    with pytest.raises(LogError):
        log.delete_records_before(11)


def test_truncate_to_and_epoch_cache() -> None:
    log = open_log(segment_bytes=400)
    for epoch in (1, 1, 2, 2, 3, 3):
        log.append_as_leader(batch(2, value_bytes=80), epoch, 0)
    assert log.leader_epoch_cache.entries == [(1, 0), (2, 4), (3, 8)]
    assert log.end_offset_for_epoch(2) == (2, 8)
    assert log.truncate_to(5)  # inside the batch 4-5: the whole batch goes
    assert log.log_end_offset == 4
    assert read_all(log) == [0, 1, 2, 3]
    assert log.leader_epoch_cache.entries == [(1, 0)]
    info = log.append_as_leader(batch(1), 4, 0)
    assert info.first_offset == 4
    assert read_all(log) == [0, 1, 2, 3, 4]
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset) == (100, 100)
    assert log.append_as_leader(batch(1), 5, 0).first_offset == 100


def test_follower_append_keeps_offsets_and_epochs() -> None:
    leader = open_log(directory="/a/t-0")
    for epoch in (0, 0, 3):
        leader.append_as_leader(batch(2), epoch, 0)
    follower = open_log(directory="/b/t-0")
    data = leader.read(0, 1 << 20).read_bytes()
    info = follower.append_as_follower(data, now_ms=0)
    assert (info.first_offset, info.last_offset) == (0, 5)
    assert follower.leader_epoch_cache.entries == [(0, 0), (3, 4)]
    assert follower.read(0, 1 << 20).read_bytes() == data
    with pytest.raises(LogError):
        follower.append_as_follower(data, now_ms=0)


def test_reopen_after_clean_close_restores_state() -> None:
    fs = MemoryFileSystem()
    log = open_log(fs, segment_bytes=500, index_interval_bytes=64)
    for i in range(30):
        log.append_as_leader(batch(1, timestamp=i, value_bytes=40), i // 10, 0)
    log.delete_records_before(3)
    state = (log.log_start_offset, log.log_end_offset, log.leader_epoch_cache.entries,
             [(s.base_offset, s.next_offset, s.max_timestamp, len(s.offset_index))
              for s in log.segments])
    log.close()
    syncs = fs.syncs
    again = open_log(fs, segment_bytes=500, index_interval_bytes=64)
    assert fs.syncs == syncs, "a clean restart writes nothing"
    assert state == (again.log_start_offset, again.log_end_offset,
                     again.leader_epoch_cache.entries,
                     [(s.base_offset, s.next_offset, s.max_timestamp, len(s.offset_index))
                      for s in again.segments])
    assert read_all(again) == list(range(3, 30))
    assert again.append_as_leader(batch(1), 3, 0).first_offset == 30


def test_partition_metadata_roundtrip() -> None:
    import uuid

    fs = MemoryFileSystem()
    fs.makedirs(DIR)
    topic_id = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
    write_partition_metadata(fs, DIR, topic_id)
    text = fs.read_file(DIR + "/partition.metadata").decode()
    assert text.startswith("version: 0\ntopic_id: ") and "=" not in text
    assert read_partition_metadata(fs, DIR) == topic_id
    assert topic_id_from_string(topic_id_to_string(topic_id)) == topic_id


def test_os_file_system(tmp_path) -> None:
    fs = OsFileSystem()
    directory = str(tmp_path / "orders-3")
    log = PartitionLog.open(fs, directory, LogConfig(segment_bytes=1000, flush_messages=5), 0)
    for i in range(40):
        log.append_as_leader(batch(1, value_bytes=50, first_value=i), 0, 0)
    result = log.read(0, 1 << 20)
    assert result.region is not None and result.region.fileno() >= 0
    import os

    assert os.pread(result.region.fileno(), result.size, result.region.position) == \
        result.read_bytes()
    log.close()
    names = sorted(os.listdir(directory))
    assert "00000000000000000000.log" in names and "leader-epoch-checkpoint" in names
    again = PartitionLog.open(fs, directory, LogConfig(segment_bytes=1000), 0)
    assert read_all(again) == list(range(40))
    again.delete()
    assert not os.path.exists(directory)


def test_flush_policy() -> None:
    fs = MemoryFileSystem()
    log = open_log(fs, flush_messages=3)
    syncs = fs.syncs
    log.append_as_leader(batch(2), 0, 0)
    assert fs.syncs == syncs
    log.append_as_leader(batch(1), 0, 0)
    assert fs.syncs > syncs and log.recovery_point == 3
    log2 = open_log(fs, directory="/data/other-0", flush_ms=100, now_ms=0)
    log2.append_as_leader(batch(1), 0, 50)
    assert log2.recovery_point == 0
    log2.maybe_flush(150)
    assert log2.recovery_point == 1


def test_write_error_leaves_no_partial_batch() -> None:
    log = open_log()
    log.append_as_leader(batch(2), 0, 0)
    handle = log.active_segment.log
    real_append = handle.append

    def failing_append(chunks):
        real_append([bytes(chunks[0])[:10]])  # a torn write, then the error
        raise OSError(28, "No space left on device")

    handle.append = failing_append
    with pytest.raises(LogError) as info:
        log.append_as_leader(batch(3), 0, 0)
    assert info.value.error_code == ErrorCode.kafka_storage_error
    handle.append = real_append
    assert log.log_end_offset == 2
    assert log.append_as_leader(batch(1), 0, 0).first_offset == 2
    assert read_all(log) == [0, 1, 2]


def test_randomized_reads_against_model() -> None:
    """Seeded: every read returns whole batches starting at the batch holding fetch_offset,
    below the batch holding max_offset, within max_bytes unless it is the first batch."""
    import random

    for seed in range(6):
        rng = random.Random(seed)
        log = open_log(segment_bytes=rng.choice([1500, 100_000]),
                       index_interval_bytes=rng.choice([0, 200, 4096]))
        spans = []  # (base, last, size) of every batch
        for _ in range(120):
            count = rng.randint(1, 5)
            info = log.append_as_leader(batch(count, value_bytes=rng.randint(0, 150)), 0, 0)
            spans.append((info.first_offset, info.last_offset,
                          info.batches[0].batch_length + 12))
        for _ in range(400):
            fetch = rng.randint(0, log.log_end_offset)
            max_offset = rng.randint(fetch, log.log_end_offset)
            max_bytes = rng.choice([0, 1, 100, 500, 3000, 1 << 20])
            result = log.read(fetch, max_bytes, max_offset)
            got = [(h.base_offset, h.last_offset) for h, _ in
                   iterate_batches(result.read_bytes())]
            candidates = [s for s in spans if s[1] >= fetch and s[1] < max_offset]
            if fetch >= max_offset or not candidates:
                assert got == [], (seed, fetch, max_offset)
                continue
            segment_of = {s.base_offset: s for s in log.segments}
            first_segment = max(b for b in segment_of if b <= candidates[0][0])
            next_bases = [b for b in segment_of if b > first_segment]
            limit = min(next_bases) if next_bases else 1 << 62
            expected, used = [], 0
            for base, last, size in candidates:
                if base >= limit or (expected and used + size > max_bytes):
                    break
                if not expected and size > max_bytes:
                    expected.append((base, last))  # KIP-74: the first batch anyway
                    break
                expected.append((base, last))
                used += size
            assert got == expected, (seed, fetch, max_offset, max_bytes)


def test_follower_replicates_gaps_and_a_later_start() -> None:
    follower = open_log(directory="/f/t-0")
    gappy = build_batch([Record(1000, 5, b"a", b"1"), Record(1003, 6, b"b", b"2")],
                        partition_leader_epoch=2, last_offset_delta=4)
    info = follower.append_as_follower(gappy, now_ms=0)
    assert (info.first_offset, info.last_offset) == (1000, 1004)
    assert follower.segments[0].base_offset == 1000 and follower.log_start_offset == 1000
    assert follower.leader_epoch_cache.entries == [(2, 1000)]
    assert read_offsets(follower, 1001) == [1000, 1003]
    assert follower.log_end_offset == 1005


def test_os_append_of_many_batches_spans_several_writev_calls(tmp_path) -> None:
    log = PartitionLog.open(OsFileSystem(), str(tmp_path / "many-0"), LogConfig(), 0)
    payload = b"".join(batch(1, first_value=i) for i in range(700))  # 1400 chunks
    info = log.append_as_leader(payload, 0, 0)
    assert (info.first_offset, info.last_offset) == (0, 699)
    assert log.active_segment.size == len(payload)
    assert read_all(log) == list(range(700))
    log.close()
