"""Unit tests of the leader's produce-side checks (replication/partition.py) and of the topic and
broker configs that feed them, on a real BrokerCore over an in-memory log."""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.testing.node import committed, local_core
from moldau.log import MemoryFileSystem
from moldau.records import Record, build_batch
from moldau.replication.partition import FollowerState, PartitionError


def _core_on(fs: MemoryFileSystem) -> BrokerCore:
    counter = iter(range(1, 1_000_000))
    return local_core(BrokerConfig(data_dir="/data"), fs, lambda: uuid.UUID(int=next(counter)), 0)


def _core() -> BrokerCore:
    return _core_on(MemoryFileSystem())


def _batch() -> bytes:
    return build_batch([Record(0, 1000, b"k", b"v")], base_offset=0)


def test_min_insync_replicas_above_the_replication_factor_is_capped_at_it():
    """Kafka 4 caps min.insync.replicas at the replica count: a single-replica topic with
    min.insync.replicas=2 (a production setting copied to a one-node broker) takes acks=all."""
    core = _core()
    committed(core).create_topic("strict", 1, 1, {"min.insync.replicas": "2"})
    partition = core.partition("strict", 0)
    assert partition.min_insync_replicas == 2
    assert partition.append(_batch(), -1, 1000).first_offset == 0
    assert partition.append(_batch(), 1, 1000).first_offset == 1


def test_acks_all_fails_while_the_isr_is_below_min_insync_replicas():
    core = _core()
    committed(core).create_topic("strict", 1, 1, {"min.insync.replicas": "2"})
    partition = core.partition("strict", 0)
    partition.replicas, partition.isr = (1, 2, 3), (1,)  # two followers fell out of the ISR
    with pytest.raises(PartitionError) as caught:
        partition.append(_batch(), -1, 1000)
    assert caught.value.error_code == ErrorCode.not_enough_replicas
    assert partition.append(_batch(), 1, 1000).first_offset == 0  # acks=1 does not wait for the ISR
    partition.isr = (1, 2)
    partition.followers = {2: FollowerState(last_fetch_ms=1000), 3: FollowerState(last_fetch_ms=1000)}
    assert partition.append(_batch(), -1, 1000).first_offset == 1


def test_acks_all_is_refused_when_followers_in_the_isr_went_silent():
    """With no controller left to shrink the ISR (a quorum lost), the leader itself refuses
    acks=all once its in-sync followers have not fetched for a session, instead of letting
    every write time out."""
    core = _core()
    committed(core).create_topic("strict", 1, 1, {"min.insync.replicas": "2"})
    partition = core.partition("strict", 0)
    partition.replicas, partition.isr = (1, 2, 3), (1, 2, 3)
    partition.followers = {2: FollowerState(last_fetch_ms=1000), 3: FollowerState(last_fetch_ms=1000)}
    partition.follower_silence_max_ms = 3000
    assert partition.append(_batch(), -1, 3500).first_offset == 0
    partition.followers[3].last_fetch_ms = 500  # 3 fell silent; 2 still fetches
    assert partition.append(_batch(), -1, 3900).first_offset == 1
    with pytest.raises(PartitionError) as caught:
        partition.append(_batch(), -1, 4500)  # and now 2 too
    assert caught.value.error_code == ErrorCode.not_enough_replicas
    assert partition.append(_batch(), 1, 4500).first_offset == 2  # acks=1 still goes


def test_an_invalid_dynamic_broker_config_is_refused_before_the_metadata_log():
    """kafka-configs --entity-type brokers --add-config log.retention.ms=abc was committed and
    then broke every reconfiguration, and every later start of the broker."""
    from moldau.controller.controller import ControllerError

    core = _core()
    committed(core).create_topic("t", 1, 1)
    for name in ("1", ""):
        with pytest.raises(ControllerError) as caught:
            committed(core).alter_configs(4, name, {"log.retention.ms": "abc"})
        assert caught.value.error_code == ErrorCode.invalid_request
        assert "log.retention.ms" in str(caught.value)
    assert core.image.configs.get((4, "1"), {}) == {} and core.image.configs.get((4, ""), {}) == {}
    committed(core).alter_configs(4, "1", {"log.retention.ms": "1000"})
    assert core.topic_configs("t")["retention.ms"] == "1000"


def test_a_metadata_log_holding_an_invalid_broker_config_still_starts():
    """A log written before validation: the bad value is ignored, the broker starts."""
    from moldau.controller import records as r

    fs = MemoryFileSystem()
    core = _core_on(fs)
    committed(core).create_topic("t", 1, 1)
    committed(core).write([r.ConfigRecord(resource_type=4, resource_name="", name="log.retention.ms", value="abc")], 0)  # as before the fix
    core.close()
    reopened = _core_on(fs)
    assert reopened.topic_configs("t")["retention.ms"] == "604800000"
    assert reopened.partition("t", 0).append(_batch(), 1, 1000).first_offset == 0


def test_values_the_partition_log_refuses_are_refused_before_the_metadata_log():
    """min.cleanable.dirty.ratio=2 passed the type check, was committed, and then every
    reconfiguration and every later start of the broker failed in LogConfig."""
    from moldau.controller.controller import ControllerError

    core = _core()
    committed(core).create_topic("t", 1, 1)
    with pytest.raises(ControllerError) as caught:
        committed(core).alter_configs(2, "t", {"min.cleanable.dirty.ratio": "2"})
    assert caught.value.error_code == ErrorCode.invalid_config
    with pytest.raises(ControllerError) as caught:
        committed(core).create_topic("u", 1, 1, {"min.cleanable.dirty.ratio": "1.5"})
    assert caught.value.error_code == ErrorCode.invalid_config
    with pytest.raises(ControllerError) as caught:
        committed(core).alter_configs(4, "", {"log.cleaner.min.cleanable.ratio": "2"})
    assert caught.value.error_code == ErrorCode.invalid_request
    committed(core).alter_configs(2, "t", {"min.cleanable.dirty.ratio": "0.9"})
    assert core.topic_configs("t")["min.cleanable.dirty.ratio"] == "0.9"


def test_a_metadata_log_holding_an_invalid_topic_config_still_starts():
    from moldau.controller import records as r

    fs = MemoryFileSystem()
    core = _core_on(fs)
    committed(core).create_topic("t", 1, 1, {"retention.ms": "5000"})
    committed(core).write([r.ConfigRecord(resource_type=2, resource_name="t", name="min.cleanable.dirty.ratio", value="2")], 0)  # as before the fix
    core.close()
    reopened = _core_on(fs)
    assert reopened.topic_configs("t")["min.cleanable.dirty.ratio"] == "0.5"
    assert reopened.topic_configs("t")["retention.ms"] == "5000"
