"""Log compaction at scale (log/cleaner.py): dirty-ratio trigger, offset map over the dirty
section only, output grouped by segment.bytes, bounded work per call, and a pass that survives
crashes, retention, truncation and deletion between (and inside) its calls."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from moldau import limits
from moldau.log import LogConfig, MemoryFileSystem, PartitionLog, clean_log
from moldau.log.cleaner import CleanResult
from moldau.records import Record, build_batch
from moldau.records.batch import BatchHeader

DIR = "/data/compacted-0"
Model = list[tuple[int, bytes | None, bytes | None]]  # (offset, key, value) as written


def config(**overrides: object) -> LogConfig:
    values: dict[str, object] = dict(segment_bytes=400, cleanup_policy="compact",
                                     delete_retention_ms=1000)
    values.update(overrides)
    return LogConfig(**values)  # type: ignore[arg-type]


def put(log: PartitionLog, model: Model, key: bytes | None, value: bytes | None,
        timestamp: int = 1000) -> int:
    offset = log.append_as_leader(
        build_batch([Record(0, timestamp, key, value)], producer_id=9, producer_epoch=2,
                    base_sequence=log.log_end_offset), 0, timestamp).first_offset
    model.append((offset, key, value))
    return offset


def contents(log: PartitionLog) -> Model:
    return [(r.offset, r.key, r.value) for r in log.records()]


def check_is_compaction_of(log: PartitionLog, model: Model) -> None:
    """What a cleaner may leave: a subset of what was written, offsets unchanged, and for each
    key its latest record where it was, or nothing if that record was a tombstone."""
    got = contents(log)
    assert set(got) <= set(model), "compaction only removes records"
    assert [o for o, _, _ in got] == sorted(o for o, _, _ in got)
    latest_written = {key: (o, key, v) for o, key, v in model if key is not None}
    latest_kept = {key: (o, key, v) for o, key, v in got if key is not None}
    for key, record in latest_written.items():
        if key in latest_kept:
            assert latest_kept[key] == record, f"latest record of {key!r} lost"
        else:
            assert record[2] is None, f"live key {key!r} lost"
    assert [r for r in got if r[1] is None] == [r for r in model if r[1] is None]


def converge(log: PartitionLog, now_ms: int, calls_max: int = 10_000,
             **bounds: int) -> list[CleanResult]:
    """Call clean_log until it has nothing left to do."""
    results = []
    for _ in range(calls_max):
        result = clean_log(log, now_ms, **bounds)
        results.append(result)
        if (result.bytes_read == 0 and result.segments_cleaned == 0
                and not result.pass_finished and log.cleaner_pass is None):
            return results
    raise AssertionError("clean_log did not converge")


def batch_headers(log: PartitionLog) -> list[BatchHeader]:
    return [h for s in log.segments for h in s.scan_headers(0)]


def no_leftovers(fs: MemoryFileSystem) -> bool:
    return not any(n.endswith((".cleaned", ".swap")) for n in fs.listdir(DIR))


def workload(log: PartitionLog, model: Model, rng: random.Random, writes: int,
             keys: int, timestamp: int = 1000) -> None:
    for _ in range(writes):
        key = b"k%03d" % rng.randrange(keys)
        value = None if rng.random() < 0.1 else b"v%06d" % rng.randrange(10**6)
        put(log, model, key, value, timestamp)


# --- when a pass runs -----------------------------------------------------------------------
def dirty_ratio(log: PartitionLog) -> float:
    segments = log.segments
    closed = segments[:-1]
    dirty = sum(s.size for n, s in enumerate(closed)
                if segments[n + 1].base_offset > log.cleaner_checkpoint)
    return dirty / sum(s.size for s in closed)


def test_dirty_ratio_triggers_a_pass() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(min_cleanable_dirty_ratio=0.5), 0)
    model: Model = []
    for i in range(40):
        put(log, model, b"k%03d" % i, b"first")  # 40 distinct keys: nothing to remove
    first = clean_log(log, 2000)
    assert first.pass_finished and first.records_removed == 0
    checkpoint = log.cleaner_checkpoint
    assert checkpoint == log.active_segment.base_offset
    for i in range(200):  # overwrite keys one by one until the ratio is reached
        put(log, model, b"k%03d" % (i % 40), b"second")
        if log.active_segment.base_offset == log.cleaner_checkpoint:
            continue
        ratio = dirty_ratio(log)
        result = clean_log(log, 2000)
        if ratio < 0.5:
            assert result == CleanResult() and log.cleaner_checkpoint == checkpoint
        else:
            assert result.pass_finished and result.records_removed > 0
            break
    else:
        raise AssertionError("the dirty ratio never reached 0.5")
    assert log.cleaner_checkpoint == log.active_segment.base_offset > checkpoint
    check_is_compaction_of(log, model)


def test_ratio_zero_cleans_whenever_something_is_dirty_and_one_almost_never() -> None:
    for ratio, expect_pass in ((0.0, True), (1.0, False)):
        log = PartitionLog.open(MemoryFileSystem(), DIR, config(min_cleanable_dirty_ratio=ratio), 0)
        model: Model = []
        for i in range(30):
            put(log, model, b"k%03d" % (i % 10), b"v%d" % i)
        assert clean_log(log, 2000).pass_finished  # first pass: everything is dirty
        while log.active_segment.base_offset == log.cleaner_checkpoint:
            put(log, model, b"k000", b"new")
        assert clean_log(log, 2000).pass_finished is expect_pass


def test_max_compaction_lag_forces_a_pass_below_the_ratio() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(max_compaction_lag_ms=5000), 0)
    model: Model = []
    for i in range(30):
        put(log, model, b"k%03d" % i, b"v", timestamp=1000)
    log.roll(2000)
    assert clean_log(log, 2000).pass_finished
    while log.active_segment.base_offset == log.cleaner_checkpoint:
        put(log, model, b"k000", b"late", timestamp=3000)
    assert dirty_ratio(log) < 0.5
    assert clean_log(log, 7000) == CleanResult()  # first dirty batch is 4000 ms old
    assert clean_log(log, 8001).pass_finished  # 5001 ms: past max.compaction.lag.ms
    check_is_compaction_of(log, model)


def test_due_tombstone_triggers_a_pass_without_dirty_bytes() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(), 0)
    model: Model = []
    put(log, model, b"gone", b"v")
    put(log, model, b"gone", None, timestamp=1500)
    for i in range(20):
        put(log, model, b"k%03d" % i, b"v")
    assert clean_log(log, 2000).pass_finished
    assert (1, b"gone", None) in contents(log)
    assert log.cleaner_tombstone_expiry_ms == 1500 + 1000 + 1
    assert clean_log(log, 2500) == CleanResult()  # not due, nothing dirty
    assert clean_log(log, 2501).pass_finished
    assert not [r for r in contents(log) if r[1] == b"gone"]
    assert log.cleaner_tombstone_expiry_ms == -1


# --- what a pass does -----------------------------------------------------------------------
def test_offset_map_covers_only_the_dirty_section() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(min_cleanable_dirty_ratio=0.1), 0)
    model: Model = []
    for i in range(30):
        put(log, model, b"old%02d" % i, b"v1")
    log.roll(2000)
    assert clean_log(log, 2000).pass_finished
    checkpoint = log.cleaner_checkpoint
    dirty_keys = set()
    for i in range(0, 30, 3):
        put(log, model, b"old%02d" % i, b"v2")
        dirty_keys.add(b"old%02d" % i)
    log.roll(2000)
    dirty_bytes = sum(s.size for s in log.segments if s.base_offset >= checkpoint)
    first = clean_log(log, 2000, max_bytes=dirty_bytes + 200)  # map, then some cleaning
    state = log.cleaner_pass
    assert state is not None and not first.pass_finished
    assert set(state.offset_map) == dirty_keys
    assert min(state.offset_map.values()) >= checkpoint
    converge(log, 2000, max_bytes=200)
    kept = contents(log)
    for i in range(30):
        key = b"old%02d" % i
        values = [v for _, k, v in kept if k == key]
        assert values == ([b"v2"] if key in dirty_keys else [b"v1"])
    check_is_compaction_of(log, model)


def test_output_segments_never_exceed_segment_bytes() -> None:
    fs = MemoryFileSystem()
    cfg = config(segment_bytes=600)
    log = PartitionLog.open(fs, DIR, cfg, 0)
    model: Model = []
    rng = random.Random(7)
    closed_counts = []
    for round_ in range(3):
        workload(log, model, rng, writes=200, keys=5)
        log.roll(1500)
        closed_counts.append(len(log.segments) - 1)
        converge(log, 1500)
        closed = log.segments[:-1]
        assert all(segment.size <= cfg.segment_bytes for segment in closed)
        check_is_compaction_of(log, model)
    # from the second pass on, the small segments the first left are merged into groups
    assert len(log.segments) - 1 <= closed_counts[-1] - 10
    assert max(s.size for s in log.segments[:-1]) > cfg.segment_bytes / 2


def test_a_one_segment_group_without_changes_is_not_rewritten() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, config(segment_bytes=300), 0)
    model: Model = []
    for i in range(12):
        put(log, model, b"k%02d" % i, b"v")
    first = log.segments[0]
    result = clean_log(log, 2000)
    assert result.pass_finished and result.records_removed == 0
    assert log.segments[0] is first and no_leftovers(fs)


def test_bounded_calls_converge_to_one_record_per_live_key() -> None:
    for seed in range(3):
        rng = random.Random(seed)
        fs = MemoryFileSystem()
        cfg = config(segment_bytes=rng.choice([300, 700, 2000]), delete_retention_ms=0,
                     min_cleanable_dirty_ratio=rng.choice([0.0, 0.3, 0.5]))
        log = PartitionLog.open(fs, DIR, cfg, 0)
        model: Model = []
        budget = rng.choice([150, 400, 1000])
        for round_ in range(6):
            workload(log, model, rng, writes=rng.randint(20, 120), keys=30)
            for _ in range(rng.randint(1, 5)):
                result = clean_log(log, 2000, max_bytes=budget)
                assert result.bytes_read <= budget
            check_is_compaction_of(log, model)
        log.roll(2000)
        log.update_config(replace(cfg, min_cleanable_dirty_ratio=0.0))  # clean all dirty bytes
        results = converge(log, 2000, max_bytes=budget)
        assert all(r.bytes_read <= budget for r in results)
        assert len(results) > 2, "the budget splits the work over several calls"
        latest = {k: v for _, k, v in model}
        live = sorted(k for k, v in latest.items() if v is not None)
        kept = contents(log)
        assert sorted(k for _, k, _ in kept) == live  # exactly one record per live key
        assert all(latest[k] == v for _, k, v in kept)
        assert no_leftovers(fs)
        log.close()
        assert contents(PartitionLog.open(fs, DIR, cfg, 3000)) == kept


def test_a_full_offset_map_cleans_up_to_where_it_filled() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(min_cleanable_dirty_ratio=0.0), 0)
    model: Model = []
    for round_ in range(3):
        for i in range(20):
            put(log, model, b"k%02d" % i, b"r%d" % round_)
    log.roll(2000)
    end = log.active_segment.base_offset
    result = clean_log(log, 2000, map_keys_max=8)
    assert result.pass_finished
    checkpoint = log.cleaner_checkpoint
    assert 0 < checkpoint < end  # only the first 8 dirty keys fitted
    kept = contents(log)
    assert [r for r in kept if r[0] >= checkpoint] == [r for r in model if r[0] >= checkpoint]
    check_is_compaction_of(log, model)
    passes = 1
    while log.cleaner_checkpoint < end:
        assert clean_log(log, 2000, map_keys_max=8).pass_finished
        passes += 1
    assert passes > 3
    assert sorted(k for _, k, _ in contents(log)) == sorted({k for _, k, _ in model})
    check_is_compaction_of(log, model)


def test_records_past_a_full_map_are_untouched_even_expired_tombstones() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(delete_retention_ms=0), 0)
    model: Model = []
    for key in (b"a", b"b", b"c"):
        put(log, model, key, b"1")
    put(log, model, b"a", None)  # past the map of 3 keys: must stay while a=1 does
    put(log, model, b"d", b"1")
    log.roll(2000)
    assert clean_log(log, 2000, map_keys_max=3).pass_finished
    assert log.cleaner_checkpoint == 3
    assert contents(log) == model
    converge(log, 2000)
    assert contents(log) == [(1, b"b", b"1"), (2, b"c", b"1"), (4, b"d", b"1")]


def test_key_bytes_bound_the_offset_map() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(min_cleanable_dirty_ratio=0.0), 0)
    model: Model = []
    for i in range(30):
        put(log, model, b"key-%02d" % i, b"v")  # 6-byte keys
    log.roll(2000)
    assert clean_log(log, 2000, map_key_bytes_max=60).pass_finished
    assert log.cleaner_checkpoint == 10  # stopped after the batch that reached 60 key bytes


# --- interruptions --------------------------------------------------------------------------
def started_pass(fs: MemoryFileSystem, groups_done: int, cfg: LogConfig | None = None,
                 budget: int = 500) -> tuple[PartitionLog, Model]:
    """A log of about 30 segments with a pass under way: still building its offset map
    (groups_done < 0) or with `groups_done` groups swapped in and the next one begun."""
    log = PartitionLog.open(fs, DIR, cfg or config(), 0)
    model: Model = []
    workload(log, model, random.Random(1), writes=150, keys=12)
    log.roll(1500)
    clean_log(log, 1500, max_bytes=budget)
    state = log.cleaner_pass
    while groups_done >= 0 and state is not None and (
            state.end_offset < 0 or state.group_number < groups_done or state.output is None):
        clean_log(log, 1500, max_bytes=budget)
        state = log.cleaner_pass
    assert state is not None
    assert state.end_offset < 0 if groups_done < 0 else state.group_number == groups_done
    return log, model


def test_crash_between_calls_keeps_a_valid_compaction() -> None:
    for groups_done in (-1, 0, 2, 7):
        for mode in ("drop", "keep"):
            fs = MemoryFileSystem()
            log, model = started_pass(fs, groups_done)
            checkpoint = log.cleaner_checkpoint
            fs.crash(mode)
            again = PartitionLog.open(fs, DIR, config(), 1500)
            assert no_leftovers(fs)
            assert again.cleaner_checkpoint == checkpoint  # moves only when a pass ends
            check_is_compaction_of(again, model)
            converge(again, 1500, max_bytes=300)
            check_is_compaction_of(again, model)
            keys = [k for o, k, _ in contents(again) if o < again.cleaner_checkpoint]
            assert len(keys) == len(set(keys))


class _Crash(Exception):
    pass


class CrashingFileSystem(MemoryFileSystem):
    """Crashes (power loss) just before its n-th directory operation or sync."""

    def __init__(self) -> None:
        super().__init__()
        self.countdown = -1

    def _step(self) -> None:
        if self.countdown > 0:
            self.countdown -= 1
            if self.countdown == 0:
                self.crash("drop")
                raise _Crash()

    def rename(self, source: str, destination: str) -> None:
        self._step()
        super().rename(source, destination)

    def remove(self, path: str) -> None:
        self._step()
        super().remove(path)

    def sync_dir(self, path: str) -> None:
        self._step()
        super().sync_dir(path)

    def write_atomic(self, path: str, data: bytes, sync: bool = True) -> None:
        self._step()
        super().write_atomic(path, data, sync)


def test_crash_at_every_step_of_a_swap() -> None:
    crashed_inside_swap = 0
    for step in range(1, 400):
        fs = CrashingFileSystem()
        log = PartitionLog.open(fs, DIR, config(segment_bytes=500), 0)
        model: Model = []
        workload(log, model, random.Random(2), writes=60, keys=8)
        log.roll(1500)
        fs.countdown = step
        try:
            converge(log, 1500, max_bytes=400)
        except _Crash:
            crashed_inside_swap += any(n.endswith(".swap") for n in fs.listdir(DIR))
        else:
            break
        fs.countdown = -1
        again = PartitionLog.open(fs, DIR, config(segment_bytes=500), 1500)
        assert no_leftovers(fs)
        check_is_compaction_of(again, model)
        converge(again, 1500)
        check_is_compaction_of(again, model)
        # tombstones are within delete.retention.ms: each key keeps exactly its latest record
        assert sorted(k for _, k, _ in contents(again)) == sorted({k for _, k, _ in model})
    else:
        raise AssertionError("the pass never completed within the crash steps tried")
    assert crashed_inside_swap >= 2, "some crashes must hit a committed swap"


def test_retention_between_calls_restarts_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    fs = MemoryFileSystem()
    cfg = config(cleanup_policy="compact,delete", retention_ms=10_000)
    log = PartitionLog.open(fs, DIR, cfg, 0)
    model: Model = []
    workload(log, model, random.Random(3), writes=60, keys=10, timestamp=1000)
    workload(log, model, random.Random(4), writes=60, keys=10, timestamp=2000)
    log.roll(2000)
    monkeypatch.setattr(limits, "cleaner_bytes_per_call_max", 300)
    log.enforce_retention(3000)
    state = log.cleaner_pass
    assert state is not None
    old_bases = [s.base_offset for s, _ in state.sources]
    log.enforce_retention(11_500)  # retention deletes the segments of time 1000 first
    first = log.segments[0].base_offset
    assert first > old_bases[0]
    assert log.cleaner_pass is not state  # the stale pass was dropped, a new one started
    monkeypatch.setattr(limits, "cleaner_bytes_per_call_max", 1 << 20)
    log.enforce_retention(11_600)
    assert log.cleaner_pass is None and no_leftovers(fs)
    assert log.segments[0].base_offset == first, "no swap may bring back deleted segments"
    check_is_compaction_of(log, [r for r in model if r[0] >= first])


def test_delete_records_between_calls_restarts_the_pass() -> None:
    fs = MemoryFileSystem()
    log, model = started_pass(fs, groups_done=1)
    cut = log.segments[3].base_offset
    log.delete_records_before(cut)
    converge(log, 1500, max_bytes=300)
    assert log.segments[0].base_offset == cut and no_leftovers(fs)
    check_is_compaction_of(log, [r for r in model if r[0] >= cut])


def test_truncation_between_calls_aborts_and_lowers_the_checkpoint() -> None:
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, config(min_cleanable_dirty_ratio=0.0), 0)
    model: Model = []
    workload(log, model, random.Random(5), writes=80, keys=10)
    log.roll(1500)
    converge(log, 1500)
    workload(log, model, random.Random(6), writes=80, keys=10)
    log.roll(1500)
    clean_log(log, 1500, max_bytes=300)
    assert log.cleaner_pass is not None
    cut = log.cleaner_checkpoint - 3
    log.truncate_to(cut)
    assert log.cleaner_pass is None and no_leftovers(fs)
    assert log.cleaner_checkpoint == log.log_end_offset <= cut  # (cut may fall in a gap)
    model = [r for r in contents(log)]
    for i in range(40):  # different data at the truncated offsets
        put(log, model, b"k%03d" % (i % 4), b"after-%d" % i)
    log.roll(1500)
    converge(log, 1500)
    check_is_compaction_of(log, model)
    log.close()
    again = PartitionLog.open(fs, DIR, config(min_cleanable_dirty_ratio=0.0), 1500)
    assert again.cleaner_checkpoint == log.cleaner_checkpoint
    check_is_compaction_of(again, model)


def test_truncation_inside_the_planned_range_never_swaps_stale_data() -> None:
    fs = MemoryFileSystem()
    log, model = started_pass(fs, groups_done=3)
    state = log.cleaner_pass
    assert state is not None
    cut = state.groups[5][0].base_offset + 1
    log.truncate_to(cut)
    model = contents(log)
    for i in range(30):
        put(log, model, b"z%02d" % (i % 5), b"new")
    log.roll(1500)
    converge(log, 1500, max_bytes=300)
    check_is_compaction_of(log, model)
    assert no_leftovers(fs)


def test_close_and_delete_between_calls() -> None:
    fs = MemoryFileSystem()
    log, model = started_pass(fs, groups_done=2)
    assert log.cleaner_pass is not None and log.cleaner_pass.output is not None
    log.close()
    assert no_leftovers(fs) and log.cleaner_pass is None
    again = PartitionLog.open(fs, DIR, config(), 1500)
    check_is_compaction_of(again, model)
    clean_log(again, 1500, max_bytes=300)
    assert again.cleaner_pass is not None
    again.delete()
    assert clean_log(again, 1500) == CleanResult()
    assert not fs.exists(DIR)


def test_policy_change_to_delete_drops_the_pass() -> None:
    fs = MemoryFileSystem()
    log, model = started_pass(fs, groups_done=1)
    log.update_config(config(cleanup_policy="delete"))
    assert log.cleaner_pass is None and no_leftovers(fs)
    check_is_compaction_of(log, model)


def test_producer_metadata_and_offsets_survive_bounded_cleaning() -> None:
    log = PartitionLog.open(MemoryFileSystem(), DIR, config(segment_bytes=700), 0)
    model: Model = []
    for round_ in range(6):
        records = [Record(i, 1000 + i, b"k%d" % (i % 3), b"r%d-%d" % (round_, i))
                   for i in range(5)]
        info = log.append_as_leader(
            build_batch(records, compression=1, producer_id=4, producer_epoch=1,
                        base_sequence=round_ * 5), 0, 1000)
        model.extend((info.first_offset + i, r.key, r.value) for i, r in enumerate(records))
    log.roll(2000)
    converge(log, 2000, max_bytes=150)
    headers = batch_headers(log)
    assert all(h.producer_id == 4 and h.producer_epoch == 1 and h.compression == 1
               for h in headers)
    assert all(h.base_sequence == h.base_offset for h in headers)  # sequences kept
    check_is_compaction_of(log, model)
    assert log.append_as_leader(build_batch([Record(0, 1, b"k0", b"x")]), 0, 0).first_offset == 30


def test_a_producers_last_batch_stays_empty_so_its_sequence_survives_a_crash() -> None:
    fs = MemoryFileSystem()
    cfg = config(delete_retention_ms=0, min_cleanable_dirty_ratio=0.0)
    log = PartitionLog.open(fs, DIR, cfg, 0)
    model: Model = []
    for i in range(8):
        put(log, model, b"k%d" % i, b"v")
    put(log, model, b"k0", None)  # producer 9's last batch: a tombstone, expired at once
    log.roll(2000)
    other = build_batch([Record(0, 1000, b"k1", b"w")])  # a producer without id
    log.append_as_leader(other, 0, 1000)
    converge(log, 2000)
    assert (8, b"k0", None) not in contents(log)
    last = [h for h in batch_headers(log) if h.base_offset == 8]
    assert len(last) == 1 and last[0].records_count == 0 and last[0].producer_id == 9
    assert last[0].base_sequence == 8 and last[0].compression == 0
    fs.crash("keep")  # no snapshot: the producer state is rebuilt from the batch headers
    again = PartitionLog.open(fs, DIR, cfg, 2000)
    assert again.producer_state.producers[9].last_sequence == 8
    again.append_as_leader(build_batch([Record(0, 3000, b"k9", b"v")], producer_id=9,
                                        producer_epoch=2, base_sequence=9), 0, 3000)
    again.roll(3000)
    converge(again, 3000)  # producer 9 wrote again: the empty batch goes
    assert all(h.records_count > 0 for h in batch_headers(again))


def test_log_config_cleaner_settings() -> None:
    cfg = LogConfig.from_kafka_configs({"min.cleanable.dirty.ratio": "0.25",
                                        "max.compaction.lag.ms": "60000"})
    assert cfg.min_cleanable_dirty_ratio == 0.25 and cfg.max_compaction_lag_ms == 60000
    assert LogConfig().min_cleanable_dirty_ratio == 0.5
    assert LogConfig().max_compaction_lag_ms == 2**63 - 1
    for bad in ({"min.cleanable.dirty.ratio": "1.5"}, {"max.compaction.lag.ms": "0"}):
        with pytest.raises(ValueError):
            LogConfig.from_kafka_configs(bad)


def test_a_segment_compacted_to_nothing_does_not_hold_back_time_retention():
    fs = MemoryFileSystem()
    log = PartitionLog.open(fs, DIR, config(cleanup_policy="compact,delete", delete_retention_ms=0,
                                            retention_ms=10_000, segment_bytes=400), 0)

    def write(key: bytes, value: bytes | None, timestamp: int) -> None:
        log.append_as_leader(build_batch([Record(0, timestamp, key, value)]), 0, timestamp)

    write(b"k", None, 1000)  # a tombstone alone in the first segment: cleaned away entirely
    log.roll(1000)
    for i in range(3):  # old records in later segments, due for time retention
        write(f"live-{i}".encode(), b"v" * 300, 2000 + i)  # one per segment: no merging
        log.roll(2000 + i)
    write(b"new", b"v", 50_000)
    converge(log, 20_000)
    first = log.segments[0]
    assert first.size == 0 and first.max_timestamp < 0, "the tombstone's segment is empty now"
    log.enforce_retention(40_000)  # every closed segment is past retention.ms now
    assert [r.key for r in log.records()] == [b"new"]
    assert log.log_start_offset == log.segments[0].base_offset
