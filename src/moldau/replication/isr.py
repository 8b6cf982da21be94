"""ISR changes a leader asks the controller for (Kafka's AlterPartitionManager).

Theory of operation. A leader decides that a follower has caught up (join the ISR) or fallen
behind for replica.lag.time.max.ms (leave it), but only the controller may change the ISR: the
leader marks the partition's `pending_isr` (so the high watermark counts the maximal ISR
meanwhile) and queues the change here. One AlterPartition request is in flight at a time,
carrying every queued partition with the leader epoch and partition epoch it is based on. On an
answer the leader takes the committed ISR and partition epoch from it at once (the metadata
record follows); a stale or refused change is dropped and decided again from fresh state; a
request that failed (no controller, a lost connection, NOT_CONTROLLER) is sent again after a
backoff. Shrinks are checked on a timer, expansions whenever a follower's fetch is handled.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kio.schema.alter_partition.v3 import request as alter_request
from kio.schema.errors import ErrorCode

from moldau.protocol.rpc import ALTER_PARTITION_CHANNEL, CONTROLLER, OutboundRequest

log = logging.getLogger("moldau.replication")

ALTER_PARTITION_VERSION = 3
RETRY_BACKOFF_MS = 100


class IsrManager:
    def __init__(self, core: Any, lag_time_max_ms: int = 30_000):
        self.core = core
        self.lag_time_max_ms = lag_time_max_ms
        self.queued: dict[tuple[str, int], tuple[int, ...]] = {}
        self.in_flight = False
        self.retry_at_ms = 0
        self.next_shrink_check_ms = 0

    def propose(self, partition: Any, isr: tuple[int, ...], now_ms: int) -> None:
        partition.pending_isr = isr
        self.queued[partition.key] = isr
        self.send(now_ms)

    def check_expand(self, partition: Any, now_ms: int) -> None:
        # Caught up is not enough (KIP-841): a fenced broker or one shutting down is not asked
        # for; the controller would refuse it (INELIGIBLE_REPLICA) after a round trip anyway.
        brokers = self.core.image.brokers
        joining = [b for b in partition.isr_to_add() if b in brokers and brokers[b].eligible_leader]
        if joining:
            isr = partition.isr + tuple(b for b in partition.replicas if b in joining)
            log.info("Expanding the ISR of %s-%d from %s to %s", partition.topic, partition.index,
                     list(partition.isr), list(isr))
            self.propose(partition, isr, now_ms)

    def check_shrink(self, now_ms: int) -> None:
        for key in sorted(self.core.partitions):
            partition = self.core.partitions[key]
            stale = partition.isr_to_remove(now_ms, self.lag_time_max_ms)
            if stale:
                isr = tuple(b for b in partition.isr if b not in stale)
                log.info("Shrinking the ISR of %s-%d from %s to %s: replicas %s are %d ms behind",
                         key[0], key[1], list(partition.isr), list(isr), stale, self.lag_time_max_ms)
                self.propose(partition, isr, now_ms)

    def send(self, now_ms: int) -> None:
        core = self.core
        controller = core.controller_id()
        if self.in_flight or not self.queued or now_ms < self.retry_at_ms:
            return
        if controller < 0:  # no controller known yet: try again shortly
            self.retry_at_ms = now_ms + RETRY_BACKOFF_MS
            return
        batch, self.queued = self.queued, {}
        by_topic: dict[str, list] = {}
        for key in sorted(batch):
            partition = core.partitions.get(key)
            if partition is None or not partition.is_leader:
                continue
            with_epochs = tuple(alter_request.BrokerState(broker_id=b, broker_epoch=self._epoch_of(partition, b))
                                for b in batch[key])
            by_topic.setdefault(partition.topic_id, []).append(alter_request.PartitionData(
                partition_index=key[1], leader_epoch=partition.leader_epoch, new_isr_with_epochs=with_epochs,
                leader_recovery_state=0, partition_epoch=partition.partition_epoch))
        if not by_topic:
            return
        body = alter_request.AlterPartitionRequest(
            broker_id=core.node_id, broker_epoch=core.broker_epoch,
            topics=tuple(alter_request.TopicData(topic_id=uuid.UUID(t), partitions=tuple(p))
                         for t, p in sorted(by_topic.items())))
        self.in_flight = True

        def on_response(response: Any, when_ms: int) -> None:
            self._on_response(batch, response, when_ms)

        core.send(OutboundRequest(controller, CONTROLLER, 56, ALTER_PARTITION_VERSION, body,
                                  core.config.controller_socket_timeout_ms, on_response,
                                  channel=ALTER_PARTITION_CHANNEL))

    def _epoch_of(self, partition: Any, broker_id: int) -> int:
        if broker_id == self.core.node_id:
            return self.core.broker_epoch
        state = partition.followers.get(broker_id)
        return state.broker_epoch if state is not None else -1

    def _on_response(self, batch: dict, response: Any, now_ms: int) -> None:
        self.in_flight = False
        if response is None or response.error_code != ErrorCode.none:
            for key, isr in batch.items():  # send again, unless something newer was queued
                self.queued.setdefault(key, isr)
            self.retry_at_ms = now_ms + RETRY_BACKOFF_MS
            return
        for topic in response.topics:
            topic_image = self.core.image.topics_by_id.get(str(topic.topic_id))
            for data in topic.partitions:
                key = (topic_image.name if topic_image else "", data.partition_index)
                self._apply(key, data, batch.get(key))
        self.send(now_ms)

    def _apply(self, key: tuple[str, int], data: Any, requested: tuple[int, ...] | None) -> None:
        partition = self.core.partitions.get(key)
        if partition is None:
            return
        # The answer to an earlier proposal, while a newer one waits its turn (the metadata
        # record of the earlier change arrived first and the leader moved on): the newer
        # proposal stays pending, so the high watermark keeps counting its maximal ISR. Clearing
        # it here let a replica join the ISR without the records acknowledged meanwhile.
        superseded = partition.pending_isr is not None and partition.pending_isr != requested
        if data.error_code == ErrorCode.none:
            if partition.is_leader and data.leader_epoch == partition.leader_epoch \
                    and data.partition_epoch >= partition.partition_epoch:
                if len(data.isr) < len(partition.isr):
                    self.core.metrics.isr_shrinks += 1
                elif len(data.isr) > len(partition.isr):
                    self.core.metrics.isr_expands += 1
                partition.isr = tuple(data.isr)
                partition.partition_epoch = data.partition_epoch
                if not superseded:
                    partition.pending_isr = None
                partition.maybe_advance_high_watermark()
                self.core.partition_appended(key, self.core.now_ms)
            return
        if data.error_code != ErrorCode.ineligible_replica:
            log.info("ISR change of %s-%d refused: %s", key[0], key[1], data.error_code.name)
        if partition.pending_isr is not None and not superseded:
            partition.pending_isr = None  # decided again from what the metadata says
            partition.maybe_advance_high_watermark()

    def next_deadline_ms(self) -> int | None:
        deadlines = [self.next_shrink_check_ms]
        if self.queued and not self.in_flight:
            deadlines.append(self.retry_at_ms)
        return min(deadlines)

    def run_deadlines(self, now_ms: int) -> None:
        if now_ms >= self.next_shrink_check_ms:
            self.next_shrink_check_ms = now_ms + max(1, self.lag_time_max_ms // 2)
            self.check_shrink(now_ms)
        self.send(now_ms)
