"""The idempotent producer through the broker's wire path: InitProducerId, then Produce.

Drives BrokerCore.handle_request with kio-encoded InitProducerId and Produce requests carrying
batches stamped with the producer id, epoch and sequences, as a client would send them: a retry
is answered with the original offset and not written again, a sequence gap is
OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH; and producer ids are never
handed out twice, across a restart too.
"""

from __future__ import annotations

import io
import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch

PRODUCE_VERSION = 9
INIT_PRODUCER_ID_VERSION = 4


def make_core(fs):
    counter = iter(range(1, 1_000_000))
    config = BrokerConfig(data_dir="/data", offsets_topic_num_partitions=1)
    return BrokerCore(config, fs, lambda: uuid.UUID(int=next(counter)), 0)


def call(core, key: int, version: int, data: dict):
    schema = codec.request_schema(key, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", key, version, 1, 4) + b"test"
    if codec.is_flexible(key, version):
        header += b"\x00"
    frame = core.handle_request(header + body.getvalue(), 1, "127.0.0.1", 1_000)
    offset = 8
    if codec.response_header_flexible(key, version):
        offset = codec.skip_tagged_fields(frame, offset)
    return entity_reader(codec.response_schema(key, version))(memoryview(frame), offset)[0]


def init_producer_id(core) -> tuple[int, int]:
    response = call(core, 22, INIT_PRODUCER_ID_VERSION, {"transactional_id": None, "transaction_timeout": 60_000,
                                                         "producer_id": -1, "producer_epoch": -1})
    assert response.error_code == ErrorCode.none
    return response.producer_id, response.producer_epoch


def produce(core, producer_id: int, epoch: int, sequence: int, count: int = 3):
    batch = build_batch([Record(i, 1_000, None, f"r{sequence + i}".encode()) for i in range(count)],
                        base_offset=0, producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence)
    response = call(core, 0, PRODUCE_VERSION, {
        "transactional_id": None, "acks": -1, "timeout": 1000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    partition = response.responses[0].partition_responses[0]
    return partition.error_code, partition.base_offset


@pytest.fixture
def core():
    core = make_core(MemoryFileSystem())
    core.controller.create_topic("t", 1, 1)
    return core


def test_retry_is_answered_with_the_original_offset(core):
    producer_id, epoch = init_producer_id(core)
    assert produce(core, producer_id, epoch, 0) == (ErrorCode.none, 0)
    assert produce(core, producer_id, epoch, 3) == (ErrorCode.none, 3)
    assert produce(core, producer_id, epoch, 0) == (ErrorCode.none, 0)  # a retry of the first batch
    assert core.partition("t", 0).log_end_offset == 6


def test_sequence_gap_and_old_epoch_are_refused(core):
    producer_id, epoch = init_producer_id(core)
    assert produce(core, producer_id, epoch, 0)[0] == ErrorCode.none
    assert produce(core, producer_id, epoch, 7)[0] == ErrorCode.out_of_order_sequence_number
    assert produce(core, producer_id, epoch + 1, 0)[0] == ErrorCode.none  # a new epoch starts at 0
    assert produce(core, producer_id, epoch, 3)[0] == ErrorCode.invalid_producer_epoch
    assert core.partition("t", 0).log_end_offset == 6


def test_producer_ids_are_unique_across_restarts():
    fs = MemoryFileSystem()
    core = make_core(fs)
    first = [init_producer_id(core)[0] for _ in range(5)]
    core.close()
    core = make_core(fs)
    second = [init_producer_id(core)[0] for _ in range(5)]
    assert len(set(first + second)) == 10 and min(second) > max(first)


def test_transactional_ids_go_to_their_coordinator(core):
    request = {"transactional_id": "tx", "transaction_timeout": 60_000, "producer_id": -1, "producer_epoch": -1}
    # Before FindCoordinator created __transaction_state, no broker coordinates the id.
    assert call(core, 22, INIT_PRODUCER_ID_VERSION, request).error_code == ErrorCode.not_coordinator
    found = call(core, 10, 3, {"key": "tx", "key_type": 1})
    assert found.error_code == ErrorCode.none and found.node_id == core.node_id
    response = call(core, 22, INIT_PRODUCER_ID_VERSION, request)
    assert response.error_code == ErrorCode.none and response.producer_epoch == 0
