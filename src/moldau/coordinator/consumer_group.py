"""One KIP-848 consumer group as data, changed only by replaying its records.

Theory of operation. A `ConsumerGroup` holds what its records in `__consumer_offsets` say
(consumer_records.py): the group epoch and metadata hash, each member's metadata and current
assignment, the target assignment and its epoch, and resolved regular expressions. The
coordinator never edits these fields directly: it builds records, appends them, and then calls
`replay` with each — the same function that rebuilds the group from the log after a restart or
on the next coordinator of the partition. Memory therefore always equals the log.

Beside the replayed fields the group keeps what is not stored: session and revocation
deadlines (restarted when a group is loaded, as Kafka does), committed offsets (stored as
offset commit records, loaded by the classic coordinator's replay) and the ownership map
(partition -> member), derived from current assignments on replay.

The group's state is derived, as in Kafka:
    Empty        no members
    Assigning    the group epoch is ahead of the target assignment epoch
    Reconciling  some member is not yet at the target epoch, or not STABLE
    Stable       every member is STABLE at the target epoch
and `GROUP_TRANSITIONS` is the table of the moves it may make (Dead only when deleted).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field

from moldau.coordinator import consumer_records as cr
from moldau.coordinator.reconciliation import STABLE, CurrentAssignment, MemberState

log = logging.getLogger("moldau.group")


class ConsumerGroupState(enum.Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


_S = ConsumerGroupState
GROUP_TRANSITIONS: dict[ConsumerGroupState, frozenset[ConsumerGroupState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.ASSIGNING, _S.RECONCILING, _S.STABLE, _S.DEAD}),
    _S.ASSIGNING: frozenset({_S.ASSIGNING, _S.RECONCILING, _S.STABLE, _S.EMPTY, _S.DEAD}),
    _S.RECONCILING: frozenset({_S.RECONCILING, _S.ASSIGNING, _S.STABLE, _S.EMPTY, _S.DEAD}),
    _S.STABLE: frozenset({_S.STABLE, _S.ASSIGNING, _S.RECONCILING, _S.EMPTY, _S.DEAD}),
    _S.DEAD: frozenset({_S.DEAD}),
}

GROUP_TYPE_CONSUMER = "consumer"
PROTOCOL_TYPE_CONSUMER = "consumer"


@dataclass(slots=True)
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    rebalance_timeout_ms: int = -1
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = STABLE
    assigned: cr.Assignment = field(default_factory=dict)
    pending_revocation: cr.Assignment = field(default_factory=dict)
    # (topic id, partition) -> member epoch at which the member got it (memory only; a loaded
    # member's partitions count from its current epoch). KIP-1251's assignment epochs.
    assignment_epochs: dict[tuple[str, int], int] = field(default_factory=dict)
    session_deadline_ms: int = 0
    revocation_deadline_ms: int | None = None  # fenced if still UNREVOKED_PARTITIONS then

    def metadata_value(self) -> cr.MemberMetadataValue:
        return cr.MemberMetadataValue(self.instance_id, self.rack_id, self.client_id, self.client_host,
                                      self.subscribed_topic_names, self.subscribed_topic_regex,
                                      self.rebalance_timeout_ms, self.server_assignor)

    def current(self) -> CurrentAssignment:
        return CurrentAssignment(self.member_epoch, self.previous_member_epoch, self.state, self.assigned,
                                 self.pending_revocation)

    def current_value(self, current: CurrentAssignment | None = None) -> cr.CurrentMemberAssignmentValue:
        c = current or self.current()
        return cr.CurrentMemberAssignmentValue(c.member_epoch, c.previous_member_epoch, int(c.state), c.assigned,
                                               c.pending_revocation)


@dataclass(slots=True)
class ResolvedRegex:
    topics: tuple[str, ...]
    version: int  # metadata image offset it was resolved at
    timestamp_ms: int


@dataclass(slots=True)
class ConsumerGroup:
    group_id: str
    group_epoch: int = 0
    metadata_hash: int = 0
    target_assignment_epoch: int = 0
    members: dict[str, ConsumerMember] = field(default_factory=dict)
    target: dict[str, cr.Assignment] = field(default_factory=dict)  # member id -> target assignment
    regexes: dict[str, ResolvedRegex] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # instance id -> member id
    owners: dict[tuple[str, int], str] = field(default_factory=dict)  # (topic id, partition) -> member id
    offsets: dict = field(default_factory=dict)  # (topic, partition) -> records.OffsetValue
    exists: bool = False  # a ConsumerGroupMetadata record (not a tombstone) was replayed
    subscription_version: int = 0  # moves on every replayed member metadata or regex record
    derived: tuple | None = None  # the coordinator's cache of subscribed topics (memory only)
    state: ConsumerGroupState = ConsumerGroupState.EMPTY
    state_timestamp_ms: int = -1

    # --- derived ------------------------------------------------------------------------
    def derive_state(self) -> ConsumerGroupState:
        if not self.exists:
            return ConsumerGroupState.DEAD
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.target_assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(m.state != STABLE or m.member_epoch != self.target_assignment_epoch for m in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    def refresh_state(self, now_ms: int) -> None:
        new = self.derive_state()
        if new is self.state:
            return
        if new not in GROUP_TRANSITIONS[self.state]:
            raise AssertionError(f"consumer group cannot go from {self.state.value} to {new.value}")
        log.info("Consumer group %s: %s -> %s (group epoch %d, assignment epoch %d, %d member(s))", self.group_id,
                 self.state.value, new.value, self.group_epoch, self.target_assignment_epoch, len(self.members))
        self.state = new
        self.state_timestamp_ms = now_ms

    def owned_elsewhere(self, member_id: str):
        owners = self.owners
        return lambda topic_id, partition: owners.get((topic_id, partition), member_id) != member_id

    def preferred_assignor(self, default: str) -> str:
        """The server assignor most members ask for (ties: by name), else the broker's default."""
        votes: dict[str, int] = {}
        for member in self.members.values():
            if member.server_assignor:
                votes[member.server_assignor] = votes.get(member.server_assignor, 0) + 1
        if not votes:
            return default
        return max(sorted(votes), key=lambda name: votes[name])

    # --- replay -------------------------------------------------------------------------
    def replay(self, key: cr.Key, value: cr.Value | None) -> None:
        kind = key.record_type
        if kind == cr.GROUP_METADATA:
            self.exists = value is not None
            if isinstance(value, cr.GroupMetadataValue):
                self.group_epoch, self.metadata_hash = value.epoch, value.metadata_hash
        elif kind == cr.MEMBER_METADATA:
            self.subscription_version += 1
            self._replay_member_metadata(key.member_id, value)
        elif kind == cr.TARGET_ASSIGNMENT_METADATA:
            self.target_assignment_epoch = value.assignment_epoch if value is not None else 0
        elif kind == cr.TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                self.target.pop(key.member_id, None)
            else:
                self.target[key.member_id] = dict(value.partitions)
        elif kind == cr.CURRENT_MEMBER_ASSIGNMENT:
            self._replay_current(key.member_id, value)
        elif kind == cr.REGULAR_EXPRESSION:
            self.subscription_version += 1
            if value is None:
                self.regexes.pop(key.member_id, None)
            else:
                self.regexes[key.member_id] = ResolvedRegex(value.topics, value.version, value.timestamp_ms)

    def _replay_member_metadata(self, member_id: str, value: cr.MemberMetadataValue | None) -> None:
        old = self.members.get(member_id)
        if value is None:
            if old is not None:
                self._set_ownership(old, {}, {})
                del self.members[member_id]
                if old.instance_id is not None and self.static_members.get(old.instance_id) == member_id:
                    del self.static_members[old.instance_id]
            return
        member = old or ConsumerMember(member_id)
        member.instance_id, member.rack_id = value.instance_id, value.rack_id
        member.client_id, member.client_host = value.client_id, value.client_host
        member.subscribed_topic_names = tuple(value.subscribed_topic_names)
        member.subscribed_topic_regex = value.subscribed_topic_regex
        member.rebalance_timeout_ms, member.server_assignor = value.rebalance_timeout_ms, value.server_assignor
        self.members[member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member_id

    def _replay_current(self, member_id: str, value: cr.CurrentMemberAssignmentValue | None) -> None:
        member = self.members.get(member_id)
        if member is None:
            if value is None:
                return
            member = self.members[member_id] = ConsumerMember(member_id)  # its metadata follows
        if value is None:
            self._set_ownership(member, {}, {})
            member.assignment_epochs = {}
            member.member_epoch, member.previous_member_epoch, member.state = 0, -1, STABLE
            member.assigned, member.pending_revocation = {}, {}
            return
        self._set_ownership(member, value.assigned, value.pending_revocation)
        held = {(t, p) for a in (value.assigned, value.pending_revocation) for t, parts in a.items() for p in parts}
        member.assignment_epochs = {key: member.assignment_epochs.get(key, value.member_epoch) for key in held}
        member.member_epoch, member.previous_member_epoch = value.member_epoch, value.previous_member_epoch
        member.state = MemberState(value.state) if value.state in MemberState._value2member_map_ else MemberState.UNKNOWN
        member.assigned, member.pending_revocation = dict(value.assigned), dict(value.pending_revocation)

    def _set_ownership(self, member: ConsumerMember, assigned: cr.Assignment, pending: cr.Assignment) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    if self.owners.get((topic_id, partition)) == member.member_id:
                        del self.owners[(topic_id, partition)]
        for assignment in (assigned, pending):
            for topic_id, partitions in assignment.items():
                for partition in partitions:
                    self.owners[(topic_id, partition)] = member.member_id
