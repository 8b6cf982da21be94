"""The cross-node paths of transactions, on one core whose metadata names a second broker:
markers for a partition another node leads leave as WriteTxnMarkers through the outbox and are
retried until they land; a Produce for a transaction coordinated elsewhere waits for the
coordinator's AddPartitionsToTxn answer. The other node is played by hand (its responses are
kio objects handed to `on_response`, as the runtime would)."""

from __future__ import annotations

import io
import struct
import uuid

import pytest
from kio.schema.add_partitions_to_txn.v5 import response as add_response
from kio.schema.errors import ErrorCode
from kio.schema.write_txn_markers.v1 import response as marker_response
from kio.serial import entity_reader, entity_writer

from moldau.broker import apis
from moldau.controller import records as r
from moldau.coordinator.txn_topic import TOPIC, partition_for
from moldau.log import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch
from moldau.testing.node import committed
from test_transactions_wire import NOW, add_partitions, call, data_records, fetch, init, make_core, produce

TXN_PARTITIONS = 3


def transactional_id_on(partition: int) -> str:
    return next(f"remote-{n}" for n in range(1000) if partition_for(f"remote-{n}", TXN_PARTITIONS) == partition)


LOCAL_TXN = transactional_id_on(0)  # coordinated here (node 1)
REMOTE_TXN = transactional_id_on(1)  # coordinated by node 2


@pytest.fixture
def core():
    core = make_core(MemoryFileSystem())
    node = core.local_node
    node.hold_remote = True  # the test plays node 2
    committed(core).write([r.RegisterBrokerRecord(
        broker_id=2, incarnation_id=uuid.UUID(int=2), broker_epoch=core.controller.next_offset(),
        end_points=(r.BrokerEndpoint(name="PLAINTEXT", host="127.0.0.1", port=9999, security_protocol=0),),
        rack=None, fenced=False)], node.now_ms)
    committed(core).create_topic(TOPIC, assignments={0: [1], 1: [2], 2: [1]}, configs={"cleanup.policy": "compact"},
                                 now_ms=node.now_ms)
    committed(core).create_topic("t", assignments={0: [1]}, now_ms=node.now_ms)
    committed(core).create_topic("elsewhere", assignments={0: [2]}, now_ms=node.now_ms)
    node.remote.clear()
    return core


def taken(core, api_key: int):
    node = core.local_node
    requests = [request for request in node.remote if request.api_key == api_key]
    node.remote[:] = [request for request in node.remote if request.api_key != api_key]
    return requests


def send_produce(core, version: int, data: dict):
    schema = codec.request_schema(0, version)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, data))
    header = struct.pack(">hhih", 0, version, 1, 4) + b"test" + (b"\x00" if codec.is_flexible(0, version) else b"")
    result = core.handle_request(header + body.getvalue(), 1, "127.0.0.1", NOW)
    core.local_node.pump()
    return result


def produce_error(frame, version: int) -> ErrorCode:
    frame = b"".join(frame) if isinstance(frame, list) else frame
    offset = codec.skip_tagged_fields(frame, 8) if codec.response_header_flexible(0, version) else 8
    response = entity_reader(codec.response_schema(0, version))(memoryview(frame), offset)[0]
    return response.responses[0].partition_responses[0].error_code


def markers_answered(request, code: ErrorCode):
    marker = request.body.markers[0]
    return marker_response.WriteTxnMarkersResponse(markers=(marker_response.WritableTxnMarkerResult(
        producer_id=marker.producer_id, topics=tuple(marker_response.WritableTxnMarkerTopicResult(
            name=t.name, partitions=tuple(marker_response.WritableTxnMarkerPartitionResult(
                partition_index=i, error_code=code) for i in t.partition_indexes)) for t in marker.topics)),))


def test_markers_for_another_leader_are_sent_and_retried_until_they_land(core):
    started = init(core, LOCAL_TXN)
    pid, epoch = started.producer_id, started.producer_epoch
    assert set(add_partitions(core, pid, epoch, [("t", 0), ("elsewhere", 0)], LOCAL_TXN).values()) == {ErrorCode.none}
    produce(core, pid, epoch, 0, [b"here"], transactional_id=LOCAL_TXN)
    core.config.request_timeout_ms = 1234  # request.timeout.ms: how long a marker request may go unanswered
    ended = call(core, 26, 4, {"transactional_id": LOCAL_TXN, "producer_id": pid, "producer_epoch": epoch,
                               "committed": True})
    assert ended.error_code == ErrorCode.none  # decided: PrepareCommit is durable
    assert data_records(fetch(core)) == [b"here"]  # the local marker is written at once
    (request,) = taken(core, 27)
    assert request.destination == 2 and request.body.markers[0].transaction_result is True
    # its own connection: on the one replica fetches use it would wait behind a held Fetch,
    # and the Fetch that must replicate these markers behind it
    assert request.channel == "txn-markers"
    assert request.timeout_ms == 1234
    request.on_response(None, NOW + 10)  # no connection: tried again shortly
    assert core.next_deadline_ms() <= core.extensions["txn_coordinator"].next_deadline_ms() == NOW + 10 + 100
    core.local_node.advance_to(NOW + 110)
    (again,) = taken(core, 27)
    again.on_response(markers_answered(again, ErrorCode.not_leader_or_follower), NOW + 120)
    core.local_node.advance_to(NOW + 220)
    (third,) = taken(core, 27)
    state = call(core, 65, 0, {"transactional_ids": [LOCAL_TXN]}).transaction_states[0]
    assert state.transaction_state == "PrepareCommit"  # not complete before every marker landed
    third.on_response(markers_answered(third, ErrorCode.none), NOW + 230)
    state = call(core, 65, 0, {"transactional_ids": [LOCAL_TXN]}).transaction_states[0]
    assert state.transaction_state == "CompleteCommit"
    assert taken(core, 27) == []


def test_produce_waits_for_a_coordinator_on_another_node(core):
    batch_pid, batch_epoch = 42, 3
    payload = {"transactional_id": REMOTE_TXN, "acks": -1, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": _batch(batch_pid, batch_epoch)}]}]}
    result = send_produce(core, 12, payload)
    assert isinstance(result, apis.Delayed), "the answer waits for the coordinator"
    frames = []
    result.callback = frames.append
    (request,) = taken(core, 24)
    transaction = request.body.transactions[0]
    assert request.destination == 2 and request.api_version == 5
    assert request.channel == "txn-verify"  # never queued behind a replica Fetch the leader holds
    assert (transaction.transactional_id, transaction.producer_id, transaction.verify_only) == (REMOTE_TXN, 42, False)
    assert core.partition("t", 0).log_end_offset == 0
    request.on_response(add_response.AddPartitionsToTxnResponse(
        throttle_time=0, error_code=ErrorCode.none, results_by_transaction=(add_response.AddPartitionsToTxnResult(
            transactional_id=REMOTE_TXN, topic_results=(add_response.AddPartitionsToTxnTopicResult(
                name="t", results_by_partition=(add_response.AddPartitionsToTxnPartitionResult(
                    partition_index=0, partition_error_code=ErrorCode.none),)),)),)), NOW + 5)
    assert frames and produce_error(frames[0], 12) == ErrorCode.none, "answered once the partition was added"
    assert core.partition("t", 0).log_end_offset == 1
    assert core.partition("t", 0).log.producer_state.has_ongoing_transaction(42, 3)


def test_an_unreachable_coordinator_fails_the_produce_retriably(core):
    result = send_produce(core, 9, {"transactional_id": REMOTE_TXN, "acks": -1, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": _batch(7, 0)}]}]})
    frames = []
    result.callback = frames.append
    (request,) = taken(core, 24)
    assert request.body.transactions[0].verify_only is True  # v9: the client added it itself
    request.on_response(None, NOW + 30_000)
    assert frames and core.partition("t", 0).log_end_offset == 0
    assert produce_error(frames[0], 9) == ErrorCode.network_exception  # retriable: the client sends it again


def _batch(producer_id: int, epoch: int) -> bytes:
    return build_batch([Record(0, NOW, None, b"v")], base_offset=0, producer_id=producer_id,
                       producer_epoch=epoch, base_sequence=0, transactional=True)


def _added(code: ErrorCode, partition=("t", 0)):
    return add_response.AddPartitionsToTxnResponse(
        throttle_time=0, error_code=ErrorCode.none, results_by_transaction=(add_response.AddPartitionsToTxnResult(
            transactional_id=REMOTE_TXN, topic_results=(add_response.AddPartitionsToTxnTopicResult(
                name=partition[0], results_by_partition=(add_response.AddPartitionsToTxnPartitionResult(
                    partition_index=partition[1], partition_error_code=code),)),)),))


def _v2_produce(core):
    result = send_produce(core, 12, {"transactional_id": REMOTE_TXN, "acks": -1, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": _batch(42, 3)}]}]})
    frames = []
    result.callback = frames.append
    return frames


def test_an_add_meeting_concurrent_transactions_is_asked_again_before_the_client_hears(core):
    # The producer's previous transaction is still writing its markers: Kafka's leader asks the
    # coordinator again every add.partitions.to.txn.retry.backoff.ms (20) for up to
    # add.partitions.to.txn.retry.backoff.max.ms (100). Answered NOT_ENOUGH_REPLICAS at once,
    # franz-go refreshed its metadata and waited 5 s before sending the batch again.
    frames = _v2_produce(core)
    (first,) = taken(core, 24)
    first.on_response(_added(ErrorCode.concurrent_transactions), NOW + 3)
    assert frames == [] and taken(core, 24) == [], "not answered, and not asked again before the backoff"
    core.local_node.advance_to(NOW + 3 + 19)
    assert taken(core, 24) == []
    core.local_node.advance_to(NOW + 3 + 20)
    (second,) = taken(core, 24)
    assert second.body.transactions[0].verify_only is False
    second.on_response(_added(ErrorCode.none), NOW + 25)
    assert frames and produce_error(frames[0], 12) == ErrorCode.none
    assert core.partition("t", 0).log_end_offset == 1


def test_an_add_still_concurrent_after_the_retry_budget_fails_retriably(core):
    frames = _v2_produce(core)
    now = NOW
    for _ in range(10):
        (request,) = taken(core, 24)
        now += 30
        request.on_response(_added(ErrorCode.concurrent_transactions), now)
        if frames:
            break
        core.local_node.advance_to(now + 20)
    assert now - NOW >= 100 and now - NOW < 160, "given up once 100 ms had passed"
    assert produce_error(frames[0], 12) == ErrorCode.not_enough_replicas  # Kafka's mapping: the client retries
    assert core.partition("t", 0).log_end_offset == 0


def test_a_verification_is_not_asked_again(core):
    # Produce ≤ v11 only verifies (the client added the partition itself): no retry, as Kafka.
    result = send_produce(core, 9, {"transactional_id": REMOTE_TXN, "acks": -1, "timeout": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": _batch(42, 3)}]}]})
    frames = []
    result.callback = frames.append
    (request,) = taken(core, 24)
    request.on_response(_added(ErrorCode.concurrent_transactions), NOW + 3)
    assert produce_error(frames[0], 9) == ErrorCode.not_enough_replicas
