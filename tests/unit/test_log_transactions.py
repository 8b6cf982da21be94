"""The log side of transactions: open transactions, markers, the last stable offset, the
aborted-transaction index (.txnindex), and their survival across restarts, crashes,
replication and truncation."""

from __future__ import annotations

import struct

import pytest
from kio.schema.errors import ErrorCode

from moldau.log import LogConfig, MemoryFileSystem, PartitionLog
from moldau.log.producer_state import ProducerStateError
from moldau.log.txn_index import ENTRY_BYTES, AbortedTxn
from moldau.records import Record, RecordsError, build_batch, iterate_batches
from moldau.records.control import end_txn_marker_batch, read_end_txn_marker

DIR = "/data/txn-0"


def data(log: PartitionLog, producer_id: int, sequence: int, count: int = 2, epoch: int = 0,
         transactional: bool = True, verify: bool = True):
    if verify:
        log.producer_state.mark_verified(producer_id, epoch)
    payload = build_batch([Record(i, 1000, b"k%d" % i, b"v") for i in range(count)],
                          producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                          transactional=transactional)
    return log.append_as_leader(payload, 0, 1000)


def marker(log: PartitionLog, producer_id: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0):
    return log.append_end_txn_marker(producer_id, epoch, coordinator_epoch, commit, 0, 2000)


def open_log(fs=None, **config) -> PartitionLog:
    return PartitionLog.open(fs or MemoryFileSystem(), DIR, LogConfig(**config), 0)


def test_control_record_round_trip() -> None:
    batch = end_txn_marker_batch(7, 3, 11, True, 5)
    (header, raw), = list(iterate_batches(batch))
    assert header.is_control and header.is_transactional and header.producer_id == 7
    assert header.producer_epoch == 3 and header.base_sequence == -1
    found = read_end_txn_marker(raw)
    assert found.commit and found.coordinator_epoch == 11
    assert not read_end_txn_marker(end_txn_marker_batch(7, 3, 11, False, 5)).commit


def test_open_transactions_bound_the_last_stable_offset() -> None:
    log = open_log()
    data(log, 1, 0, transactional=False, verify=False)  # offsets 0-1: plain idempotent data
    data(log, 2, 0)  # 2-3 opens producer 2's transaction
    data(log, 3, 0)  # 4-5 opens producer 3's
    state = log.producer_state
    assert log.first_unstable_offset() == 2
    assert state.last_stable_offset(6) == 2
    marker(log, 2, commit=True)  # offset 6
    assert state.last_stable_offset(6) == 2  # decided, but the marker is not below the HW
    assert state.last_stable_offset(7) == 4  # replicated: producer 3 is still open
    marker(log, 3, commit=False)  # offset 7: aborts 4-5
    assert state.last_stable_offset(8) == 8
    assert log.collect_aborted_transactions(0, 8) == [AbortedTxn(3, 4, 7, 8)]
    assert log.collect_aborted_transactions(6, 8) == [AbortedTxn(3, 4, 7, 8)]  # overlaps
    assert log.collect_aborted_transactions(0, 4) == []  # ends before the aborted data


def test_aborted_entry_records_the_next_open_transaction() -> None:
    log = open_log()
    data(log, 1, 0)  # 0-1
    data(log, 2, 0)  # 2-3
    marker(log, 1, commit=False)  # 4: LSO stays at producer 2's first offset
    assert log.collect_aborted_transactions(0, 5) == [AbortedTxn(1, 0, 4, 2)]
    files = log.fs.listdir(DIR)
    assert "00000000000000000000.txnindex" in files
    raw = log.fs.read_file(f"{DIR}/00000000000000000000.txnindex")
    assert len(raw) == ENTRY_BYTES and struct.unpack(">hqqqq", raw) == (0, 1, 0, 4, 2)


def test_transaction_rules_and_fencing() -> None:
    log = open_log()
    with pytest.raises(ProducerStateError) as info:  # no coordinator verified it
        data(log, 5, 0, verify=False)
    assert info.value.error_code == ErrorCode.invalid_txn_state
    data(log, 5, 0)
    with pytest.raises(ProducerStateError) as info:  # plain batch inside a transaction
        data(log, 5, 2, transactional=False, verify=False)
    assert info.value.error_code == ErrorCode.invalid_txn_state
    marker(log, 5, commit=True, epoch=1, coordinator_epoch=4)  # Transactions V2 bumps the epoch
    with pytest.raises(ProducerStateError) as info:  # a zombie's late batch
        data(log, 5, 2, epoch=0)
    assert info.value.error_code == ErrorCode.invalid_producer_epoch
    with pytest.raises(ProducerStateError) as info:
        marker(log, 5, commit=False, epoch=0, coordinator_epoch=4)
    assert info.value.error_code == ErrorCode.invalid_producer_epoch
    with pytest.raises(ProducerStateError) as info:
        marker(log, 5, commit=False, epoch=1, coordinator_epoch=3)
    assert info.value.error_code == ErrorCode.transaction_coordinator_fenced
    assert data(log, 5, 0, epoch=1).first_offset == 3  # the next transaction, new epoch


def test_clients_cannot_write_control_batches() -> None:
    from moldau.replication.partition import Partition, PartitionError

    log = open_log()
    partition = Partition("txn", 0, "id", log, 1)
    partition.become_leader(0, (1,), (1,), 0)
    with pytest.raises(PartitionError) as info:
        partition.append(end_txn_marker_batch(1, 0, 0, True, 5), -1, 0)
    assert info.value.error_code == ErrorCode.invalid_record
    assert log.log_end_offset == 0


def test_open_transaction_survives_clean_restart_and_crash() -> None:
    fs = MemoryFileSystem()
    log = open_log(fs, segment_bytes=400)
    for sequence in range(0, 12, 2):
        data(log, 1, sequence)
    marker(log, 1, commit=False)  # 12
    data(log, 1, 12, verify=True)  # 13-14: a second transaction stays open
    aborted = log.collect_aborted_transactions(0, 15)
    log.close()
    again = open_log(fs, segment_bytes=400)
    assert again.first_unstable_offset() == 13
    assert again.collect_aborted_transactions(0, 15) == aborted
    assert again.producer_state.producers[1].current_txn_first_offset == 13
    again.flush()
    fs.crash("keep")  # no snapshot: rebuilt from the log, indexes rewritten
    for name in fs.listdir(DIR):
        if name.endswith(".txnindex"):
            fs.remove(f"{DIR}/{name}")
    third = open_log(fs, segment_bytes=400)
    assert third.producer_state.last_stable_offset(15) == 13
    assert third.collect_aborted_transactions(0, 15) == aborted
    with pytest.raises(ProducerStateError):
        data(third, 1, 14, transactional=False, verify=False)


def test_follower_replays_markers_and_truncation_cuts_the_index() -> None:
    leader = open_log()
    data(leader, 1, 0)
    marker(leader, 1, commit=False)  # 2
    data(leader, 2, 0)  # 3-4
    marker(leader, 2, commit=True)  # 5
    follower = PartitionLog.open(MemoryFileSystem(), "/f/txn-0", LogConfig(), 0)
    follower.append_as_follower(leader.read(0, 1 << 20).read_bytes(), 0)
    assert follower.collect_aborted_transactions(0, 6) == leader.collect_aborted_transactions(0, 6)
    assert follower.first_unstable_offset() == 0  # decided; the HW has not passed the markers
    assert follower.producer_state.last_stable_offset(6) == 6
    follower.truncate_to(2)  # the abort marker goes: producer 1's transaction is open again
    assert follower.collect_aborted_transactions(0, 6) == []
    assert follower.first_unstable_offset() == 0


# --- compaction ---------------------------------------------------------------------------------

def keyed(log: PartitionLog, producer_id: int, sequence: int, key: bytes, value: bytes,
          timestamp: int = 1000, transactional: bool = True) -> int:
    if transactional:
        log.producer_state.mark_verified(producer_id, 0)
    payload = build_batch([Record(0, timestamp, key, value)], producer_id=producer_id, producer_epoch=0,
                          base_sequence=sequence, transactional=transactional)
    return log.append_as_leader(payload, 0, timestamp).first_offset


def everything(log: PartitionLog) -> list[tuple[int, bool]]:
    """(offset, is_control) of every batch in the log."""
    out = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        raw = log.read(offset, 1 << 20).read_bytes()
        for header, _ in iterate_batches(raw):
            out.append((header.base_offset, header.is_control))
            offset = header.next_offset
    return out


def compacted_config(**overrides) -> dict:
    values = dict(segment_bytes=300, cleanup_policy="compact", delete_retention_ms=1000,
                  min_cleanable_dirty_ratio=0.01)
    values.update(overrides)
    return values


def test_compaction_removes_aborted_records_and_later_their_markers() -> None:
    from moldau.log import clean_log

    log = open_log(**compacted_config())
    keyed(log, 1, 0, b"a", b"committed", transactional=False)  # 0
    keyed(log, 2, 0, b"a", b"aborted")  # 1: must not hide offset 0
    keyed(log, 2, 1, b"b", b"aborted")  # 2
    marker(log, 2, commit=False)  # 3
    keyed(log, 3, 0, b"c", b"kept")  # 4
    marker(log, 3, commit=True)  # 5
    for sequence in range(1, 12):  # fill later segments (non-transactional)
        keyed(log, 1, sequence, b"x%d" % sequence, b"v", transactional=False)
    assert log.collect_aborted_transactions(0, 6) == [AbortedTxn(2, 1, 3, 4)]
    log.producer_state.on_high_watermark_updated(log.log_end_offset)  # the markers are replicated
    for _ in range(50):
        clean_log(log, 2_000)
    kept = [(r.offset, r.key, r.value) for r in log.records()]
    assert (0, b"a", b"committed") in kept and (4, b"c", b"kept") in kept
    assert not [r for r in kept if r[2] == b"aborted"]
    # Records of their transactions were there (and producers 2 and 3 keep their last batch,
    # empty, for their sequences): the markers stay.
    assert [o for o, control in everything(log) if control] == [3, 5]
    log.producer_state.expire(10**9)  # producer.id.expiration.ms passed: nothing to keep for them
    sequence = 12
    for _ in range(4):  # more dirty data, more passes: a marker goes once nothing of its
        for sequence in range(sequence, sequence + 8):  # transaction is left (offset 4, the
            keyed(log, 1, sequence, b"y%d" % sequence, b"v", transactional=False)  # latest c,
        sequence += 1  # keeps the COMMIT at 5)
        for _ in range(50):
            clean_log(log, 10**9)
    assert [o for o, control in everything(log) if control] == [5]
    assert log.collect_aborted_transactions(0, 6) == []
    assert (0, b"a", b"committed") in [(r.offset, r.key, r.value) for r in log.records()]


def test_compaction_stops_at_an_open_transaction() -> None:
    from moldau.log import clean_log

    log = open_log(**compacted_config())
    keyed(log, 1, 0, b"a", b"old", transactional=False)
    keyed(log, 2, 0, b"a", b"open")  # an undecided transaction at offset 1
    for sequence in range(1, 12):
        keyed(log, 1, sequence, b"a", b"v%d" % sequence, transactional=False)
    log.producer_state.on_high_watermark_updated(log.log_end_offset)
    for _ in range(50):
        clean_log(log, 2_000)
    kept = [(r.offset, r.value) for r in log.records()]
    assert (1, b"open") in kept and (0, b"old") in kept  # nothing at or after it was cleaned
