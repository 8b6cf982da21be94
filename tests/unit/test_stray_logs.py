"""On start the broker keeps partition directories the metadata log does not know (strays,
renamed as Kafka does) and says so; it never deletes data because the metadata log lost it."""

import logging
import random
import uuid

from moldau.broker.config import BrokerConfig
from moldau.broker.core import METADATA_DIR, BrokerCore
from moldau.log.memory_fs import MemoryFileSystem
from moldau.records import Record, build_batch
from moldau.testing.node import committed, local_core


def _core(fs: MemoryFileSystem, seed: int = 1) -> BrokerCore:
    config = BrokerConfig()
    config.data_dir = "/data"
    rng = random.Random(seed)
    return local_core(config, fs, lambda: uuid.UUID(int=rng.getrandbits(128), version=4), 1_000)


def _produce(core: BrokerCore, topic: str, value: bytes) -> None:
    core.partition(topic, 0).append(build_batch([Record(0, 1_700_000_000_000, None, value)]), 1, 2_000)


def test_lost_metadata_log_keeps_partition_data_as_stray(caplog):
    fs = MemoryFileSystem()
    core = _core(fs)
    committed(core).create_topic("orders", 1, 1)
    _produce(core, "orders", b"precious")
    core.close()
    fs.remove_tree("/data/" + METADATA_DIR)  # the metadata log is gone (or unreadable)
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        reopened = _core(fs, seed=2)
    assert reopened.image.topic("orders") is None
    strays = [name for name in fs.listdir("/data") if name.endswith("-stray")]
    assert len(strays) == 1 and strays[0].startswith("orders-0.")
    assert any(name.endswith(".log") for name in fs.listdir("/data/" + strays[0]))
    assert "orders-0" in caplog.text and strays[0] in caplog.text
    # A new topic of the same name starts empty and leaves the stray alone.
    committed(reopened).create_topic("orders", 1, 1)
    assert reopened.partition("orders", 0).log_end_offset == 0
    assert strays[0] in fs.listdir("/data")


def test_directory_of_unknown_topic_id_is_moved_aside_not_deleted(caplog):
    fs = MemoryFileSystem()
    core = _core(fs)
    committed(core).create_topic("t", 1, 1)
    _produce(core, "t", b"keep me")
    core.close()
    # Another broker's metadata log (a copied data directory): same name, another topic id.
    fs.rename("/data/t-0", "/data/saved")
    fs.remove_tree("/data/" + METADATA_DIR)
    fresh = _core(fs, seed=3)
    fs.rename("/data/saved", "/data/t-0")
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        committed(fresh).create_topic("t", 1, 1)
    strays = [name for name in fs.listdir("/data") if name.endswith("-stray")]
    assert len(strays) == 1 and "unknown to the metadata log" in caplog.text
    assert fresh.partition("t", 0).log_end_offset == 0


def test_missing_partition_directory_is_reported(caplog):
    fs = MemoryFileSystem()
    core = _core(fs)
    committed(core).create_topic("t", 2, 1)
    core.close()
    fs.remove_tree("/data/t-1")
    with caplog.at_level(logging.WARNING, logger="moldau.log"):
        reopened = _core(fs)
    assert "t-1 is in the metadata log but its directory" in caplog.text
    assert sorted(reopened.partitions) == [("t", 0), ("t", 1)]


def test_deleted_topic_directory_is_finished_not_kept():
    fs = MemoryFileSystem()
    core = _core(fs)
    committed(core).create_topic("gone", 1, 1)
    committed(core).delete_topic("gone")
    core.close()
    _core(fs)
    assert not [name for name in fs.listdir("/data") if name.startswith("gone")]

