"""Leader-epoch cache semantics (Kafka's LeaderEpochFileCache) and log compaction."""

from __future__ import annotations

import pytest

from moldau.log import LeaderEpochCache, LogConfig, MemoryFileSystem, PartitionLog, clean_log
from moldau.log.config import LogConfig as Config
from moldau.log.leader_epoch import format_checkpoint, parse_checkpoint
from moldau.records import Record, build_batch, iterate_batches

DIR = "/data/compacted-0"


def test_epoch_cache_assign_and_end_offsets() -> None:
    fs = MemoryFileSystem()
    fs.makedirs("/d")
    cache = LeaderEpochCache.load(fs, "/d")
    assert cache.end_offset_for_epoch(0, 10) == (-1, -1)
    assert cache.assign(1, 0)
    assert not cache.assign(1, 5)  # same epoch does not move
    cache.assign(3, 10)
    cache.assign(5, 20)
    assert cache.entries == [(1, 0), (3, 10), (5, 20)]
    assert cache.end_offset_for_epoch(5, 42) == (5, 42)
    assert cache.end_offset_for_epoch(3, 42) == (3, 20)
    assert cache.end_offset_for_epoch(4, 42) == (3, 20)  # unknown epoch: largest below it
    assert cache.end_offset_for_epoch(0, 42) == (0, 0)  # older than all: first start
    assert cache.end_offset_for_epoch(6, 42) == (-1, -1)
    assert cache.end_offset_for_epoch(-1, 42) == (-1, -1)
    assert cache.epoch_for_offset(15) == 3
    assert LeaderEpochCache.load(fs, "/d").entries == cache.entries
    cache.assign(4, 15)  # conflicts with (5, 20): removed
    assert cache.entries == [(1, 0), (3, 10), (4, 15)]
    cache.truncate_from_end(12)
    assert cache.entries == [(1, 0), (3, 10)]
    cache.truncate_from_start(11)
    assert cache.entries == [(3, 11)]
    assert fs.read_file("/d/leader-epoch-checkpoint") == b"0\n1\n3 11\n"


def test_epoch_checkpoint_format() -> None:
    text = format_checkpoint([(0, 0), (2, 150)])
    assert text == "0\n2\n0 0\n2 150\n"
    assert parse_checkpoint(text) == [(0, 0), (2, 150)]
    with pytest.raises(ValueError):
        parse_checkpoint("1\n0\n")


def test_log_config_from_kafka_names() -> None:
    config = Config.from_kafka_configs({
        "segment.bytes": "1048576", "retention.ms": "-1", "cleanup.policy": "compact,delete",
        "message.timestamp.type": "LogAppendTime", "flush.messages": str(2**63 - 1),
        "unknown.key": "x",
    })
    assert config.segment_bytes == 1048576 and config.retention_ms == -1
    assert config.compact and config.delete and config.log_append_time
    assert config.flush_messages == -1
    with pytest.raises(ValueError):
        Config.from_kafka_configs({"cleanup.policy": "shred"})
    with pytest.raises(ValueError):
        Config.from_kafka_configs({"segment.bytes": "1"})


_sequences = iter(range(10**9))


def keyed(key: bytes, value: bytes | None, timestamp: int = 1000) -> bytes:
    """One record from idempotent producer 9 (epoch 2): each call takes the next sequence."""
    return build_batch([Record(0, timestamp, key, value)], producer_id=9, producer_epoch=2,
                       base_sequence=next(_sequences))


def contents(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(record.offset, record.key, record.value) for record in log.records()]


def test_compaction_keeps_latest_per_key_and_offsets() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=300, cleanup_policy="compact", delete_retention_ms=1000)
    log = PartitionLog.open(fs, DIR, config, 0)
    writes = [(b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"c", b"1"), (b"b", None),
              (b"a", b"3"), (b"d", b"1"), (b"c", b"2"), (b"e", b"1"), (b"e", b"2")]
    for key, value in writes:
        log.append_as_leader(keyed(key, value), 0, 0)
    active_base = log.active_segment.base_offset
    before = contents(log)
    result = clean_log(log, now_ms=1500)  # tombstone (ts 1000) is newer than 1500 - 1000
    assert result.records_removed > 0
    after = contents(log)
    cleaned = [(o, k, v) for o, k, v in after if o < active_base]
    latest = {}
    for offset, key, value in before:
        if offset < active_base:
            latest[key] = offset
    assert [o for o, _, _ in cleaned] == sorted(latest.values())
    assert (4, b"b", None) in after  # tombstone kept within delete.retention.ms
    assert [r for r in after if r[0] >= active_base] == [r for r in before if r[0] >= active_base]
    clean_log(log, now_ms=5000)
    assert all(not (k == b"b" and v is None) for _, k, v in contents(log) if _ < active_base)
    # offsets never move, producer metadata survives, reopen works
    data = log.read(log.log_start_offset, 1 << 20).read_bytes()
    assert all(h.producer_id == 9 and h.producer_epoch == 2 for h, _ in iterate_batches(data))
    expected = contents(log)
    log.close()
    again = PartitionLog.open(fs, DIR, config, 0)
    assert contents(again) == expected
    assert not any(n.endswith((".swap", ".cleaned")) for n in fs.listdir(DIR))


def test_compaction_rewrites_multi_record_batches() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=250, cleanup_policy="compact")
    log = PartitionLog.open(fs, DIR, config, 0)
    for round_ in range(8):
        records = [Record(i, 1000, b"k%d" % (i % 3), b"r%d-%d" % (round_, i)) for i in range(4)]
        log.append_as_leader(build_batch(records, compression=1), 0, 0)
    active_base = log.active_segment.base_offset
    assert clean_log(log, now_ms=2000).segments_cleaned >= 2
    after = contents(log)
    keys_before_active = [k for o, k, _ in after if o < active_base]
    assert len(keys_before_active) == len(set(keys_before_active))
    data = log.read(0, 1 << 20).read_bytes()
    for header, _ in iterate_batches(data):
        assert header.compression == 1
    assert log.append_as_leader(keyed(b"z", b"1"), 0, 0).first_offset == 32


def test_compaction_respects_min_lag_and_policy() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(segment_bytes=200), 0)
    for i in range(6):
        log.append_as_leader(keyed(b"a", b"%d" % i), 0, 0)
    assert clean_log(log, 10).segments_cleaned == 0  # policy delete
    log.update_config(LogConfig(segment_bytes=200, cleanup_policy="compact",
                                min_compaction_lag_ms=10_000))
    assert clean_log(log, 5000).segments_cleaned == 0  # records too recent
    assert clean_log(log, 20_000).segments_cleaned > 0


def test_enforce_retention_compacts_only_when_something_is_new() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=200, cleanup_policy="compact")
    log = PartitionLog.open(fs, DIR, config, 0)
    for i in range(6):
        log.append_as_leader(keyed(b"a", b"%d" % i), 0, 0)
    log.enforce_retention(5000)
    assert log.cleaner_checkpoint == log.active_segment.base_offset
    assert clean_log(log, 5000).segments_cleaned == 0  # nothing closed since
    for i in range(6):
        log.append_as_leader(keyed(b"a", b"x%d" % i), 0, 0)
    assert clean_log(log, 5000).segments_cleaned > 0
    log.close()
    again = PartitionLog.open(fs, DIR, config, 0)
    assert again.cleaner_checkpoint == log.cleaner_checkpoint
    keys = [k for o, k, _ in contents(again) if o < again.cleaner_checkpoint]
    assert keys == [b"a"]
