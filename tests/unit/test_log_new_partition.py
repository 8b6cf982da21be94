"""Creating partitions costs no fsync, and what that defers stays safe.

Creating 10,000 partitions took minutes when each new, empty log fsynced its segment, indexes,
checkpoints, leader-epoch file and directory (issue 13 item 6). A new log now writes nothing
durable until it holds data: its checkpoints' absence means "nothing to recover", its
partition.metadata is rewritten at the next start if lost, and a leader epoch assigned later
is written unsynced and made durable by the log's next flush — recovery re-adds epochs of
batches above the recovery point from their headers, as Kafka's does."""

from __future__ import annotations

from moldau.log import LogConfig, MemoryFileSystem, PartitionLog
from moldau.records import Record, build_batch
from moldau.testing.node import committed, local_core

DIR = "/data/t-0"


class _KeepAll:
    """A `tear` that keeps every unsynced byte of appended files (the OS wrote them all)."""

    @staticmethod
    def randint(low: int, high: int) -> int:
        return high


def _batch(value: bytes) -> bytes:
    return build_batch([Record(0, 1_700_000_000_000, None, value)])


def test_a_new_log_costs_no_fsync_and_survives_a_power_loss_empty() -> None:
    fs = MemoryFileSystem()
    before = fs.syncs
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.leader_epoch_cache.assign(3, 0)  # becoming its leader
    assert fs.syncs == before
    fs.crash("drop")
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)
    assert again.log_end_offset == 0 and again.offline is None
    assert again.append_as_leader(_batch(b"first"), 4, 0).first_offset == 0


def test_an_epoch_written_unsynced_is_recovered_from_the_batches() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.append_as_leader(_batch(b"a"), 1, 0)
    log.checkpoint()  # epoch 1 and offset 0 durable
    log.append_as_leader(_batch(b"b"), 5, 0)  # epoch 5 assigned, written unsynced
    fs.crash("tear", _KeepAll())  # the batch's bytes reached the disk, the epoch file did not
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)
    assert again.log_end_offset == 2
    assert again.leader_epoch_cache.entries == [(1, 0), (5, 1)]
    assert again.end_offset_for_epoch(1) == (1, 1)  # what a follower asking about epoch 1 must hear


def test_a_flush_makes_the_epoch_durable_before_the_recovery_point_moves() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.append_as_leader(_batch(b"a"), 2, 0)
    log.checkpoint()
    fs.crash("drop")
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)
    assert again.log_end_offset == 1 and again.leader_epoch_cache.entries == [(2, 0)]


def test_creating_many_partitions_on_a_node_syncs_nothing_per_partition() -> None:
    fs = MemoryFileSystem()
    core = local_core(fs=fs)
    before = fs.syncs
    committed(core).create_topic("many", 200, 1)
    node = core.local_node
    while core.replicas.pending:  # opened a bounded number per call into the core
        node.advance(10)
    assert sum(1 for key in core.partitions if key[0] == "many") == 200
    assert fs.syncs - before < 20, f"{fs.syncs - before} fsyncs for 200 new partitions"
    fs.crash("drop")
    restarted = local_core(fs=fs)
    while restarted.replicas.pending:
        restarted.local_node.advance(10)
    partition = restarted.partition("many", 199)
    assert partition is not None and partition.log_end_offset == 0 and partition.is_leader


def test_a_clean_shutdown_of_many_partitions_waits_for_the_disk_once() -> None:
    """Stopping a broker with thousands of partitions took minutes: every log's close fsynced its
    segment, indexes, checkpoints and snapshot. They are written, then one sync of the file
    system makes them durable — and a power loss right after loses nothing."""
    fs = MemoryFileSystem()
    core = local_core(fs=fs)
    committed(core).create_topic("full", 100, 1)
    while core.replicas.pending:
        core.local_node.advance(10)
    for index in range(100):
        core.partition("full", index).append(_batch(b"v%d" % index), 1, core.local_node.now_ms)
    before = fs.syncs
    core.close()
    assert fs.syncs - before <= 3, f"{fs.syncs - before} syncs to close 100 partitions"
    fs.crash("drop")
    restarted = local_core(fs=fs)
    while restarted.replicas.pending:
        restarted.local_node.advance(10)
    assert all(restarted.partition("full", i).log_end_offset == 1 for i in range(100))
