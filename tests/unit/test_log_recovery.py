"""Crash recovery: torn tails, lost unsynced data, corrupt indexes, and a seeded randomized run."""

from __future__ import annotations

import random

from moldau.log import LogConfig, LogError, MemoryFileSystem, PartitionLog
from moldau.log.segment import segment_file_name
from moldau.records import Record, build_batch, iterate_batches, iterate_records

DIR = "/data/t-0"


def batch(count: int, first: int, value_bytes: int = 30) -> bytes:
    return build_batch([Record(i, 1000 + first + i, b"k%d" % (first + i),
                               b"v%d" % (first + i) + b"x" * value_bytes) for i in range(count)])


def values(log: PartitionLog) -> list[bytes]:
    return [record.value.split(b"x")[0] for record in log.records()]


def test_torn_tail_is_truncated_at_last_complete_batch() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(index_interval_bytes=100)
    log = PartitionLog.open(fs, DIR, config, 0)
    for i in range(5):
        log.append_as_leader(batch(2, 2 * i), 0, 0)
    log.flush()
    for i in range(5, 10):
        log.append_as_leader(batch(2, 2 * i), 0, 0)
    path = DIR + "/" + segment_file_name(0, ".log")
    full = fs.read_file(path)
    fs.crash("keep")
    fs.files[path].data = bytearray(full[:-7])  # the last batch is torn
    again = PartitionLog.open(fs, DIR, config, 0)
    assert again.log_end_offset == 18
    assert values(again) == [b"v%d" % i for i in range(18)]
    assert again.append_as_leader(batch(1, 18), 0, 0).first_offset == 18


def test_power_loss_drops_unsynced_but_keeps_synced() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(), 0)
    log.append_as_leader(batch(3, 0), 0, 0)
    log.flush()
    log.append_as_leader(batch(3, 3), 0, 0)
    fs.crash("drop")
    again = PartitionLog.open(fs, DIR, LogConfig(), 0)
    assert again.log_end_offset == 3
    assert values(again) == [b"v0", b"v1", b"v2"]


def test_corrupt_byte_inside_unflushed_batch_truncates_there() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, LogConfig(index_interval_bytes=50), 0)
    for i in range(6):
        log.append_as_leader(batch(1, i, value_bytes=60), 0, 0)
    log.flush()
    for i in range(6, 12):
        log.append_as_leader(batch(1, i, value_bytes=60), 0, 0)
    size = len(batch(1, 0, value_bytes=60))
    fs.crash("keep")
    data = fs.files[log.active_segment.path(".log")].data
    data[8 * size + size // 2] ^= 0xFF  # inside the batch of offset 8
    again = PartitionLog.open(fs, DIR, LogConfig(index_interval_bytes=50), 0)
    assert again.log_end_offset == 8
    assert values(again) == [b"v%d" % i for i in range(8)]


def test_missing_or_corrupt_index_is_rebuilt() -> None:
    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=2000, index_interval_bytes=64)
    log = PartitionLog.open(fs, DIR, config, 0)
    for i in range(40):
        log.append_as_leader(batch(1, i), 0, 0)
    entries = [len(s.offset_index) for s in log.segments]
    log.close()
    first = log.segments[0]
    fs.remove(first.path(".index"))
    fs.files[log.segments[1].path(".timeindex")].data += b"\x00\x01"
    again = PartitionLog.open(fs, DIR, config, 0)
    assert [len(s.offset_index) for s in again.segments] == entries
    assert values(again) == [b"v%d" % i for i in range(40)]


def test_interrupted_compaction_swap_is_completed() -> None:
    from moldau.log.cleaner import _swap_name

    fs = MemoryFileSystem()
    config = LogConfig(segment_bytes=400)
    log = PartitionLog.open(fs, DIR, config, 0)
    for i in range(10):
        log.append_as_leader(batch(1, i, value_bytes=100), 0, 0)
    bases = [s.base_offset for s in log.segments]
    log.close()
    # a committed swap replacing the first two segments with the first segment's content only
    first = fs.read_file(DIR + "/" + segment_file_name(bases[0], ".log"))
    fs.write_atomic(DIR + "/" + _swap_name(bases[0], bases[2]), first)
    fs.write_atomic(DIR + "/" + segment_file_name(bases[0], ".log.cleaned"), b"junk")
    again = PartitionLog.open(fs, DIR, config, 0)
    names = fs.listdir(DIR)
    assert not any(n.endswith(".swap") or n.endswith(".cleaned") for n in names)
    assert [s.base_offset for s in again.segments] == [bases[0]] + bases[2:]
    assert again.log_end_offset == 10


def _check_invariants(log: PartitionLog, acknowledged_synced: int, expected: list[bytes]) -> None:
    got = values(log)
    assert got == expected[: len(got)], "recovered data must be a prefix of what was written"
    assert len(got) >= acknowledged_synced, "fsynced data must survive a crash"
    assert log.log_end_offset == len(got)


def test_randomized_append_crash_recover() -> None:
    """Seeded: appends, flushes, rolls and crashes of every kind keep a valid prefix."""
    for seed in range(12):
        rng = random.Random(seed)
        fs = MemoryFileSystem()
        config = LogConfig(segment_bytes=rng.choice([600, 1000, 5000]),
                           index_interval_bytes=rng.choice([0, 50, 500]))
        log = PartitionLog.open(fs, DIR, config, 0)
        expected: list[bytes] = []
        synced = 0
        for step in range(120):
            action = rng.random()
            if action < 0.75:
                count = rng.randint(1, 4)
                first = len(expected)
                payload = b"".join(batch(1, first + j, rng.randint(0, 80)) for j in range(count))
                info = log.append_as_leader(payload, rng.randint(0, 2), step)
                assert info.first_offset == first
                expected.extend([b"v%d" % (first + j) for j in range(count)])
            elif action < 0.85:
                log.flush()
                synced = len(expected)
            else:
                mode = rng.choice(["drop", "tear", "keep"])
                fs.crash(mode, rng)
                log = PartitionLog.open(fs, DIR, config, step)
                if mode == "keep":
                    assert log.log_end_offset == len(expected), f"seed {seed}"
                _check_invariants(log, synced, expected)
                expected = expected[: log.log_end_offset]
                synced = len(expected)  # open() fsyncs what it recovered
        log.close()
        log = PartitionLog.open(fs, DIR, config, 0)
        _check_invariants(log, len(expected), expected)


def _read_values_by_offset(log: PartitionLog) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    position = log.log_start_offset
    while position < log.log_end_offset:
        result = log.read(position, 1 << 20)
        if result.region is None:
            break
        batches = list(iterate_batches(result.read_bytes()))
        for _, data in batches:
            for record in iterate_records(data):
                if record.offset >= log.log_start_offset:
                    out[record.offset] = record.value
        position = batches[-1][0].next_offset
    return out


def test_randomized_model_with_truncation_retention_and_reopen() -> None:
    """Seeded model check: the log always holds exactly the model's records >= log start."""
    for seed in range(10):
        rng = random.Random(1000 + seed)
        fs = MemoryFileSystem()
        config = LogConfig(segment_bytes=rng.choice([700, 2000]), index_interval_bytes=100,
                           retention_bytes=-1, retention_ms=-1)
        log = PartitionLog.open(fs, DIR, config, 0)
        model: dict[int, bytes] = {}
        epoch = 0
        for step in range(150):
            action = rng.random()
            if action < 0.6:
                count = rng.randint(1, 3)
                first = log.log_end_offset
                records = [Record(i, step, None, b"s%d-%d" % (seed, step * 10 + i))
                           for i in range(count)]
                info = log.append_as_leader(build_batch(records), epoch, step)
                assert info.first_offset == first
                for i, record in enumerate(records):
                    model[first + i] = record.value
            elif action < 0.68:
                epoch += 1
            elif action < 0.76 and log.log_end_offset > log.log_start_offset:
                target = rng.randint(log.log_start_offset, log.log_end_offset)
                log.truncate_to(target)
                model = {o: v for o, v in model.items() if o < log.log_end_offset}
                assert log.leader_epoch_cache.latest_epoch <= epoch
            elif action < 0.82:
                target = rng.randint(log.log_start_offset, log.log_end_offset)
                log.delete_records_before(target)
            elif action < 0.88:
                log.close()
                log = PartitionLog.open(fs, DIR, config, step)
            elif action < 0.94:
                fs.crash("keep")
                log = PartitionLog.open(fs, DIR, config, step)
            else:
                log.update_config(LogConfig(segment_bytes=config.segment_bytes,
                                            index_interval_bytes=100,
                                            retention_bytes=rng.randint(0, 3000)))
                log.enforce_retention(step)
                log.update_config(config)
            expected = {o: v for o, v in model.items() if o >= log.log_start_offset}
            assert _read_values_by_offset(log) == expected, f"seed {seed} step {step}"
            assert log.log_start_offset <= log.log_end_offset
            entries = log.leader_epoch_cache.entries
            assert entries == sorted(entries) and len({e for e, _ in entries}) == len(entries)
            assert all(start <= log.log_end_offset for _, start in entries)


def test_os_file_system_killed_process_and_torn_tail(tmp_path) -> None:
    """A killed process (no close) loses nothing; a torn last batch is cut at reopen."""
    import os

    from moldau.runtime.disk import OsFileSystem

    directory = str(tmp_path / "t-0")
    config = LogConfig(segment_bytes=3000, index_interval_bytes=100)
    log = PartitionLog.open(OsFileSystem(), directory, config, 0)
    for i in range(60):
        log.append_as_leader(batch(1, i), 0, 0)
    # "kill -9": no close, no flush; the OS keeps what was written
    again = PartitionLog.open(OsFileSystem(), directory, config, 0)
    assert values(again) == [b"v%d" % i for i in range(60)]
    again.append_as_leader(batch(1, 60), 0, 0)  # after the recovery point open() wrote
    last = again.active_segment.path(".log")
    os.truncate(last, os.path.getsize(last) - 5)  # tear the last batch
    third = PartitionLog.open(OsFileSystem(), directory, config, 0)
    assert third.offline is None
    assert values(third) == [b"v%d" % i for i in range(60)]
    assert third.append_as_leader(batch(1, 60), 0, 0).first_offset == 60
    third.close()


def test_randomized_external_damage_keeps_a_valid_prefix() -> None:
    """Files cut or scribbled on outside the log's control. Past the recovery point (the
    unflushed tail) reopen cuts back to a valid prefix and appends continue right after it;
    below it the log opens offline with every file as it was, and serves the valid prefix
    (tests/unit/test_log_faults.py has one test per kind of damage)."""
    for seed in range(15):
        rng = random.Random(2000 + seed)
        fs = MemoryFileSystem()
        config = LogConfig(segment_bytes=rng.choice([800, 3000]),
                           index_interval_bytes=rng.choice([0, 80]))
        log = PartitionLog.open(fs, DIR, config, 0)
        cut = rng.random() < 0.5
        for i in range(40):
            log.append_as_leader(batch(1, i, rng.randint(0, 60)), 0, 0)
            if cut and rng.random() < 0.2:
                log.checkpoint()
        recovery_point = log.recovery_point
        fs.crash("keep")
        if cut:  # anywhere, even below the recovery point
            data = fs.files[rng.choice(log.segments[-2:]).path(".log")].data
            del data[rng.randint(0, len(data)) :]
        else:  # a flipped byte past the recovery point (the active segment, never checkpointed)
            # is caught by the CRC; fsynced data below it is trusted, as in Kafka. The CRC does
            # not cover base_offset, batch_length and leader epoch (nor does Kafka's), so the
            # flip lands in the covered part of a batch.
            data = fs.files[log.active_segment.path(".log")].data
            starts = []
            position = 0
            while position < len(data):
                starts.append(position)
                position += int.from_bytes(data[position + 8 : position + 12], "big") + 12
            start = rng.choice(starts)
            end = min(len(data), start + int.from_bytes(data[start + 8 : start + 12], "big") + 12)
            data[rng.randrange(start + 21, end)] ^= 0x5A
        before = {path: bytes(f.data) for path, f in fs.files.items()}
        again = PartitionLog.open(fs, DIR, config, 0)
        expected = [b"v%d" % i for i in range(40)]
        if again.offline is not None:
            assert {path: bytes(f.data) for path, f in fs.files.items()} == before, f"seed {seed}"
            assert again.offline.first_offset < recovery_point, f"seed {seed}"
            got = values_until_error(again)
            assert got == expected[: len(got)] and len(got) == again.offline.first_offset, f"seed {seed}"
            continue
        got = values(again)
        assert got == expected[: len(got)], f"seed {seed}"
        assert len(got) >= recovery_point, f"seed {seed}: flushed records lost"
        assert again.log_end_offset == len(got), f"seed {seed}"
        assert again.append_as_leader(batch(1, len(got)), 0, 0).first_offset == len(got)


def values_until_error(log: PartitionLog) -> list[bytes]:
    got: list[bytes] = []
    try:
        for record in log.records():
            got.append(record.value.split(b"x")[0])
    except LogError:
        pass
    return got
