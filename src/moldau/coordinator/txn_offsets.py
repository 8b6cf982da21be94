"""Transactional offset commits (TxnOffsetCommit): offsets that count only if their
transaction commits.

Theory of operation (Kafka's pending transactional offsets of a group). A consume-transform-
produce application commits its input positions inside its transaction: the group coordinator
checks the group as for OffsetCommit (generation, member), has the transaction coordinator
verify — or, Transactions V2, add — the group's `__consumer_offsets` partition to the
transaction (broker/txn_verify.py), then appends the offset records as one *transactional*
batch of the producer (id and epoch) to that partition and answers once it is replicated. The
offsets wait here, per producer id and group, invisible to OffsetFetch, until the
transaction's marker reaches the partition (broker/write_txn_markers.py calls `complete`):
COMMIT makes them the group's committed offsets, ABORT drops them. Meanwhile OffsetFetch with
`require_stable` (read_committed consumers) answers UNSTABLE_OFFSET_COMMIT for those
partitions, so a consumer never starts from a position its predecessor may yet abort.

Replay: offsets_topic.read_records applies a committed transaction's records where its COMMIT
marker is, drops aborted ones, and hands back the records of transactions still open at the
log end, which `load` turns into pending offsets again.

Ordering subtlety (documented, not handled): Kafka also compares log offsets so that a
transactional commit never overrides a plain OffsetCommit written after it; here the marker
always wins.
"""

from __future__ import annotations

from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau.broker.txn_verify import verify
from moldau.coordinator import offsets_topic as topic
from moldau.coordinator import records as rec
from moldau.coordinator.group import Group
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.coordinator.state import DEAD
from moldau.records import Record, build_batch

OffsetsByPartition = dict[tuple[str, int], rec.OffsetValue]


class TxnOffsets:
    def __init__(self, groups: Any) -> None:
        self.groups = groups  # the GroupCoordinator
        self.core = groups.core
        self.pending: dict[int, dict[str, OffsetsByPartition]] = {}  # producer id -> group -> offsets

    # --- TxnOffsetCommit ------------------------------------------------------------------
    def commit(self, transactional_id: str, group_id: str, producer_id: int, producer_epoch: int,
               member: tuple[int, str, str | None], commits: list, add_partition: bool, version: int,
               now_ms: int, respond: Callable[[list[ErrorCode]], None]) -> None:
        """Check, verify, append, then `respond(one error per commit)`."""
        groups = self.groups
        try:
            if not group_id:
                raise CoordinatorError(ErrorCode.invalid_group_id)
            self._check_group(group_id, member, commits, now_ms)
            partition = groups._offsets_partition(group_id, now_ms)
        except CoordinatorError as error:
            respond([error.error_code] * len(commits))
            return
        errors = [groups._commit_error(c) for c in commits]
        accepted = [c for c, e in zip(commits, errors) if e == ErrorCode.none]
        if not accepted:
            respond(errors)
            return

        def verified(codes: dict) -> None:
            code = codes.get(partition.key, ErrorCode.none)
            if code != ErrorCode.none:
                respond([_commit_error(code, version)] * len(commits))
                return
            self._append(partition, group_id, producer_id, producer_epoch, accepted, now_ms,
                         lambda code: respond(errors if code == ErrorCode.none else [code] * len(commits)))

        verify(self.core, transactional_id, producer_id, producer_epoch, [partition.key], add_partition, now_ms,
               verified)

    def _check_group(self, group_id: str, member: tuple[int, str, str | None], commits: list, now_ms: int) -> None:
        groups = self.groups
        consumer_group = groups._consumer_group(group_id, now_ms)
        if consumer_group is None:
            self._check_member(groups.group_for(group_id, now_ms, create=True), *member)
            return
        try:  # a KIP-848 group: the generation is the member epoch, as for OffsetCommit v9
            groups.consumer.check_offset_commit(consumer_group, member[1], member[0], 9,
                                                [(c.topic, c.partition) for c in commits])
        except CoordinatorError as error:
            if error.error_code in (ErrorCode.stale_member_epoch, ErrorCode.fenced_member_epoch):
                raise CoordinatorError(ErrorCode.illegal_generation) from None  # TxnOffsetCommit's word for it
            raise

    @staticmethod
    def _check_member(group: Group, generation_id: int, member_id: str, instance_id: str | None) -> None:
        """Kafka's checks for TxnOffsetCommit v3+ member fields (a member id of "" skips them)."""
        if group.is_in(DEAD):
            raise CoordinatorError(ErrorCode.coordinator_not_available)
        if instance_id is not None:
            known = group.static_members.get(instance_id)
            if known is not None and known != member_id:
                raise CoordinatorError(ErrorCode.fenced_instance_id)
        if member_id and member_id not in group.members:
            raise CoordinatorError(ErrorCode.unknown_member_id)
        if generation_id >= 0 and generation_id != group.generation_id:
            raise CoordinatorError(ErrorCode.illegal_generation)

    def _append(self, partition: Any, group_id: str, producer_id: int, producer_epoch: int, commits: list,
                now_ms: int, done: Callable[[ErrorCode], None]) -> None:
        values = {(c.topic, c.partition): rec.OffsetValue(c.offset, c.leader_epoch, c.metadata or "", now_ms)
                  for c in commits}
        records = [Record(i, now_ms, rec.encode_key(rec.OffsetKey(group_id, t, p)), rec.encode_offset_value(v))
                   for i, ((t, p), v) in enumerate(values.items())]
        batch = build_batch(records, base_offset=0, producer_id=producer_id, producer_epoch=producer_epoch,
                            transactional=True)
        partition.log.producer_state.mark_verified(producer_id, producer_epoch)
        try:
            info = partition.append(batch, -1, now_ms)
        except Exception as error:  # RecordsError, PartitionError: the append errors of OffsetCommit
            done(topic._coordinator_error(getattr(error, "error_code", None)))
            return
        self.core.partition_appended(partition.key, now_ms)
        self.pending.setdefault(producer_id, {}).setdefault(group_id, {}).update(values)
        self.core.after_replicated(partition, info.last_offset,
                                   lambda code: done(ErrorCode.none if code == ErrorCode.none
                                                     else topic._coordinator_error(code)))

    # --- markers ------------------------------------------------------------------------
    def complete(self, partition_index: int, producer_id: int, commit: bool) -> None:
        """The producer's transaction ended in this offsets partition."""
        by_group = self.pending.get(producer_id)
        if not by_group:
            return
        for group_id in sorted(by_group):
            if self.groups.partition_of(group_id) != partition_index:
                continue
            offsets = by_group.pop(group_id)
            if commit:
                group = self.groups._consumer_group(group_id, self.core.now_ms) or self.groups.groups.get(group_id)
                if group is None:
                    group = self.groups.groups[group_id] = Group(group_id, state_timestamp_ms=self.core.now_ms)
                group.offsets.update(offsets)
        if not by_group:
            del self.pending[producer_id]

    def has_pending(self, group_id: str, topic_name: str, partition: int) -> bool:
        return any((topic_name, partition) in by_group.get(group_id, {}) for by_group in self.pending.values())

    # --- loading ------------------------------------------------------------------------
    def load(self, records_by_producer: dict[int, list[tuple[bytes, bytes | None]]]) -> None:
        """Pending offsets of the transactions open at the end of a replayed partition."""
        for producer_id in sorted(records_by_producer):
            for key_bytes, value_bytes in records_by_producer[producer_id]:
                key = rec.decode_key(key_bytes)
                if isinstance(key, rec.OffsetKey) and value_bytes is not None:
                    self.pending.setdefault(producer_id, {}).setdefault(key.group_id, {})[
                        (key.topic, key.partition)] = rec.decode_offset_value(value_bytes)

    def unload(self, partition_index: int) -> None:
        for producer_id in sorted(self.pending):
            by_group = self.pending[producer_id]
            for group_id in [g for g in sorted(by_group) if self.groups.partition_of(g) == partition_index]:
                del by_group[group_id]
            if not by_group:
                del self.pending[producer_id]


def _commit_error(code: ErrorCode, version: int) -> ErrorCode:
    """A verification answer as a TxnOffsetCommit error (Kafka's GroupMetadataManager and
    AddPartitionsToTxnManager mappings)."""
    if code == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    if code == ErrorCode.transaction_abortable and version <= 3:
        return ErrorCode.invalid_txn_state
    if code == ErrorCode.network_exception:
        return ErrorCode.coordinator_load_in_progress  # older clients retry this one correctly
    return code
