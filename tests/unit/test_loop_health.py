"""runtime/loop_health.py: the heartbeat sees a blocked loop and names what else ran long."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import time

from moldau.runtime import loop_health
from moldau.runtime.loop_health import Histogram, LoopHealth


def test_histogram_buckets_sum_and_max():
    histogram = Histogram()
    for ms in (0.05, 3, 3, 700):
        histogram.observe(int(ms * 1e6))
    assert histogram.count == 4
    cumulative = histogram.cumulative()
    bounds = loop_health.BUCKETS_S
    assert cumulative[bounds.index(0.0001)] == 1  # 50 µs
    assert cumulative[bounds.index(0.005)] == 3  # and the two 3 ms
    assert cumulative[bounds.index(1.0)] == 4 and cumulative[-1] == 4
    assert histogram.sum_ns == int(0.05e6) + 2 * 3_000_000 + 700_000_000
    assert histogram.take_max() == 700_000_000 and histogram.take_max() == 0


def test_a_blocked_loop_is_measured_and_logged_with_the_slow_tick(caplog):
    async def scenario() -> LoopHealth:
        health = LoopHealth(asyncio.get_running_loop(), heartbeat_s=0.01, stall_log_ms=100)
        health.start()
        await asyncio.sleep(0.05)
        health.timed_tick(lambda now_ms: time.sleep(0.3), 0)  # a tick that holds the thread
        await asyncio.sleep(0.05)
        health.stop()
        return health

    with caplog.at_level(logging.WARNING, logger="moldau.stall"):
        health = asyncio.run(scenario())
    assert health.ticks.count == 1 and health.ticks.sum_ns >= 300_000_000
    assert health.lag.count >= 3
    slow = sum(health.lag.counts[loop_health.BUCKETS_S.index(0.25) + 1:])
    assert slow == 1  # exactly one heartbeat came ≥ 250 ms late
    stalls = [r.getMessage() for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert len(stalls) == 1, stalls
    assert int(re.search(r"broker tick (\d+) ms", stalls[0]).group(1)) >= 300, stalls


def test_gc_pauses_are_timed_by_generation():
    loop_health.install_gc_timer()
    before = loop_health.GC_PAUSES[2].count
    gc.collect()
    assert loop_health.GC_PAUSES[2].count == before + 1


def test_segment_writes_and_fsyncs_are_timed(tmp_path):
    from moldau.runtime.disk import OsFileSystem

    fs = OsFileSystem()
    writes, syncs = loop_health.DISK_WRITES.count, loop_health.DISK_SYNCS.count
    handle = fs.open(str(tmp_path / "00000000000000000000.log"), create=True)
    handle.append([b"abc", b"def"])
    handle.sync()
    handle.close()
    fs.write_atomic(str(tmp_path / "checkpoint"), b"0\n")  # the file, then its directory
    assert loop_health.DISK_WRITES.count == writes + 1
    assert loop_health.DISK_SYNCS.count == syncs + 3


def test_a_rolled_segment_is_flushed_off_the_loop_then_the_recovery_point_moves(tmp_path):
    """OsFileSystem with a worker: roll() returns before the fsync; the completion comes back
    through the loop, after which the recovery point (memory and file) names the new segment."""
    from moldau.log import LogConfig, PartitionLog
    from moldau.log.checkpoints import RECOVERY_POINT_FILE, read_offset_checkpoint
    from moldau.records import Record, build_batch
    from moldau.runtime.disk import OsFileSystem

    async def scenario():
        fs = OsFileSystem()
        fs.run_background_on(asyncio.get_running_loop().call_soon_threadsafe)
        directory = str(tmp_path / "t-0")
        log = PartitionLog.open(fs, directory, LogConfig(segment_bytes=4000), 0)
        background = loop_health.BACKGROUND_SYNCS.count
        for i in range(40):
            log.append_as_leader(build_batch([Record(0, 1000, None, b"v" * 200)]), 0, 0)
        assert len(log._segments) > 1
        fs.drain_background()
        await asyncio.sleep(0.05)  # the completions run on the loop
        assert loop_health.BACKGROUND_SYNCS.count > background  # the fsyncs ran on the worker
        assert log.recovery_point == log._segments[-1].base_offset
        assert read_offset_checkpoint(fs, directory, RECOVERY_POINT_FILE) == log.recovery_point
        log.close()
        return log

    asyncio.run(scenario())
