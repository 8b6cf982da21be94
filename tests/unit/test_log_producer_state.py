"""Idempotent producer state: duplicates, sequence and epoch errors, snapshot and rebuild."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, MemoryFileSystem, PartitionLog
from moldau.log.producer_state import ProducerStateError, ProducerStateExtension
from moldau.records import Record, RecordsError, build_batch

DIR = "/data/idem-0"


def produce(log: PartitionLog, sequence: int, count: int = 2, producer_id: int = 7,
            epoch: int = 0):
    payload = build_batch([Record(i, 1000, None, b"v") for i in range(count)],
                          producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)
    return log.append_as_leader(payload, 0, 0)


def test_duplicate_retry_returns_original_offsets() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(), 0)
    produce(log, 0)
    second = produce(log, 2)
    assert second.first_offset == 2 and not second.duplicate
    retry = produce(log, 2)
    assert retry.duplicate and (retry.first_offset, retry.last_offset) == (2, 3)
    assert log.log_end_offset == 4


def test_sequence_and_epoch_errors() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(), 0)
    produce(log, 0, epoch=3)
    with pytest.raises(ProducerStateError) as info:
        produce(log, 5, epoch=3)
    assert info.value.error_code == ErrorCode.out_of_order_sequence_number
    with pytest.raises(RecordsError) as info:
        produce(log, 2, epoch=2)
    assert info.value.error_code == ErrorCode.invalid_producer_epoch
    with pytest.raises(ProducerStateError) as info:
        produce(log, 4, epoch=4)  # a new epoch starts at sequence 0
    assert info.value.error_code == ErrorCode.out_of_order_sequence_number
    assert produce(log, 0, epoch=4).first_offset == 2
    assert produce(log, 9, producer_id=8).first_offset == 4  # unknown producer: any sequence


def test_state_survives_clean_restart_and_crash() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(segment_bytes=300), 0)
    for sequence in range(0, 20, 2):
        produce(log, sequence)
    log.close()
    assert "producer-state-snapshot" in fs.listdir(DIR)
    again = PartitionLog.open(fs, DIR, LogConfig(segment_bytes=300), 0)
    assert "producer-state-snapshot" not in fs.listdir(DIR)
    assert produce(again, 18).duplicate
    assert produce(again, 20).first_offset == 20
    fs.crash("keep")  # no snapshot now: rebuilt from batch headers
    third = PartitionLog.open(fs, DIR, LogConfig(segment_bytes=300), 0)
    assert produce(third, 20).duplicate
    with pytest.raises(ProducerStateError):
        produce(third, 30)


def test_truncation_rebuilds_state() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(), 0)
    for sequence in range(0, 10, 2):
        produce(log, sequence)
    log.truncate_to(6)
    assert produce(log, 6).first_offset == 6  # not a duplicate any more


def test_extension_expires_idle_producers() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, LogConfig(), 0)
    partition = SimpleNamespace(log=log, key=("idem", 0), high_watermark=0)
    core = SimpleNamespace(partitions={("idem", 0): partition})
    extension = ProducerStateExtension(core)
    payload = build_batch([Record(0, 1000, None, b"v")], producer_id=3, producer_epoch=0,
                          base_sequence=0)
    assert not log.append_as_leader(payload, 0, 0).duplicate
    retried = log.append_as_leader(payload, 0, 0)
    assert retried.duplicate and retried.first_offset == 0
    extension.tick(10**12)  # producer expired after producer.id.expiration.ms
    assert not log.append_as_leader(payload, 0, 0).duplicate
