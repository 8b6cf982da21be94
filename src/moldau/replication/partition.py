"""A partition replica on this broker: its log plus the replication state Kafka keeps for it.

Theory of operation. Every partition has a leader, a replica set, an in-sync replica set (ISR)
and a leader epoch, taken from the metadata image. The leader appends produced batches to its
log stamped with its leader epoch, tracks how far each follower has fetched, and advances the
high watermark to the smallest log end offset among the ISR. Consumers read only below the
high watermark. On a single node the ISR is this broker alone, so the high watermark follows
the log end offset at once; the follower bookkeeping is here so that the cluster slots in.

Invariants: the high watermark never decreases while this broker leads; it never exceeds the
log end offset; leader ∈ ISR ⊆ replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from moldau.records.batch import CONTROL_MASK, BatchHeader, validate_payload

_LONG_MAX = 9223372036854775807


class PartitionError(Exception):
    def __init__(self, error_code: ErrorCode, message: str = ""):
        super().__init__(message or error_code.name)
        self.error_code = error_code


@dataclass(slots=True)
class Partition:
    topic: str
    index: int
    topic_id: str
    log: Any  # log.PartitionLog
    node_id: int
    leader: int = -1
    leader_epoch: int = 0
    partition_epoch: int = 0
    replicas: tuple[int, ...] = ()
    isr: tuple[int, ...] = ()
    min_insync_replicas: int = 1
    # message.timestamp.before/after.max.ms: how far a CreateTime timestamp may lie in the past
    # or the future of the leader's clock (the broker core sets them from the topic's configs).
    timestamp_before_max_ms: int = _LONG_MAX
    timestamp_after_max_ms: int = _LONG_MAX
    high_watermark: int = 0
    # follower broker id -> log end offset it has fetched up to (leader side)
    follower_log_end_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.index)

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    @property
    def log_start_offset(self) -> int:
        return self.log.log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    def become_leader(self, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...], now_ms: int) -> None:
        assert self.node_id in replicas, "a broker leads only partitions it replicates"
        self.leader = self.node_id
        self.replicas, self.isr = replicas, isr
        if leader_epoch > self.log.latest_epoch:
            # Kafka records the new epoch's start at the log end offset when leadership
            # begins, so OffsetForLeaderEpoch answers for it before the first append.
            self.log.leader_epoch_cache.assign(leader_epoch, self.log.log_end_offset)
        self.leader_epoch = leader_epoch
        self.follower_log_end_offsets = {r: -1 for r in replicas if r != self.node_id}
        self.high_watermark = max(self.high_watermark, self.log.log_start_offset)
        self.maybe_advance_high_watermark()

    def check_leader(self, current_leader_epoch: int = -1) -> None:
        """Raise the error a client must see when this broker cannot serve the partition."""
        if current_leader_epoch >= 0:
            if current_leader_epoch < self.leader_epoch:
                raise PartitionError(ErrorCode.fenced_leader_epoch)
            if current_leader_epoch > self.leader_epoch:
                raise PartitionError(ErrorCode.unknown_leader_epoch)
        if not self.is_leader:
            raise PartitionError(ErrorCode.not_leader_or_follower)

    @property
    def effective_min_insync_replicas(self) -> int:
        """min.insync.replicas, but never more than the replicas there are: Kafka 4 accepts any
        value and caps it at the replication factor, so min.insync.replicas=2 on a topic with
        one replica still takes acks=all writes instead of failing each with NOT_ENOUGH_REPLICAS."""
        return min(self.min_insync_replicas, len(self.replicas))

    def append(self, payload: Any, required_acks: int, now_ms: int,
               validated: list[BatchHeader] | None = None) -> Any:
        """Append as leader; `validated`: the payload's headers if the caller parsed them already."""
        self.check_leader()
        if required_acks == -1 and len(self.isr) < self.effective_min_insync_replicas:
            raise PartitionError(ErrorCode.not_enough_replicas)
        if validated is None:
            validated = validate_payload(payload, self.log.config.max_message_bytes)
        for header in validated:  # markers come only through append_end_txn_marker
            if header.attributes & CONTROL_MASK:
                raise PartitionError(ErrorCode.invalid_record, "Clients are not allowed to write control records")
        info = self.log.append_as_leader(payload, self.leader_epoch, now_ms, validated=validated)
        self.maybe_advance_high_watermark()
        return info

    @property
    def last_stable_offset(self) -> int:
        """What read_committed consumers read below: the high watermark, or the first offset
        of a transaction still open (or decided with its marker not yet replicated)."""
        return self.log.producer_state.last_stable_offset(self.high_watermark)

    def append_end_txn_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int,
                              commit: bool, now_ms: int) -> Any:
        """WriteTxnMarkers: end a producer's transaction here (as leader, at our leader epoch)."""
        self.check_leader()
        info = self.log.append_end_txn_marker(producer_id, producer_epoch, coordinator_epoch, commit,
                                              self.leader_epoch, now_ms)
        self.maybe_advance_high_watermark()
        return info

    def maybe_advance_high_watermark(self) -> bool:
        ends = [self.log.log_end_offset]
        ends += [self.follower_log_end_offsets.get(r, -1) for r in self.isr if r != self.node_id]
        new = min(ends)
        if new > self.high_watermark:
            self.high_watermark = new
            return True
        return False

    def truncate_high_watermark_to_log(self) -> None:
        # After DeleteRecords or retention the high watermark stays ≥ log start offset.
        if self.high_watermark < self.log.log_start_offset:
            self.high_watermark = self.log.log_start_offset
