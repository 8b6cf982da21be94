"""producer.id.expiration.ms counts from the producer's last write on the broker's clock, not
from the records' own (CreateTime) timestamps. Counting from the records made a producer whose
records carry old timestamps (replayed or copied data; the client workload's were from 2023)
expire at the next check: after a leader change, its retried batch was written a second time
(kafka-python on moldau.Cluster: 'consumed 10006 of 10000')."""

from __future__ import annotations

from moldau.log import LogConfig, MemoryFileSystem, PartitionLog
from moldau.log.producer_state import producer_id_expiration_ms_default
from moldau.records import Record, build_batch

DAY_MS = 24 * 3600 * 1000
NOW_MS = 1_800_000_000_000  # the broker's clock
OLD_MS = NOW_MS - 400 * DAY_MS  # the records' CreateTime


def _batch(sequence: int) -> bytes:
    return build_batch([Record(0, OLD_MS + sequence, b"k", b"v%d" % sequence)], producer_id=7,
                       producer_epoch=0, base_sequence=sequence)


def test_a_producer_writing_old_timestamps_is_not_forgotten_while_it_writes():
    log = PartitionLog.open(MemoryFileSystem(), "/data/t-0", LogConfig(), NOW_MS)
    assert log.append_as_leader(_batch(0), 0, NOW_MS).first_offset == 0
    log.producer_state.expire(NOW_MS + 1_000)  # a retention tick a second later
    retried = log.append_as_leader(_batch(0), 0, NOW_MS + 2_000)
    assert retried.duplicate and retried.first_offset == 0 and log.log_end_offset == 1


def test_a_follower_and_a_restarted_log_keep_it_too():
    fs = MemoryFileSystem()
    leader = PartitionLog.open(fs, "/data/t-0", LogConfig(), NOW_MS)
    leader.append_as_leader(_batch(0), 0, NOW_MS)
    follower = PartitionLog.open(MemoryFileSystem(), "/data/t-0", LogConfig(), NOW_MS)
    follower.append_as_follower(leader.read(0, 1 << 20).read_bytes(), NOW_MS)
    follower.producer_state.expire(NOW_MS + 1_000)
    assert follower.append_as_leader(_batch(0), 1, NOW_MS + 2_000).duplicate
    leader.close()
    reopened = PartitionLog.open(fs, "/data/t-0", LogConfig(), NOW_MS + 3_000)
    reopened.producer_state.expire(NOW_MS + 4_000)
    assert reopened.append_as_leader(_batch(0), 0, NOW_MS + 5_000).duplicate


def test_an_idle_producer_still_expires_after_producer_id_expiration_ms():
    log = PartitionLog.open(MemoryFileSystem(), "/data/t-0", LogConfig(), NOW_MS)
    log.append_as_leader(_batch(0), 0, NOW_MS)
    assert log.producer_state.expire(NOW_MS + producer_id_expiration_ms_default - 1) == 0
    assert log.producer_state.expire(NOW_MS + producer_id_expiration_ms_default + 1) == 1
