"""The group coordinator: groups of the `__consumer_offsets` partitions this broker leads.

Theory of operation. `GroupCoordinator` owns every classic group whose offsets partition this
broker leads (offsets_topic.py says which partition a group lives in). A partition is replayed
from the log (`_load`) on the first tick after this broker starts leading it, or earlier by the
first request that needs it; the last record per key wins, so the result is what compaction
would keep — committed offsets per (group, topic, partition) and each
group's last stored generation. A group that had members when the broker stopped comes back
Stable with them; their sessions restart at load time, so members that are gone expire and the
group rebalances.

Every change that must survive a restart is appended to the partition before memory changes
and before the client is answered: offset commits (OffsetCommitValue records), the group's
generation and assignments when a rebalance completes (GroupMetadataValue), tombstones for
DeleteGroups, OffsetDelete and the offsets of a deleted topic (as Kafka: a topic recreated
under the same name must not inherit them). The rebalance protocol itself is in membership.py; this module
adds routing, storage, offsets and the admin APIs (ListGroups, DescribeGroups, DeleteGroups).

Randomness (member ids) comes from the injected `new_uuid`; time arrives as `now_ms`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.coordinator import consumer_records as cr
from moldau.coordinator import offsets_topic as topic
from moldau.coordinator import records as rec
from moldau.coordinator.consumer_group import ConsumerGroup, ConsumerGroupState
from moldau.coordinator.deadlines import DeadlineSchedule
from moldau.coordinator.group import Group, member_from_value
from moldau.coordinator.membership import MembershipMixin, join_response, sync_response
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.coordinator.state import COMPLETING_REBALANCE, DEAD, EMPTY, STABLE, GroupState

GROUP_TYPE_CLASSIC = "classic"
OFFSETS_RETENTION_CHECK_INTERVAL_MS = 600_000  # Kafka's offsets.retention.check.interval.ms


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str | None


class GroupCoordinator(MembershipMixin):
    def __init__(self, core: Any, new_uuid: Callable[[], uuid.UUID], initial_rebalance_delay_ms: int):
        self.core = core
        self.new_uuid = new_uuid
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.groups: dict[str, Group] = {}
        self.loaded: dict[int, int] = {}  # offsets partition -> leader epoch it was loaded at
        self.last_retention_check_ms = core.now_ms
        # Sessions, joins and rebalances end on their deadlines (deadlines.py), not on a tick.
        self.deadlines = DeadlineSchedule()
        from moldau.coordinator.txn_offsets import TxnOffsets  # (imports the broker's verification path)
        self.txn_offsets = TxnOffsets(self)  # TxnOffsetCommit: pending until the transaction's marker

    # --- routing and loading ----------------------------------------------------------
    @property
    def consumer(self) -> Any:
        """The KIP-848 consumer groups kept beside these classic ones (consumer_coordinator.py)."""
        return self.core.extensions.get("consumer_group_coordinator")

    def _consumer_group(self, group_id: str, now_ms: int) -> Any:
        """The consumer group (KIP-848) of this id, None if it is classic or unknown."""
        consumer = self.consumer
        return consumer.group_for(group_id, now_ms) if consumer is not None else None

    def partition_count(self) -> int:
        image = self.core.image.topic(topic.TOPIC)
        return len(image.partitions) if image is not None else self.core.config.offsets_topic_num_partitions

    def partition_of(self, group_id: str) -> int:
        return topic.partition_for(group_id, self.partition_count())

    def coordinator_node(self, group_id: str, listener_name: str | None = None) -> tuple[int, str, int]:
        """(node_id, host, port) of the group's coordinator on the client's listener, creating
        the topic on first use."""
        image = topic.ensure_topic(self.core)
        leader = image.partitions[self.partition_of(group_id)].leader
        broker = self.core.image.brokers.get(leader)
        endpoint = broker.endpoint(listener_name) if broker is not None else None
        if leader < 0 or endpoint is None:
            raise CoordinatorError(ErrorCode.coordinator_not_available)
        return leader, endpoint[0], endpoint[1]

    def _offsets_partition(self, group_id: str, now_ms: int) -> Any:
        topic.ensure_topic(self.core)
        index = self.partition_of(group_id)
        partition = topic.leader_partition(self.core, index)
        if self.loaded.get(index) != partition.leader_epoch:
            self._load(index, partition, now_ms)
        return partition

    def group_for(self, group_id: str, now_ms: int, create: bool = False) -> Group | None:
        """The group if this broker coordinates it (NOT_COORDINATOR otherwise)."""
        self._offsets_partition(group_id, now_ms)
        group = self.groups.get(group_id)
        if group is None and create:
            group = self.groups[group_id] = Group(group_id, state_timestamp_ms=now_ms)
        self.deadlines.touch(group_id)  # the caller may move its deadlines
        return group

    def _load(self, index: int, partition: Any, now_ms: int) -> None:
        for group_id in [g for g in self.groups if self.partition_of(g) == index]:
            del self.groups[group_id]
        offsets: dict[str, dict[tuple[str, int], rec.OffsetValue]] = {}
        metadata: dict[str, rec.GroupValue | None] = {}
        consumer_records: list[tuple[bytes, bytes | None]] = []  # KIP-848 groups: consumer_coordinator.py
        open_transactions: dict[int, list] = {}
        self.txn_offsets.unload(index)
        for key_bytes, value_bytes in topic.read_records(partition, open_transactions):
            if cr.record_type(key_bytes) in cr.CONSUMER_GROUP_RECORD_TYPES:
                consumer_records.append((key_bytes, value_bytes))
                continue
            key = rec.decode_key(key_bytes)
            if isinstance(key, rec.OffsetKey):
                entries = offsets.setdefault(key.group_id, {})
                if value_bytes is None:
                    entries.pop((key.topic, key.partition), None)
                else:
                    entries[(key.topic, key.partition)] = rec.decode_offset_value(value_bytes)
            else:
                metadata[key.group_id] = None if value_bytes is None else rec.decode_group_value(value_bytes)
        self._drop_offsets_of_deleted_topics(partition, offsets, now_ms)
        live = {g for g, entries in offsets.items() if entries} | {g for g, v in metadata.items() if v is not None}
        for group_id in sorted(live):
            self.groups[group_id] = self._restore_group(group_id, metadata.get(group_id), offsets.get(group_id, {}), now_ms)
            self.deadlines.touch(group_id)  # restored members' sessions run from now
        self.txn_offsets.load(open_transactions)
        if self.consumer is not None:  # claims its groups (and their offsets) from self.groups
            self.consumer.load_partition(index, consumer_records, now_ms)
        self.loaded[index] = partition.leader_epoch

    def _drop_offsets_of_deleted_topics(self, partition: Any, offsets: dict, now_ms: int) -> None:
        """Committed offsets whose topic no longer exists (deleted while this partition was not
        loaded, or the broker stopped before topic_deleted wrote its tombstones) are dropped and
        tombstoned, so that a topic created later under the same name starts without them."""
        stale = [(group_id, key) for group_id in sorted(offsets) for key in sorted(offsets[group_id])
                 if self.core.image.topic(key[0]) is None]
        for group_id, key in stale:
            del offsets[group_id][key]
        if stale:
            records = [(rec.encode_key(rec.OffsetKey(g, t, p)), None) for g, (t, p) in stale]
            try:
                topic.append(self.core, partition, records, now_ms)
            except CoordinatorError:
                pass  # memory is right; the next load finds and drops them again

    def topic_deleted(self, name: str, now_ms: int) -> None:
        """A topic was deleted: every group forgets its committed offsets for it (tombstones),
        as Kafka does, so that a consumer of a topic recreated with the same name starts from
        auto.offset.reset instead of at the old topic's offsets — which would skip records.
        Groups of partitions not loaded yet are cleaned when they load."""
        consumer_groups = self.consumer.groups if self.consumer is not None else {}
        for group_id in sorted(set(self.groups) | set(consumer_groups)):
            group = self.groups.get(group_id) or consumer_groups[group_id]
            doomed = sorted(key for key in group.offsets if key[0] == name)
            if not doomed:
                continue
            try:
                self._tombstone(group, doomed, with_group=False, now_ms=now_ms)
            except CoordinatorError:
                for key in doomed:
                    group.offsets.pop(key, None)

    def sync_partitions(self, now_ms: int) -> None:
        """Load the offsets partitions this broker now leads; unload those it no longer leads
        (their groups' waiting requests are answered NOT_COORDINATOR, and clients look again)."""
        if self.core.image.topic(topic.TOPIC) is None:
            return
        for index in range(self.partition_count()):
            partition = self.core.partition(topic.TOPIC, index)
            leading = partition is not None and partition.is_leader and partition.log.offline is None
            if leading and self.loaded.get(index) != partition.leader_epoch:
                try:
                    self._load(index, partition, now_ms)
                except CoordinatorError:
                    continue  # a damaged batch: its groups answer COORDINATOR_NOT_AVAILABLE
            elif not leading and index in self.loaded:
                self._unload(index)

    def _unload(self, index: int) -> None:
        del self.loaded[index]
        self.txn_offsets.unload(index)
        if self.consumer is not None:
            self.consumer.unload_partition(index)
        for group_id in [g for g in sorted(self.groups) if self.partition_of(g) == index]:
            group = self.groups.pop(group_id)
            for member in list(group.members.values()):
                if member.awaiting_join is not None:
                    member.awaiting_join(join_response(ErrorCode.not_coordinator, member.member_id))
                if member.awaiting_sync is not None:
                    member.awaiting_sync(sync_response(ErrorCode.not_coordinator))
                member.awaiting_join = member.awaiting_sync = None

    @staticmethod
    def _restore_group(group_id: str, value: rec.GroupValue | None, offsets: dict, now_ms: int) -> Group:
        group = Group(group_id, offsets=offsets, state_timestamp_ms=now_ms)
        if value is None:
            return group
        if value.current_state_timestamp_ms >= 0:
            group.state_timestamp_ms = value.current_state_timestamp_ms
        group.generation_id = value.generation_id
        group.protocol_type = value.protocol_type or None
        group.protocol_name = value.protocol_name
        group.leader_id = value.leader
        for member_value in value.members:
            member = member_from_value(member_value, value.protocol_type, value.protocol_name)
            member.session_deadline_ms = now_ms + member.session_timeout_ms
            group.members[member.member_id] = member
            if member.group_instance_id is not None:
                group.static_members[member.group_instance_id] = member.member_id
        group.state = STABLE if group.members else EMPTY
        return group

    # --- storage ----------------------------------------------------------------------
    def store_group(self, group: Group, now_ms: int) -> None:
        partition = self._offsets_partition(group.group_id, now_ms)
        value = rec.encode_group_value(group.to_value())
        topic.append(self.core, partition, [(rec.encode_key(rec.GroupKey(group.group_id)), value)], now_ms)

    # --- OffsetCommit / OffsetFetch / OffsetDelete --------------------------------------
    def commit_offsets(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                       commits: list[OffsetCommit], now_ms: int, version: int = 9) -> list[ErrorCode]:
        """One error per commit, in order; a group-level problem fails all of them. For a
        consumer group (KIP-848) `generation_id` is the member epoch."""
        try:
            if not group_id:
                raise CoordinatorError(ErrorCode.invalid_group_id)
            group = self._consumer_group(group_id, now_ms)
            if group is not None:
                self.consumer.check_offset_commit(group, member_id, generation_id, version,
                                                  [(c.topic, c.partition) for c in commits])
            else:
                group = self.group_for(group_id, now_ms, create=generation_id < 0)
                self._check_commit(group, generation_id, member_id, instance_id, now_ms)
            errors = [self._commit_error(c) for c in commits]
            accepted = [c for c, e in zip(commits, errors) if e == ErrorCode.none]
            if accepted:
                self._store_offsets(group, accepted, now_ms)
        except CoordinatorError as error:
            return [error.error_code] * len(commits)
        return errors

    def _check_commit(self, group: Group | None, generation_id: int, member_id: str,
                      instance_id: str | None, now_ms: int) -> None:
        if group is None:
            raise CoordinatorError(ErrorCode.illegal_generation)
        if group.is_in(DEAD):
            raise CoordinatorError(ErrorCode.coordinator_not_available)
        if generation_id < 0 and group.is_in(EMPTY):
            return  # a commit from outside the group (admin tools, manual assignment)
        error = self._member_error(group, member_id, instance_id)
        if error is not None:
            raise CoordinatorError(error)
        if generation_id != group.generation_id:
            raise CoordinatorError(ErrorCode.illegal_generation)
        if group.is_in(COMPLETING_REBALANCE):
            raise CoordinatorError(ErrorCode.rebalance_in_progress)
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms

    def _commit_error(self, commit: OffsetCommit) -> ErrorCode:
        if commit.metadata is not None and len(commit.metadata.encode("utf-8")) > limits.offset_metadata_bytes_max:
            return ErrorCode.offset_metadata_too_large
        image = self.core.image.topic(commit.topic)
        if image is None or commit.partition not in image.partitions:
            return ErrorCode.unknown_topic_or_partition
        return ErrorCode.none

    def _store_offsets(self, group: Group, commits: list[OffsetCommit], now_ms: int) -> None:
        partition = self._offsets_partition(group.group_id, now_ms)
        values = {(c.topic, c.partition): rec.OffsetValue(c.offset, c.leader_epoch, c.metadata or "", now_ms)
                  for c in commits}
        records = [(rec.encode_key(rec.OffsetKey(group.group_id, t, p)), rec.encode_offset_value(v))
                   for (t, p), v in values.items()]
        topic.append(self.core, partition, records, now_ms)
        group.offsets.update(values)

    def fetch_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]] | None, now_ms: int,
                      member_id: str | None = None, member_epoch: int = -1,
                      ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, rec.OffsetValue | None]]]]]:
        """(group error, [(topic, [(partition, committed value or None)])]); None = every topic.
        A consumer group's member (OffsetFetch v9) must fetch at its current member epoch."""
        try:
            group = self._consumer_group(group_id, now_ms)
            if group is not None:
                self.consumer.check_offset_fetch(group, member_id, member_epoch)
            else:
                group = self.group_for(group_id, now_ms)
        except CoordinatorError as error:
            return error.error_code, []
        offsets = group.offsets if group is not None else {}
        if wanted is None:
            by_topic: dict[str, list[int]] = {}
            for name, index in sorted(offsets):
                by_topic.setdefault(name, []).append(index)
            wanted = sorted(by_topic.items())
        return ErrorCode.none, [(name, [(i, offsets.get((name, i))) for i in indexes]) for name, indexes in wanted]

    def delete_offsets(self, group_id: str, wanted: list[tuple[str, list[int]]],
                       now_ms: int) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        try:
            group = self._consumer_group(group_id, now_ms) or self.group_for(group_id, now_ms)
            if group is None or group.state in (DEAD, ConsumerGroupState.DEAD):
                raise CoordinatorError(ErrorCode.group_id_not_found)
            if isinstance(group, ConsumerGroup):
                subscribed = self.consumer.subscribed_topic_names(group)
            else:
                subscribed = set() if group.is_in(EMPTY) else group.subscribed_topics()
            if subscribed is None:
                raise CoordinatorError(ErrorCode.non_empty_group)
            results = [(name, [(i, ErrorCode.group_subscribed_to_topic if name in subscribed else ErrorCode.none)
                               for i in indexes]) for name, indexes in wanted]
            doomed = [(name, i) for name, parts in results for i, e in parts
                      if e == ErrorCode.none and (name, i) in group.offsets]
            self._tombstone(group, doomed, with_group=False, now_ms=now_ms)
        except CoordinatorError as error:
            return error.error_code, []
        return ErrorCode.none, results

    def _tombstone(self, group: Group, keys: list[tuple[str, int]], with_group: bool, now_ms: int) -> None:
        records: list[tuple[bytes, bytes | None]] = [
            (rec.encode_key(rec.OffsetKey(group.group_id, t, p)), None) for t, p in keys]
        if with_group:
            records.append((rec.encode_key(rec.GroupKey(group.group_id)), None))
        if records:
            topic.append(self.core, self._offsets_partition(group.group_id, now_ms), records, now_ms)
        for key in keys:
            group.offsets.pop(key, None)

    # --- ListGroups / DescribeGroups / DeleteGroups -------------------------------------
    def list_groups(self, states: set[GroupState] | None, types: set[str] | None, now_ms: int) -> list[Group]:
        if self.core.image.topic(topic.TOPIC) is None:
            return []  # no group was ever coordinated: listing does not create the topic
        if types is not None and GROUP_TYPE_CLASSIC not in types:
            return []
        self.sync_partitions(now_ms)
        groups = [self.groups[g] for g in sorted(self.groups)]
        return [g for g in groups if not g.is_in(DEAD) and (states is None or g.state in states)]

    def list_consumer_groups(self, states: set[str] | None, now_ms: int) -> list[ConsumerGroup]:
        """The KIP-848 consumer groups, filtered by lower-case state names (ListGroups v4+)."""
        if self.core.image.topic(topic.TOPIC) is None or self.consumer is None:
            return []
        self.sync_partitions(now_ms)
        groups = [self.consumer.groups[g] for g in sorted(self.consumer.groups)]
        return [g for g in groups if states is None or g.state.value.lower() in states]

    def describe_group(self, group_id: str, now_ms: int) -> tuple[ErrorCode, Group | ConsumerGroup | None]:
        try:
            return ErrorCode.none, self._consumer_group(group_id, now_ms) or self.group_for(group_id, now_ms)
        except CoordinatorError as error:
            return error.error_code, None

    def delete_group(self, group_id: str, now_ms: int) -> ErrorCode:
        try:
            consumer_group = self._consumer_group(group_id, now_ms)
            if consumer_group is not None:
                return self._delete_consumer_group(consumer_group, now_ms)
            group = self.group_for(group_id, now_ms)
            if group is None or group.is_in(DEAD):
                return ErrorCode.group_id_not_found
            if not group.is_in(EMPTY):
                return ErrorCode.non_empty_group
            self._tombstone(group, sorted(group.offsets), with_group=True, now_ms=now_ms)
        except CoordinatorError as error:
            return error.error_code
        group.transition_to(DEAD, now_ms)
        del self.groups[group_id]
        return ErrorCode.none

    def _delete_consumer_group(self, group: ConsumerGroup, now_ms: int) -> ErrorCode:
        if group.members:
            return ErrorCode.non_empty_group
        keys = sorted(group.offsets)
        records = [(rec.encode_key(rec.OffsetKey(group.group_id, t, p)), None) for t, p in keys]
        topic.append(self.core, self._offsets_partition(group.group_id, now_ms),
                     records + self.consumer.delete_records(group), now_ms)
        group.offsets.clear()
        self.consumer.forget(group.group_id)
        return ErrorCode.none

    # --- time ---------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        """The core arms one timer for the earliest deadline of any part (BrokerCore)."""
        return self.deadlines.next_deadline_ms(self._group_deadline)

    def _group_deadline(self, group_id: str) -> int | None:
        group = self.groups.get(group_id)
        return None if group is None else self.next_group_deadline(group)

    def run_deadlines(self, now_ms: int) -> None:
        """Expire the sessions, joins and rebalances whose deadline has come — at that moment."""
        self.deadlines.next_deadline_ms(self._group_deadline)  # schedule what requests touched
        for group_id in sorted(self.deadlines.due(now_ms)):
            group = self.groups.get(group_id)
            if group is not None and not group.is_in(DEAD):
                self.expire_sessions(group, now_ms)

    def tick(self, now_ms: int) -> None:
        self.sync_partitions(now_ms)  # after a start: load every led partition without waiting for a request
        self.run_deadlines(now_ms)  # normally already run by the core's timer, on the deadline
        if now_ms - self.last_retention_check_ms >= OFFSETS_RETENTION_CHECK_INTERVAL_MS:
            self.last_retention_check_ms = now_ms
            self.expire_offsets(now_ms)

    def expire_offsets(self, now_ms: int) -> None:
        """Kafka's offset retention (KIP-211): a consumer group's offsets go once it has been
        Empty for the retention period; a group that only commits (no protocol) loses each
        offset the retention period after its commit. A group left with nothing is deleted."""
        retention_ms = self.core.config.offsets_retention_ms  # offsets.retention.minutes
        for group_id in sorted(self.groups):
            group = self.groups[group_id]
            if not group.is_in(EMPTY) or group.pending_members:
                continue
            if group.protocol_type:
                expired = sorted(group.offsets) if now_ms - group.state_timestamp_ms >= retention_ms else []
            else:
                expired = sorted(key for key, value in group.offsets.items()
                                 if now_ms - value.commit_timestamp_ms >= retention_ms)
            emptied = len(expired) == len(group.offsets)
            try:
                self._tombstone(group, expired, with_group=emptied, now_ms=now_ms)
            except CoordinatorError:
                continue  # not (or no longer) this broker's group
            if emptied:
                group.transition_to(DEAD, now_ms)
                del self.groups[group_id]
        consumer_groups = self.consumer.groups if self.consumer is not None else {}
        for group_id in sorted(consumer_groups):  # KIP-848 groups: Empty for the retention period
            group = consumer_groups[group_id]
            if group.members or now_ms - group.state_timestamp_ms < retention_ms:
                continue
            try:
                self._delete_consumer_group(group, now_ms)
            except CoordinatorError:
                continue
