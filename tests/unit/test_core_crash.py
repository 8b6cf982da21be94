"""The broker core on the in-memory file system: a power loss keeps every topic the
controller committed (the metadata log is fsynced per change), a process kill keeps every
acknowledged batch, and a reopened core serves them again. Seeded, deterministic."""

import random
import uuid

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log.memory_fs import MemoryFileSystem
from moldau.records import Record, build_batch


def _core(fs: MemoryFileSystem, seed: int = 1) -> BrokerCore:
    config = BrokerConfig()
    config.data_dir = "/data"
    rng = random.Random(seed)
    return BrokerCore(config, fs, lambda: uuid.UUID(int=rng.getrandbits(128), version=4), 1_000)


def _append(core: BrokerCore, topic: str, values: list[bytes]) -> int:
    partition = core.partition(topic, 0)
    records = [Record(i, 1_700_000_000_000 + i, None, v) for i, v in enumerate(values)]
    return partition.append(build_batch(records), 1, 2_000).first_offset


def test_power_loss_keeps_committed_topics_and_ids():
    fs = MemoryFileSystem()
    core = _core(fs)
    created = core.controller.create_topic("orders", 3, 1, {"retention.ms": "5000"})
    core.controller.create_topic("gone", 1, 1)
    core.controller.delete_topic("gone")
    fs.crash("tear", random.Random(7))
    reopened = _core(fs, seed=2)
    topic = reopened.image.topic("orders")
    assert topic.topic_id == created.topic_id and sorted(topic.partitions) == [0, 1, 2]
    assert reopened.image.topic("gone") is None
    assert reopened.image.topic_configs("orders") == {"retention.ms": "5000"}
    assert sorted(reopened.partitions) == [("orders", 0), ("orders", 1), ("orders", 2)]


def test_process_kill_keeps_acknowledged_batches():
    fs = MemoryFileSystem()
    core = _core(fs)
    core.controller.create_topic("t", 1, 1)
    offsets = [_append(core, "t", [f"v{i}".encode()] * 3) for i in range(50)]
    assert offsets == list(range(0, 150, 3))
    fs.crash("keep")
    reopened = _core(fs)
    partition = reopened.partition("t", 0)
    assert partition.log_end_offset == 150 and partition.high_watermark == 150
    assert _append(reopened, "t", [b"after"]) == 150


def test_closing_an_idle_broker_waits_for_no_disk():
    """SIGTERM on an idle server took seconds: every partition's close fsynced its segment and
    wrote a producer snapshot, appended to or not. Nothing changed, nothing to sync."""
    fs = MemoryFileSystem()
    core = _core(fs)
    core.controller.create_topic("busy", 1, 1)
    core.controller.create_topic("idle", 20, 1)
    _append(core, "busy", [b"v"])
    core.close()
    reopened = _core(fs)
    before = fs.syncs
    reopened.close()
    assert fs.syncs - before <= 2  # the one non-empty log's producer snapshot (file and directory)
    again = _core(fs)
    assert again.partition("busy", 0).log_end_offset == 1
