"""One transactional id's metadata, and the transitions the coordinator prepares for it.

Theory of operation. A change is two-phase, as in Kafka's TransactionMetadata: `prepare_*`
checks the transition against the state table (txn_state.py), marks it *pending* (no other
transition may start while one is pending: the coordinator answers CONCURRENT_TRANSACTIONS)
and returns the target as a frozen `Transit`; the coordinator writes the Transit to
`__transaction_state` and, once the record is replicated, `complete(transit)` applies it — or
`fail()` drops the pending mark if the write failed. Memory never runs ahead of the log.

Epochs. InitProducerId bumps the epoch (a new transactional id starts at epoch 0); fencing an
open transaction bumps it once more, to abort it with an epoch the old producer does not have.
With Transactions V2 (KIP-890, `client_version` 2) every commit or abort bumps the epoch again
(the markers carry the new one, so a zombie's late write is refused) and EndTxn returns it to
the client — except an abort that follows a fence, whose markers carry the fence's epoch; when
the epoch runs out (32766), the next producer id is allocated ahead (`next_producer_id`) and
taken on completion with epoch 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from moldau.coordinator.txn_records import TxnLogValue
from moldau.coordinator.txn_state import (
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    DEAD,
    EMPTY,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    PREPARE_EPOCH_FENCE,
    TxnState,
    check_transition,
)

EPOCH_MAX = 32767  # Short.MAX_VALUE
NO_PRODUCER_ID = -1
NO_EPOCH = -1
TRANSACTION_VERSION_2 = 2  # the client sends Produce v12 / EndTxn v5: epoch bump per transaction


class ProducerFenced(Exception):
    """InitProducerId with an expected epoch another producer has moved past."""


@dataclass(frozen=True, slots=True)
class Transit:
    producer_id: int
    prev_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[tuple[str, int]]
    start_ms: int
    last_update_ms: int
    client_version: int

    def log_value(self) -> TxnLogValue:
        by_topic: dict[str, list[int]] = {}
        for topic, index in sorted(self.partitions):
            by_topic.setdefault(topic, []).append(index)
        return TxnLogValue(self.producer_id, self.producer_epoch, self.timeout_ms, self.state,
                           tuple((t, tuple(ids)) for t, ids in sorted(by_topic.items())),
                           self.last_update_ms, self.start_ms, self._written_prev_producer_id(),
                           self.next_producer_id, self.client_version)

    def _written_prev_producer_id(self) -> int:
        # Kafka 4.1.1 writes no previous producer id; it is news only after a rotation to a
        # new producer id (from_log reads its absence as "the current one").
        return NO_PRODUCER_ID if self.prev_producer_id == self.producer_id else self.prev_producer_id


@dataclass(slots=True)
class TxnMetadata:
    transactional_id: str
    producer_id: int
    prev_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_EPOCH
    last_producer_epoch: int = NO_EPOCH
    timeout_ms: int = 60_000
    state: TxnState = EMPTY
    partitions: set[tuple[str, int]] = field(default_factory=set)
    start_ms: int = -1
    last_update_ms: int = 0
    client_version: int = 0
    pending: TxnState | None = None
    # A fence whose write failed already bumped the epoch in memory: do not bump it again.
    failed_epoch_fence: bool = False

    @classmethod
    def from_log(cls, transactional_id: str, value: TxnLogValue) -> "TxnMetadata":
        previous = value.producer_id if value.previous_producer_id == NO_PRODUCER_ID else value.previous_producer_id
        return cls(transactional_id, value.producer_id, previous, value.next_producer_id,
                   value.producer_epoch, NO_EPOCH, value.timeout_ms, value.state,
                   {(t, p) for t, ids in value.partitions for p in ids}, value.start_ms,
                   value.last_update_ms, value.client_transaction_version)

    @property
    def epoch_exhausted(self) -> bool:
        return self.producer_epoch >= EPOCH_MAX - 1

    @property
    def is_v2(self) -> bool:
        return self.client_version >= TRANSACTION_VERSION_2

    # --- the two phases ---------------------------------------------------------------------
    def _prepare(self, state: TxnState, **changes: object) -> Transit:
        assert self.pending is None, f"{self.transactional_id}: a transition is already pending"
        check_transition(self.state, state)
        base = Transit(self.producer_id, self.producer_id, self.next_producer_id, self.producer_epoch,
                       self.last_producer_epoch, self.timeout_ms, state, frozenset(self.partitions),
                       self.start_ms, self.last_update_ms, self.client_version)
        transit = replace(base, **changes)  # type: ignore[arg-type]
        assert transit.producer_id >= 0, "a transition needs a producer id"
        assert state == DEAD or transit.producer_epoch >= 0, "a transition needs a producer epoch"
        self.pending = state
        return transit

    def complete(self, transit: Transit) -> None:
        assert self.pending == transit.state, f"{self.transactional_id}: completing an unprepared transition"
        self.producer_id, self.prev_producer_id = transit.producer_id, transit.prev_producer_id
        self.next_producer_id = transit.next_producer_id
        self.producer_epoch, self.last_producer_epoch = transit.producer_epoch, transit.last_producer_epoch
        self.timeout_ms, self.partitions = transit.timeout_ms, set(transit.partitions)
        self.start_ms, self.last_update_ms = transit.start_ms, transit.last_update_ms
        self.client_version = transit.client_version
        self.state, self.pending = transit.state, None

    def fail(self, transit: Transit) -> None:
        if self.pending == transit.state:
            self.pending = None

    # --- the transitions ----------------------------------------------------------------------
    def prepare_fence_epoch(self) -> Transit:
        """Bump the epoch of an open transaction that must be aborted (a new producer with the
        same id, or a timeout): the old producer can neither write nor commit any more."""
        keep = self.failed_epoch_fence or self.producer_epoch == EPOCH_MAX
        return self._prepare(PREPARE_EPOCH_FENCE, producer_epoch=self.producer_epoch if keep else self.producer_epoch + 1)

    def prepare_increment_epoch(self, timeout_ms: int, expected_epoch: int | None, now_ms: int) -> Transit:
        """InitProducerId: a new epoch (or, for a retry of a bump that succeeded, the same)."""
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last = bumped, NO_EPOCH
        elif self.producer_epoch == NO_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        else:
            raise ProducerFenced(f"expected epoch {expected_epoch} is neither {self.producer_epoch} "
                                 f"nor {self.last_producer_epoch}")
        return self._prepare(EMPTY, producer_epoch=epoch, last_producer_epoch=last, timeout_ms=timeout_ms,
                             partitions=frozenset(), start_ms=-1, last_update_ms=now_ms)

    def prepare_rotation(self, producer_id: int, timeout_ms: int, now_ms: int, record_last_epoch: bool) -> Transit:
        """The epoch is exhausted: continue under a new producer id at epoch 0."""
        return self._prepare(EMPTY, producer_id=producer_id, producer_epoch=0,
                             last_producer_epoch=self.producer_epoch if record_last_epoch else NO_EPOCH,
                             timeout_ms=timeout_ms, partitions=frozenset(), start_ms=-1, last_update_ms=now_ms)

    def prepare_add_partitions(self, partitions: set[tuple[str, int]], now_ms: int, client_version: int) -> Transit:
        starting = self.state in (EMPTY, COMPLETE_ABORT, COMPLETE_COMMIT)
        return self._prepare(ONGOING, partitions=frozenset(self.partitions | partitions),
                             start_ms=now_ms if starting else self.start_ms, last_update_ms=now_ms,
                             client_version=client_version)

    def prepare_abort_or_commit(self, state: TxnState, client_version: int, next_producer_id: int,
                                now_ms: int, no_partition_added: bool, fenced: bool = False) -> Transit:
        """The end of a transaction. A V2 client's commit or abort bumps the epoch; an abort the
        coordinator starts after fencing (a new producer, a timeout) keeps the fence's epoch —
        Kafka 4.1.1 answers the next InitProducerId with the old epoch + 2, not + 3."""
        if client_version >= TRANSACTION_VERSION_2 and not fenced:
            epoch = self.producer_epoch if (self.producer_epoch == EPOCH_MAX and state == PREPARE_ABORT) \
                else self.producer_epoch + 1
            last = self.producer_epoch
        else:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        return self._prepare(state, producer_epoch=epoch, last_producer_epoch=last,
                             start_ms=now_ms if no_partition_added else self.start_ms,
                             next_producer_id=next_producer_id, last_update_ms=now_ms,
                             client_version=client_version)

    def prepare_complete(self, now_ms: int) -> Transit:
        self.failed_epoch_fence = False
        state = COMPLETE_COMMIT if self.state == PREPARE_COMMIT else COMPLETE_ABORT
        if self.is_v2 and self.next_producer_id != NO_PRODUCER_ID:
            producer_id, epoch = self.next_producer_id, 0
        else:
            producer_id, epoch = self.producer_id, self.producer_epoch
        return self._prepare(state, producer_id=producer_id, producer_epoch=epoch,
                             next_producer_id=NO_PRODUCER_ID, partitions=frozenset(), last_update_ms=now_ms)

    def prepare_dead(self) -> Transit:
        return self._prepare(DEAD, partitions=frozenset())

    def begin_fenced_abort(self, producer_epoch: int) -> None:
        """The fence's epoch becomes the current one, and its pending mark makes way for the
        abort that follows it (Kafka clears it the same way)."""
        assert self.pending == PREPARE_EPOCH_FENCE, "only a fence turns into an abort"
        self.pending = None
        self.producer_epoch = producer_epoch
        self.last_producer_epoch = NO_EPOCH
