"""The broker tick shares one compaction budget between all compacted logs, and every log gets
its turn: many dirty logs cost a tick one budget, not one budget each."""

import random
import uuid

from moldau import limits
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.testing.node import committed, local_core
from moldau.log.memory_fs import MemoryFileSystem
from moldau.records import Record, build_batch


def _core() -> BrokerCore:
    config = BrokerConfig()
    config.data_dir = "/data"
    rng = random.Random(3)
    return local_core(config, MemoryFileSystem(), lambda: uuid.UUID(int=rng.getrandbits(128), version=4), 1_000)


def test_compacted_logs_share_the_tick_budget_and_take_turns(monkeypatch):
    monkeypatch.setattr(limits, "cleaner_bytes_per_tick_max", 3000)
    core = _core()
    topics = [f"compacted-{i}" for i in range(4)]
    for topic in topics:
        committed(core).create_topic(topic, 1, 1, {"cleanup.policy": "compact", "segment.bytes": "1000"})
        partition = core.partition(topic, 0)
        for i in range(60):  # the same 5 keys over and over: mostly dirty duplicates
            batch = build_batch([Record(0, 1_000, f"k{i % 5}".encode(), b"v" * 40)])
            partition.append(batch, 1, 1_000)
    batch_max = max(h.batch_length + 12 for t in topics for s in core.partition(t, 0).log.segments
                    for h in s.scan_headers(0))

    now = 10_000
    logs = [core.partition(t, 0).log for t in topics]
    while any(log.cleaner_pass is not None or log.cleaner_checkpoint < log.segments[-1].base_offset for log in logs):
        core.tick(now)
        read = sum(log.cleaner_bytes_read for log in logs)
        assert read <= limits.cleaner_bytes_per_tick_max + batch_max, "one budget per tick"
        now += 500
        assert now < 10_000 + 500 * 200, "every compacted log must finish cleaning"
    for log in logs:  # each log got its turns: below the active segment, one record per key
        keys = [r.key for r in log.records() if r.offset < log.segments[-1].base_offset]
        assert sorted(keys) == sorted(set(keys)) and len(keys) == 5
