"""Delivering a decided transaction's COMMIT or ABORT markers to its partitions.

Theory of operation (Kafka's TransactionMarkerChannelManager, as data). Once PrepareCommit or
PrepareAbort is replicated, `send` takes the transaction's partitions and, for each, asks the
partition's current leader (from the metadata image) to append the marker with the
transaction's producer id, epoch and the coordinator epoch: a partition this broker leads is
written at once (broker/write_txn_markers.py, the same path as the API); for one another broker
leads, one WriteTxnMarkers request per (transaction, leader) goes out through `core.send` and
its `on_response` reports back. A partition whose leader is unknown, whose request failed
(`None`: no connection, timeout) or that answered a retriable error (NOT_LEADER_OR_FOLLOWER,
NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...) is tried again `limits.txn_marker_retry_backoff_ms`
later, against whichever broker leads it then: markers are retried until they land, as Kafka
does. A partition whose topic was deleted needs no marker. INVALID_PRODUCER_EPOCH or
TRANSACTION_COORDINATOR_FENCED mean a newer coordinator or producer epoch owns the
transaction: this coordinator gives up on it (the newer one finishes it).

When every partition has its marker, the transaction is written CompleteCommit/CompleteAbort
(the transition `prepare_complete` started when the markers did, so the id answers
CONCURRENT_TRANSACTIONS meanwhile); a failed write is retried the same way. Losing the
partition's leadership drops the queue (`forget`): the new coordinator resumes from the log.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.coordinator.txn_metadata import Transit, TxnMetadata
from moldau.protocol.rpc import BROKER, OutboundRequest

if TYPE_CHECKING:
    from moldau.coordinator.transactions import TransactionCoordinator

log = logging.getLogger("moldau.transactions")

WRITE_TXN_MARKERS = 27
WRITE_TXN_MARKERS_VERSION = 1
MARKER_CHANNEL = "txn-markers"  # its own connection: an answer held for replication must not block fetches
_RETRIABLE = frozenset({
    ErrorCode.unknown_topic_or_partition, ErrorCode.not_leader_or_follower, ErrorCode.not_enough_replicas,
    ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out, ErrorCode.kafka_storage_error,
    ErrorCode.coordinator_load_in_progress, ErrorCode.network_exception, ErrorCode.fenced_leader_epoch,
    ErrorCode.unknown_leader_epoch,
})
_GIVE_UP = frozenset({ErrorCode.invalid_producer_epoch, ErrorCode.transaction_coordinator_fenced})


@dataclass(slots=True, eq=False)
class _Markers:
    """The markers of one decided transaction still to be written."""

    transactional_id: str
    coordinator_epoch: int
    meta: TxnMetadata
    complete: Transit  # the CompleteCommit/CompleteAbort transition to write at the end
    commit: bool
    producer_id: int
    producer_epoch: int
    remaining: set[tuple[str, int]]
    in_flight: set[tuple[str, int]] = field(default_factory=set)
    retry_at_ms: int | None = None  # some partition (or the completion) waits for a retry
    completing: bool = False


class TxnMarkerSender:
    def __init__(self, coordinator: "TransactionCoordinator") -> None:
        self.coordinator = coordinator
        self.core = coordinator.core
        self.pending: dict[str, _Markers] = {}
        # (retry time, transactional id) of the markers waiting for a retry; an entry whose
        # markers no longer wait for that time is dropped when it comes up
        self._retries: list[tuple[int, str]] = []

    def send(self, transactional_id: str, coordinator_epoch: int, meta: TxnMetadata, complete: Transit,
             commit: bool) -> None:
        markers = _Markers(transactional_id, coordinator_epoch, meta, complete, commit, meta.producer_id,
                           meta.producer_epoch, set(meta.partitions))
        queued = sum(len(m.remaining) for m in self.pending.values())
        self.pending[transactional_id] = markers
        if queued + len(markers.remaining) > limits.txn_markers_queued_max:
            log.warning("Marker queue full (%d): %s waits for a retry", queued, transactional_id)
            self._retry_later(markers, self.core.now_ms)
        else:
            self._dispatch(markers, self.core.now_ms)

    def forget(self, transactional_id: str) -> None:
        self.pending.pop(transactional_id, None)

    # --- sending --------------------------------------------------------------------------
    def _dispatch(self, markers: _Markers, now_ms: int) -> None:
        markers.retry_at_ms = None
        if not markers.remaining and not markers.in_flight:
            self._complete(markers, now_ms)
            return
        by_leader: dict[int, list[tuple[str, int]]] = {}
        for name, index in sorted(markers.remaining - markers.in_flight):
            topic = self.core.image.topic(name)
            if topic is None or index not in topic.partitions:
                markers.remaining.discard((name, index))  # deleted: nothing to mark
                continue
            by_leader.setdefault(topic.partitions[index].leader, []).append((name, index))
        for leader in sorted(by_leader):
            partitions = by_leader[leader]
            markers.in_flight.update(partitions)
            if leader == self.core.node_id:
                for name, index in partitions:
                    self._write_local(markers, name, index, now_ms)
            elif leader < 0 or leader not in self.core.image.brokers:
                for partition in partitions:
                    self._result(markers, partition, ErrorCode.not_leader_or_follower, now_ms)
            else:
                self._send_remote(markers, leader, partitions)
        if self.pending.get(markers.transactional_id) is markers and not markers.remaining and not markers.in_flight:
            self._complete(markers, now_ms)

    def _write_local(self, markers: _Markers, name: str, index: int, now_ms: int) -> None:
        from moldau.broker.write_txn_markers import write_marker

        write_marker(self.core, name, index, markers.producer_id, markers.producer_epoch,
                     markers.coordinator_epoch, markers.commit, now_ms,
                     lambda code: self._result(markers, (name, index), code, self.core.now_ms))

    def _send_remote(self, markers: _Markers, leader: int, partitions: list[tuple[str, int]]) -> None:
        from kio.schema.write_txn_markers.v1.request import (
            WritableTxnMarker,
            WritableTxnMarkerTopic,
            WriteTxnMarkersRequest,
        )

        by_topic: dict[str, list[int]] = {}
        for name, index in partitions:
            by_topic.setdefault(name, []).append(index)
        body = WriteTxnMarkersRequest(markers=(WritableTxnMarker(
            producer_id=markers.producer_id, producer_epoch=markers.producer_epoch,
            transaction_result=markers.commit, coordinator_epoch=markers.coordinator_epoch,
            topics=tuple(WritableTxnMarkerTopic(name=t, partition_indexes=tuple(ids))
                         for t, ids in sorted(by_topic.items()))),))

        def on_response(response: Any, now_ms: int) -> None:
            codes = _response_codes(response, markers.producer_id)
            for partition in partitions:
                self._result(markers, partition, codes.get(partition, ErrorCode.network_exception), now_ms)

        self.core.send(OutboundRequest(destination=leader, listener=BROKER, api_key=WRITE_TXN_MARKERS,
                                       api_version=WRITE_TXN_MARKERS_VERSION, body=body,
                                       timeout_ms=self.core.config.request_timeout_ms, on_response=on_response,
                                       channel=MARKER_CHANNEL))

    # --- results --------------------------------------------------------------------------
    def _result(self, markers: _Markers, partition: tuple[str, int], code: ErrorCode, now_ms: int) -> None:
        if self.pending.get(markers.transactional_id) is not markers:
            return  # given up on, or the partition of the id was unloaded
        markers.in_flight.discard(partition)
        if code == ErrorCode.none:
            markers.remaining.discard(partition)
            markers.meta.partitions.discard(partition)
        elif code in _GIVE_UP:
            log.warning("Giving up the markers of %s at %s-%d: %s (a newer coordinator or epoch owns it)",
                        markers.transactional_id, partition[0], partition[1], code.name)
            del self.pending[markers.transactional_id]
            return
        else:
            if code not in _RETRIABLE:
                log.warning("Marker of %s at %s-%d failed with %s; retrying",
                            markers.transactional_id, partition[0], partition[1], code.name)
            self._retry_later(markers, now_ms)
        if not markers.remaining and not markers.in_flight:
            self._complete(markers, now_ms)

    def _retry_later(self, markers: _Markers, now_ms: int) -> None:
        if markers.retry_at_ms is None:
            markers.retry_at_ms = now_ms + limits.txn_marker_retry_backoff_ms
            heapq.heappush(self._retries, (markers.retry_at_ms, markers.transactional_id))

    def _complete(self, markers: _Markers, now_ms: int) -> None:
        if markers.completing:
            return
        markers.completing = True
        coordinator = self.coordinator

        def written(error: ErrorCode) -> None:
            markers.completing = False
            if self.pending.get(markers.transactional_id) is not markers:
                return
            if error == ErrorCode.none:
                del self.pending[markers.transactional_id]
                log.info("Completed %s of %s", "commit" if markers.commit else "abort", markers.transactional_id)
                return
            if error == ErrorCode.not_coordinator:
                del self.pending[markers.transactional_id]  # the next coordinator completes it
                return
            meta = markers.meta
            if meta.pending is None:
                markers.complete = meta.prepare_complete(self.core.now_ms)
            self._retry_later(markers, self.core.now_ms)

        coordinator._write(markers.meta, markers.coordinator_epoch, markers.complete, now_ms, written)

    # --- time -----------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        retries = self._retries
        while retries and not self._due(*retries[0]):
            heapq.heappop(retries)
        return retries[0][0] if retries else None

    def _due(self, retry_at_ms: int, transactional_id: str) -> bool:
        markers = self.pending.get(transactional_id)
        return markers is not None and markers.retry_at_ms == retry_at_ms

    def run_deadlines(self, now_ms: int) -> None:
        retries = self._retries
        while retries and retries[0][0] <= now_ms:
            retry_at_ms, transactional_id = heapq.heappop(retries)
            if self._due(retry_at_ms, transactional_id):
                self._dispatch(self.pending[transactional_id], now_ms)


def _response_codes(response: Any, producer_id: int) -> dict[tuple[str, int], ErrorCode]:
    if response is None:
        return {}
    codes = {}
    for marker in response.markers:
        if marker.producer_id != producer_id:
            continue
        for topic in marker.topics:
            for partition in topic.partitions:
                codes[(topic.name, partition.partition_index)] = ErrorCode(partition.error_code)
    return codes
