"""A partition replica on this broker: its log plus the replication state Kafka keeps for it.

Theory of operation. Every partition has a leader, a replica set, an in-sync replica set (ISR)
and a leader epoch, taken from the metadata image. The leader appends produced batches to its
log stamped with its leader epoch and learns how far each follower has replicated from the
fetch offsets of the followers' Fetch requests (a fetch at offset N means the follower holds
everything below N). The high watermark — what consumers may read and what acks=all waits
for — is the smallest log end offset among the ISR.

ISR changes are the controller's to commit (AlterPartition, replication/isr.py sends them);
while one is in flight the leader counts the *maximal* ISR (the committed ISR plus a replica
being added) for the high watermark, as Kafka does, so a replica that may become an ISR member
— and so a possible next leader — holds every record below the high watermark. A follower
joins once it has caught up to the high watermark and to the start of the leader's epoch; a
member leaves once it has not caught up to the leader's log end for replica.lag.time.max.ms.

A follower (replication/fetcher.py fetches for it) appends what the leader sends, truncates
where its log diverges from the leader's (KIP-320's diverging epoch), and takes the high
watermark from the leader's responses, bounded by its own log end.

Invariants: the high watermark never decreases while this broker leads; it never exceeds the
log end offset; leader ∈ ISR ⊆ replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from moldau.raft import faults
from moldau.records.batch import CONTROL_MASK, BatchHeader, validate_payload

_LONG_MAX = 9223372036854775807


class PartitionError(Exception):
    def __init__(self, error_code: ErrorCode, message: str = ""):
        super().__init__(message or error_code.name)
        self.error_code = error_code


@dataclass(slots=True)
class FollowerState:
    """What the leader knows of one follower (Kafka's Replica)."""

    log_end_offset: int = -1
    broker_epoch: int = -1
    last_fetch_ms: int = -1
    # The leader's log end at the follower's previous fetch, and when the follower last had
    # everything the leader had (Kafka's lastCaughtUpTimeMs).
    last_fetch_leader_log_end_offset: int = -1
    last_caught_up_ms: int = -1


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
    # Leader side: follower broker id -> what it has replicated.
    followers: dict[int, FollowerState] = field(default_factory=dict)
    # An ISR change sent to the controller and not yet seen committed (None: none in flight).
    pending_isr: tuple[int, ...] | None = None
    # The offset at which this broker's leader epoch began (a follower must reach it to join).
    leader_epoch_start_offset: int = 0
    # A follower that has not fetched for this long is presumed gone when acks=all counts the
    # in-sync replicas it can still rely on (the broker session timeout: the controller would
    # fence it by then, if there is a controller to do so).
    follower_silence_max_ms: int = 9_000

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

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending_isr is None:
            return self.isr
        return self.isr + tuple(b for b in self.pending_isr if b not in self.isr)

    # --- becoming leader or follower -------------------------------------------------------
    def become_leader(self, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...], now_ms: int,
                      partition_epoch: int | None = None) -> None:
        assert self.node_id in replicas, "a broker leads only partitions it replicates"
        new_epoch = leader_epoch != self.leader_epoch or not self.is_leader
        if partition_epoch is not None:
            if partition_epoch != self.partition_epoch:
                self.pending_isr = None  # whatever we asked for was decided (committed or not)
            self.partition_epoch = partition_epoch
        self.leader = self.node_id
        self.replicas, self.isr = replicas, isr
        if leader_epoch > self.log.latest_epoch:
            # Kafka records the new epoch's start at the log end offset when leadership
            # begins, so OffsetForLeaderEpoch answers for it before the first append.
            self.log.leader_epoch_cache.assign(leader_epoch, self.log.log_end_offset)
        self.leader_epoch = leader_epoch
        if new_epoch:
            self.leader_epoch_start_offset = self.log.log_end_offset
            self.followers = {r: FollowerState(last_fetch_ms=now_ms, last_caught_up_ms=now_ms)
                              for r in replicas if r != self.node_id}
            self.pending_isr = None
        else:  # the same leadership with a changed replica set or ISR
            self.followers = {r: self.followers.get(r) or FollowerState(last_fetch_ms=now_ms, last_caught_up_ms=now_ms)
                              for r in replicas if r != self.node_id}
        self.high_watermark = max(self.high_watermark, self.log.log_start_offset)
        self.maybe_advance_high_watermark()

    def become_follower(self, leader: int, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...],
                        partition_epoch: int = 0) -> None:
        self.leader, self.leader_epoch, self.partition_epoch = leader, leader_epoch, partition_epoch
        self.replicas, self.isr = replicas, isr
        self.followers = {}
        self.pending_isr = None
        # A follower's high watermark comes from the leader; it never exceeds its own log.
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)

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

    # --- appends (leader) -------------------------------------------------------------------
    def append(self, payload: Any, required_acks: int, now_ms: int,
               validated: list[BatchHeader] | None = None) -> Any:
        """Append as leader; `validated`: the payload's headers if the caller parsed them already."""
        self.check_leader()
        if required_acks == -1:
            self._check_enough_replicas(now_ms)
        if validated is None:
            validated = validate_payload(payload, self.log.config.max_message_bytes)
        for header in validated:  # markers come only through append_end_txn_marker
            if header.attributes & CONTROL_MASK:
                raise PartitionError(ErrorCode.invalid_record, "Clients are not allowed to write control records")
        info = self.log.append_as_leader(payload, self.leader_epoch, now_ms, validated=validated)
        self.maybe_advance_high_watermark()
        return info

    def _check_enough_replicas(self, now_ms: int) -> None:
        """NOT_ENOUGH_REPLICAS unless at least min.insync.replicas ISR members can take the write.
        Members are the committed ISR, less followers silent for follower_silence_max_ms: with no
        controller left to shrink the ISR (a quorum of controllers down), an acks=all write that
        could never be acknowledged is refused at once instead of timing out — refusing more is
        always safe."""
        needed = self.effective_min_insync_replicas
        if len(self.isr) < needed:
            raise PartitionError(ErrorCode.not_enough_replicas,
                                 f"The ISR of {self.topic}-{self.index} has {len(self.isr)} member(s), "
                                 f"fewer than min.insync.replicas={needed}")
        if needed <= 1:
            return
        alive = 0
        for replica in self.isr:
            state = self.followers.get(replica)
            if replica == self.node_id or (state is not None and now_ms - state.last_fetch_ms <= self.follower_silence_max_ms):
                alive += 1
        if alive < needed:
            raise PartitionError(ErrorCode.not_enough_replicas,
                                 f"Only {alive} in-sync replica(s) of {self.topic}-{self.index} are reachable, "
                                 f"fewer than min.insync.replicas={needed}")

    # --- followers (leader side) ------------------------------------------------------------
    def update_follower(self, broker_id: int, fetch_offset: int, broker_epoch: int, now_ms: int) -> bool:
        """Record a follower's fetch at `fetch_offset`; True if the high watermark moved."""
        state = self.followers.get(broker_id)
        if state is None:
            return False
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            state.last_caught_up_ms = now_ms
        elif fetch_offset >= state.last_fetch_leader_log_end_offset >= 0:
            state.last_caught_up_ms = max(state.last_caught_up_ms, state.last_fetch_ms)
        state.log_end_offset = fetch_offset
        state.broker_epoch = broker_epoch
        state.last_fetch_ms = now_ms
        state.last_fetch_leader_log_end_offset = leader_end
        return self.maybe_advance_high_watermark()

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
        if not self.is_leader:
            return False
        new = self.log.log_end_offset
        if faults.active("high-watermark-ignores-isr"):
            self.high_watermark = max(self.high_watermark, new)
            return True
        for replica in self.maximal_isr:
            if replica != self.node_id:
                state = self.followers.get(replica)
                new = min(new, state.log_end_offset if state is not None else -1)
        if new > self.high_watermark:
            self.high_watermark = new
            return True
        return False

    def isr_to_add(self) -> list[int]:
        """Followers that caught up and may join the ISR (Kafka's isFollowerInSync)."""
        if not self.is_leader or self.pending_isr is not None:
            return []
        ready = []
        for replica in self.replicas:
            state = self.followers.get(replica)
            if replica in self.isr or state is None:
                continue
            if state.log_end_offset >= self.high_watermark and state.log_end_offset >= self.leader_epoch_start_offset:
                ready.append(replica)
        return ready

    def isr_to_remove(self, now_ms: int, lag_max_ms: int) -> list[int]:
        """ISR members that have not caught up for replica.lag.time.max.ms."""
        if not self.is_leader or self.pending_isr is not None:
            return []
        stale = []
        for replica in self.isr:
            state = self.followers.get(replica)
            if replica != self.node_id and state is not None and now_ms - state.last_caught_up_ms > lag_max_ms:
                stale.append(replica)
        return stale

    # --- follower side ----------------------------------------------------------------------
    def follower_high_watermark(self, leader_high_watermark: int) -> None:
        self.high_watermark = max(self.high_watermark, min(leader_high_watermark, self.log.log_end_offset))

    def truncate_high_watermark_to_log(self) -> None:
        # After DeleteRecords or retention the high watermark stays ≥ log start offset; after a
        # truncation it stays ≤ log end offset.
        if self.high_watermark < self.log.log_start_offset:
            self.high_watermark = self.log.log_start_offset
        if self.high_watermark > self.log.log_end_offset:
            self.high_watermark = self.log.log_end_offset
