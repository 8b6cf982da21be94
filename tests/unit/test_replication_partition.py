"""Unit tests of replication/partition.py: the leader's acks=all checks on a real in-memory log."""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log import MemoryFileSystem
from moldau.records import Record, build_batch
from moldau.replication.partition import PartitionError


def _core() -> BrokerCore:
    counter = iter(range(1, 1_000_000))
    return BrokerCore(BrokerConfig(data_dir="/data"), MemoryFileSystem(), lambda: uuid.UUID(int=next(counter)), 0)


def _batch() -> bytes:
    return build_batch([Record(0, 1000, b"k", b"v")], base_offset=0)


def test_min_insync_replicas_above_the_replication_factor_is_capped_at_it():
    """Kafka 4 caps min.insync.replicas at the replica count: a single-replica topic with
    min.insync.replicas=2 (a production setting copied to a one-node broker) takes acks=all."""
    core = _core()
    core.controller.create_topic("strict", 1, 1, {"min.insync.replicas": "2"})
    partition = core.partition("strict", 0)
    assert partition.min_insync_replicas == 2
    assert partition.append(_batch(), -1, 1000).first_offset == 0
    assert partition.append(_batch(), 1, 1000).first_offset == 1


def test_acks_all_fails_while_the_isr_is_below_min_insync_replicas():
    core = _core()
    core.controller.create_topic("strict", 1, 1, {"min.insync.replicas": "2"})
    partition = core.partition("strict", 0)
    partition.replicas, partition.isr = (1, 2, 3), (1,)  # two followers fell out of the ISR
    with pytest.raises(PartitionError) as caught:
        partition.append(_batch(), -1, 1000)
    assert caught.value.error_code == ErrorCode.not_enough_replicas
    assert partition.append(_batch(), 1, 1000).first_offset == 0  # acks=1 does not wait for the ISR
    partition.isr = (1, 2)
    assert partition.append(_batch(), -1, 1000).first_offset == 1
