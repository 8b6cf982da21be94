"""Transactions through the broker's wire path on one node: the coordinator's APIs, markers,
read_committed fetches, fencing, timeouts, Transactions V2, restarts and bad input.

Drives BrokerCore.handle_request with kio-encoded requests as clients send them (time is
passed in, so timeouts are tested without waiting)."""

from __future__ import annotations

import io
import struct
import uuid

import pytest
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from moldau.broker import apis
from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.coordinator import txn_records
from moldau.coordinator.txn_metadata import TxnMetadata
from moldau.coordinator.txn_topic import partition_for
from moldau.log import MemoryFileSystem
from moldau.testing.node import committed, local_core
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch, iterate_batches, iterate_records

TXN = "tx-1"
NOW = 1_000_000


def make_core(fs, **overrides):
    counter = iter(range(1, 1_000_000))
    config = BrokerConfig(data_dir="/data", offsets_topic_num_partitions=2, transaction_state_log_num_partitions=3,
                          **overrides)
    return local_core(config, fs, lambda: uuid.UUID(int=next(counter)), NOW)


def call(core, key: int, version: int, data: dict, now_ms: int = NOW):
    schema = codec.request_schema(key, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", key, version, 1, 4) + b"test"
    if codec.is_flexible(key, version):
        header += b"\x00"
    core.local_node.advance_to(now_ms)
    frame = core.local_node.handle(header + body.getvalue())
    offset = 8
    if codec.response_header_flexible(key, version):
        offset = codec.skip_tagged_fields(frame, offset)
    return entity_reader(codec.response_schema(key, version))(memoryview(frame), offset)[0]


def find_coordinator(core, transactional_id: str = TXN):
    return call(core, 10, 3, {"key": transactional_id, "key_type": 1})


def init(core, transactional_id: str = TXN, timeout_ms: int = 60_000, expected=(-1, -1), version: int = 4,
         now_ms: int = NOW):
    return call(core, 22, version, {"transactional_id": transactional_id, "transaction_timeout": timeout_ms,
                                    "producer_id": expected[0], "producer_epoch": expected[1]}, now_ms)


def add_partitions(core, producer_id: int, epoch: int, partitions, transactional_id: str = TXN):
    topics = {}
    for name, index in partitions:
        topics.setdefault(name, []).append(index)
    response = call(core, 24, 3, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer_id,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": n, "partitions": p} for n, p in topics.items()]})
    return {(t.name, r.partition_index): r.partition_error_code
            for t in response.results_by_topic_v3_and_below for r in t.results_by_partition}


def produce(core, producer_id: int, epoch: int, sequence: int, values, index: int = 0, version: int = 9,
            transactional_id: str | None = TXN, transactional: bool = True, now_ms: int = NOW):
    batch = build_batch([Record(i, now_ms, None, v) for i, v in enumerate(values)], base_offset=0,
                        producer_id=producer_id, producer_epoch=epoch, base_sequence=sequence,
                        transactional=transactional)
    response = call(core, 0, version, {
        "transactional_id": transactional_id, "acks": -1, "timeout": 1000,
        "topic_data": [{"name": "t", "partition_data": [{"index": index, "records": batch}]}]}, now_ms)
    return response.responses[0].partition_responses[0].error_code


def end_txn(core, producer_id: int, epoch: int, commit: bool, version: int = 4, transactional_id: str = TXN,
            now_ms: int = NOW):
    return call(core, 26, version, {"transactional_id": transactional_id, "producer_id": producer_id,
                                    "producer_epoch": epoch, "committed": commit}, now_ms)


def fetch(core, index: int = 0, isolation: int = 1, offset: int = 0):
    response = call(core, 1, 12, {
        "replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": isolation,
        "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": "t", "partitions": [{"partition": index, "current_leader_epoch": -1,
                                                  "fetch_offset": offset, "last_fetched_epoch": -1,
                                                  "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}],
        "forgotten_topics_data": [], "rack_id": ""})
    return response.responses[0].partitions[0]


def data_records(partition) -> list[bytes]:
    """The values a consumer would see: control batches and aborted transactions dropped."""
    aborted = sorted((t.first_offset, t.producer_id) for t in (partition.aborted_transactions or ()))
    hidden: set[int] = set()
    values = []
    for header, raw in iterate_batches(partition.records or b""):
        while aborted and aborted[0][0] <= header.base_offset:  # as the Java consumer does
            hidden.add(aborted.pop(0)[1])
        if header.is_control:
            hidden.discard(header.producer_id)
        elif header.producer_id not in hidden:
            values += [r.value for r in iterate_records(raw)]
    return values


@pytest.fixture
def core():
    core = make_core(MemoryFileSystem())
    committed(core).create_topic("t", 3, 1)
    assert find_coordinator(core).error_code == ErrorCode.none
    return core


def start(core, partitions=(("t", 0),)):
    response = init(core)
    assert response.error_code == ErrorCode.none
    pid, epoch = response.producer_id, response.producer_epoch
    assert set(add_partitions(core, pid, epoch, partitions).values()) == {ErrorCode.none}
    return pid, epoch


def test_commit_makes_records_visible_to_read_committed(core):
    pid, epoch = start(core)
    assert produce(core, pid, epoch, 0, [b"a", b"b"]) == ErrorCode.none
    assert data_records(fetch(core, isolation=1)) == []  # the LSO holds the open transaction back
    assert fetch(core, isolation=1).last_stable_offset == 0
    assert data_records(fetch(core, isolation=0)) == [b"a", b"b"]
    assert end_txn(core, pid, epoch, True).error_code == ErrorCode.none
    partition = fetch(core, isolation=1)
    assert partition.last_stable_offset == 3 and partition.high_watermark == 3  # two records and the marker
    assert data_records(partition) == [b"a", b"b"]
    described = call(core, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0]
    assert described.transaction_state == "CompleteCommit" and described.topics == ()


def test_abort_is_reported_in_aborted_transactions(core):
    pid, epoch = start(core)
    produce(core, pid, epoch, 0, [b"x"])
    assert end_txn(core, pid, epoch, False).error_code == ErrorCode.none
    assert add_partitions(core, pid, epoch, [("t", 0)]) == {("t", 0): ErrorCode.none}
    produce(core, pid, epoch, 1, [b"y"])
    end_txn(core, pid, epoch, True)
    partition = fetch(core, isolation=1)
    assert [(t.producer_id, t.first_offset) for t in partition.aborted_transactions] == [(pid, 0)]
    assert data_records(partition) == [b"y"]


def test_fencing_a_producer_aborts_its_transaction(core):
    old_pid, old_epoch = start(core)
    produce(core, old_pid, old_epoch, 0, [b"zombie"])
    assert init(core).error_code == ErrorCode.concurrent_transactions  # fence, abort, then retry
    second = init(core)
    assert second.error_code == ErrorCode.none and second.producer_id == old_pid
    assert second.producer_epoch > old_epoch + 1
    assert produce(core, old_pid, old_epoch, 1, [b"late"]) == ErrorCode.invalid_producer_epoch
    assert end_txn(core, old_pid, old_epoch, True).error_code == ErrorCode.producer_fenced
    assert data_records(fetch(core, isolation=1)) == []


def test_transactions_v2_adds_partitions_on_produce_and_bumps_the_epoch(core):
    response = init(core, version=5)
    pid, epoch = response.producer_id, response.producer_epoch
    assert produce(core, pid, epoch, 0, [b"v2"], version=12) == ErrorCode.none  # no AddPartitionsToTxn
    ended = end_txn(core, pid, epoch, True, version=5)
    assert ended.error_code == ErrorCode.none and (ended.producer_id, ended.producer_epoch) == (pid, epoch + 1)
    assert data_records(fetch(core)) == [b"v2"]
    # A retried EndTxn (the client missed the answer) is answered with the same epoch.
    again = end_txn(core, pid, epoch, True, version=5)
    assert again.error_code == ErrorCode.none and again.producer_epoch == epoch + 1
    # The old epoch is fenced at the partition by the marker's newer epoch.
    assert produce(core, pid, epoch, 1, [b"late"], version=12) == ErrorCode.invalid_producer_epoch
    assert produce(core, pid, epoch + 1, 0, [b"next"], version=12) == ErrorCode.none


def test_timed_out_transaction_is_aborted_at_its_deadline(core):
    response = init(core, timeout_ms=5_000)
    pid, epoch = response.producer_id, response.producer_epoch
    add_partitions(core, pid, epoch, [("t", 0)])
    produce(core, pid, epoch, 0, [b"slow"])
    assert core.next_deadline_ms() <= core.extensions["txn_coordinator"].next_deadline_ms() == NOW + 5_001
    core.local_node.advance_to(NOW + 5_001)
    assert call(core, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0].transaction_state == "CompleteAbort"
    assert [t.producer_id for t in fetch(core).aborted_transactions] == [pid]
    assert end_txn(core, pid, epoch, True, now_ms=NOW + 6_000).error_code == ErrorCode.producer_fenced
    assert produce(core, pid, epoch, 1, [b"late"]) == ErrorCode.invalid_producer_epoch


def test_timed_out_transaction_whose_abort_fails_is_aborted_later(core):
    response = init(core, timeout_ms=5_000)
    pid, epoch = response.producer_id, response.producer_epoch
    add_partitions(core, pid, epoch, [("t", 0)])
    produce(core, pid, epoch, 0, [b"slow"])
    state_log = core.partition("__transaction_state", partition_for(TXN, 3))
    healthy = state_log.replicas, state_log.isr
    # the ISR of __transaction_state shrank below min.insync.replicas (2 of 2 replicas)
    state_log.replicas, state_log.isr = (1, 2), (1,)
    state_log.min_insync_replicas = 2
    core.local_node.advance_to(NOW + 5_001)
    assert call(core, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0].transaction_state == "Ongoing"
    retry_at = NOW + 5_001 + core.config.transaction_abort_timed_out_transaction_cleanup_interval_ms
    assert core.extensions["txn_coordinator"].next_deadline_ms() == retry_at, "the failed abort is tried again"
    state_log.replicas, state_log.isr = healthy
    core.local_node.advance_to(retry_at)
    assert call(core, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0].transaction_state == "CompleteAbort"
    assert [t.producer_id for t in fetch(core).aborted_transactions] == [pid]


def test_transactional_offsets_count_only_once_committed(core):
    pid, epoch = start(core)
    add_offsets = call(core, 25, 3, {"transactional_id": TXN, "producer_id": pid, "producer_epoch": epoch,
                                     "group_id": "g"})
    assert add_offsets.error_code == ErrorCode.none
    committed = call(core, 28, 3, {"transactional_id": TXN, "group_id": "g", "producer_id": pid,
                                   "producer_epoch": epoch, "generation_id": -1, "member_id": "",
                                   "group_instance_id": None,
                                   "topics": [{"name": "t", "partitions": [{"partition_index": 0,
                                               "committed_offset": 42, "committed_leader_epoch": -1,
                                               "committed_metadata": ""}]}]})
    assert committed.topics[0].partitions[0].error_code == ErrorCode.none
    stable = call(core, 9, 7, {"group_id": "g", "require_stable": True,
                               "topics": [{"name": "t", "partition_indexes": [0]}]})
    assert stable.topics[0].partitions[0].error_code == ErrorCode.unstable_offset_commit
    end_txn(core, pid, epoch, True)
    stable = call(core, 9, 7, {"group_id": "g", "require_stable": True,
                               "topics": [{"name": "t", "partition_indexes": [0]}]})
    assert stable.topics[0].partitions[0].committed_offset == 42


def test_state_survives_a_restart(core):
    fs = core.fs
    pid, epoch = start(core, [("t", 0), ("t", 1)])
    produce(core, pid, epoch, 0, [b"open"])
    core.close()
    again = make_core(fs)
    state = call(again, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0]
    assert (state.transaction_state, state.producer_id, state.producer_epoch) == ("Ongoing", pid, epoch)
    assert fetch(again).last_stable_offset == 0  # the open transaction still holds the LSO
    assert end_txn(again, pid, epoch, True).error_code == ErrorCode.none
    assert data_records(fetch(again)) == [b"open"]


def test_state_record_uses_kafkas_schema(core):
    pid, epoch = start(core)
    index = partition_for(TXN, 3)
    records = list(core.partition("__transaction_state", index).log.records())
    assert txn_records.decode_key(records[-1].key) == TXN
    value = txn_records.decode_value(records[-1].value)
    assert value.producer_id == pid and value.state.kafka_name == "Ongoing" and value.partitions == (("t", (0,)),)
    assert records[-1].value[:2] == b"\x00\x01"  # TransactionLogValue v1
    # As Kafka 4.1.1: no previous (or next) producer id written; read back as the current one.
    assert value.previous_producer_id == -1 and value.next_producer_id == -1
    assert records[-1].value.endswith(b"\x00")  # no tagged fields (a V1 client)
    assert TxnMetadata.from_log(TXN, value).prev_producer_id == pid


def test_bad_input_gets_kafkas_error_codes(core):
    assert end_txn(core, 5, 0, True, transactional_id="nobody").error_code == ErrorCode.invalid_producer_id_mapping
    assert init(core, timeout_ms=16 * 60_000).error_code == ErrorCode.invalid_transaction_timeout
    assert init(core, transactional_id="x" * 40_000).error_code == ErrorCode.invalid_request
    assert find_coordinator(core, "x" * 40_000).error_code == ErrorCode.invalid_request
    response = init(core)
    pid, epoch = response.producer_id, response.producer_epoch
    # A transactional batch for a partition that was never added: refused, nothing written.
    assert produce(core, pid, epoch, 0, [b"stray"]) == ErrorCode.invalid_txn_state
    assert produce(core, pid, epoch, 0, [b"stray"], version=11) == ErrorCode.transaction_abortable
    assert produce(core, pid, epoch, 0, [b"x"], transactional_id=None) == \
        ErrorCode.transactional_id_authorization_failed
    assert core.partition("t", 0).log_end_offset == 0
    assert end_txn(core, pid, epoch, True).error_code == ErrorCode.invalid_txn_state  # nothing to commit
    assert add_partitions(core, pid, epoch, [("nope", 0), ("t", 0)]) == {
        ("nope", 0): ErrorCode.unknown_topic_or_partition, ("t", 0): ErrorCode.operation_not_attempted}
    assert add_partitions(core, pid + 1, epoch, [("t", 0)]) == {("t", 0): ErrorCode.invalid_producer_id_mapping}
    markers = call(core, 27, 1, {"markers": [{"producer_id": 999, "producer_epoch": 0, "transaction_result": True,
                                              "coordinator_epoch": 0,
                                              "topics": [{"name": "nope", "partition_indexes": [0]}]}]})
    assert markers.markers[0].topics[0].partitions[0].error_code == ErrorCode.unknown_topic_or_partition


def test_list_transactions_and_describe_producers(core):
    pid, epoch = start(core)
    produce(core, pid, epoch, 0, [b"a"])
    listed = call(core, 66, 1, {"state_filters": ["Ongoing", "Bogus"], "producer_id_filters": [],
                                "duration_filter": -1})
    assert [(t.transactional_id, t.transaction_state) for t in listed.transaction_states] == [(TXN, "Ongoing")]
    assert listed.unknown_state_filters == ("Bogus",)
    producers = call(core, 61, 0, {"topics": [{"name": "t", "partition_indexes": [0]}]})
    producer = producers.topics[0].partitions[0].active_producers[0]
    assert (producer.producer_id, producer.current_txn_start_offset) == (pid, 0)


def test_a_decided_transaction_is_finished_by_the_next_coordinator(core):
    """PrepareCommit was written, then the coordinator died before its markers went out: the
    coordinator that loads the partition next writes them and completes the transaction."""
    fs = core.fs
    pid, epoch = start(core, [("t", 0), ("t", 1)])
    produce(core, pid, epoch, 0, [b"decided"], index=1)
    coordinator = core.extensions["txn_coordinator"]
    meta = coordinator.txns[TXN]
    index = coordinator.partition_of(TXN)
    from moldau.coordinator.txn_state import PREPARE_COMMIT
    transit = meta.prepare_abort_or_commit(PREPARE_COMMIT, 0, -1, NOW, False)
    coordinator._write(meta, coordinator.loaded[index], transit, NOW, lambda error: None)  # no markers sent
    assert fetch(core, index=1).last_stable_offset == 0
    core.close()
    again = make_core(fs)
    again.tick(NOW + 1_000)  # loads __transaction_state, resumes the markers
    assert data_records(fetch(again, index=1)) == [b"decided"]
    state = call(again, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0]
    assert state.transaction_state == "CompleteCommit"


def test_an_idle_transactional_id_expires(core):
    core.config.transactional_id_expiration_ms = 60_000
    pid, epoch = start(core)
    end_txn(core, pid, epoch, False)
    core.tick(NOW + 10 * 3_600_000)  # the hourly check, long after the last use
    state = call(core, 65, 0, {"transactional_ids": [TXN]}).transaction_states[0]
    assert state.error_code == ErrorCode.transactional_id_not_found
    index = core.extensions["txn_coordinator"].partition_of(TXN)
    last = list(core.partition("__transaction_state", index).log.records())[-1]
    assert txn_records.decode_key(last.key) == TXN and last.value is None  # a tombstone
    response = init(core, now_ms=NOW + 10 * 3_600_000)
    assert response.error_code == ErrorCode.none and response.producer_epoch == 0
