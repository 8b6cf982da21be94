"""ISR changes a leader proposes (replication/isr.py), on a real core: the controller's answers
are played by hand, so that their order against the metadata records can be chosen."""

from __future__ import annotations

import datetime
import uuid

from kio.schema.alter_partition.v3 import response as alter_response
from kio.schema.errors import ErrorCode

from moldau.controller import records as r
from moldau.records import Record, build_batch
from moldau.replication.partition import FollowerState
from moldau.testing.node import LocalNode


def _leader_of_three() -> tuple[LocalNode, object]:
    node = LocalNode()
    controller = node.core.controller
    for broker in (2, 3):
        endpoint = r.BrokerEndpoint(name="PLAINTEXT", host="127.0.0.1", port=9000 + broker, security_protocol=0)
        epoch = controller.brokers.register(broker, uuid.uuid4(), [endpoint], None, node.now_ms)
        node.pump()
        controller.brokers.heartbeat(broker, epoch, epoch, False, False, node.now_ms)
        node.pump()
    node.core.controller.create_topic("t", assignments={0: [1, 2, 3]}, now_ms=node.now_ms)
    node.pump()
    return node, node.core.partition("t", 0)


def _answer(partition, isr: tuple[int, ...], partition_epoch: int, error_code: ErrorCode = ErrorCode.none):
    data = alter_response.PartitionData(
        partition_index=0, error_code=error_code, leader_id=partition.node_id,
        leader_epoch=partition.leader_epoch, isr=isr, leader_recovery_state=0, partition_epoch=partition_epoch)
    return alter_response.AlterPartitionResponse(
        throttle_time=datetime.timedelta(0), error_code=ErrorCode.none,
        topics=(alter_response.TopicData(topic_id=uuid.UUID(partition.topic_id), partitions=(data,)),))


def test_an_answer_to_an_earlier_isr_change_keeps_the_newer_one_pending():
    """Seed 1381 of the cluster simulation lost an acknowledged record this way: the leader
    shrank the ISR to (1, 2); the change's metadata record reached it before the controller's
    answer, so it already proposed taking 3 back (pending: the high watermark counts 3). The
    late answer to the shrink cleared that pending change: records were acknowledged by 1 and
    2 alone, then 3 joined the ISR without them and could be elected."""
    node, partition = _leader_of_three()
    core, isr_manager = node.core, node.core.isr
    assert partition.is_leader and partition.isr == (1, 2, 3)
    isr_manager.propose(partition, (1, 2), node.now_ms)  # 3 fell behind
    (shrink,) = [request for request in core.outbox if request.api_key == 56]
    core.outbox.remove(shrink)  # the controller's answer is played below, late
    # the shrink's metadata record arrives first (the leader applies the new partition epoch)
    partition_epoch = partition.partition_epoch + 1
    partition.become_leader(partition.leader_epoch, partition.replicas, (1, 2), node.now_ms, partition_epoch)
    # 3 catches up to the high watermark: the leader proposes taking it back (queued: one at a time)
    partition.followers[3].log_end_offset = partition.high_watermark
    isr_manager.check_expand(partition, node.now_ms)
    assert partition.pending_isr == (1, 2, 3)
    shrink.on_response(_answer(partition, (1, 2), partition_epoch), node.now_ms)
    assert partition.pending_isr == (1, 2, 3), "the answer to the shrink must not clear the expansion"
    partition.append(build_batch([Record(0, 1000, b"k", b"v")], base_offset=0), -1, node.now_ms)
    partition.followers[2].log_end_offset = partition.log_end_offset  # 2 fetched it, 3 did not
    partition.maybe_advance_high_watermark()
    assert partition.high_watermark == 0, "acknowledged only once every replica that may join the ISR has it"
    partition.followers[3].log_end_offset = partition.log_end_offset
    partition.maybe_advance_high_watermark()
    assert partition.high_watermark == 1


def test_a_refused_earlier_isr_change_keeps_the_newer_one_pending():
    node, partition = _leader_of_three()
    core, isr_manager = node.core, node.core.isr
    isr_manager.propose(partition, (1, 2), node.now_ms)
    (shrink,) = [request for request in core.outbox if request.api_key == 56]
    core.outbox.remove(shrink)
    partition_epoch = partition.partition_epoch + 1
    partition.become_leader(partition.leader_epoch, partition.replicas, (1, 2), node.now_ms, partition_epoch)
    partition.followers[3].log_end_offset = partition.high_watermark
    isr_manager.check_expand(partition, node.now_ms)
    answer = _answer(partition, (), -1, ErrorCode.invalid_update_version)
    shrink.on_response(answer, node.now_ms)
    assert partition.pending_isr == (1, 2, 3)


def test_a_fenced_follower_is_not_proposed_for_the_isr_however_caught_up():
    """A dead broker's last fetch left it caught up; once the controller fences it (and shrinks
    the ISR), the leader must not ask to take it back (KIP-841's eligibility)."""
    node, partition = _leader_of_three()
    controller = node.core.controller
    controller.brokers.fence(3, node.now_ms)  # its heartbeats stopped
    node.pump()
    assert node.core.image.brokers[3].fenced
    partition.become_leader(partition.leader_epoch, partition.replicas, (1, 2), node.now_ms,
                            partition.partition_epoch + 1)
    partition.followers[3].log_end_offset = partition.log_end_offset
    node.core.isr.check_expand(partition, node.now_ms)
    assert partition.pending_isr is None
