"""One classic group's membership and generation, with the pure decisions about them.

Theory of operation. A `Group` is plain data owned by the coordinator: its state (state.py),
generation_id, protocol_type, the chosen protocol_name, the leader's member_id, its members,
and the committed offsets. Each `Member` carries the protocols it supports (name → metadata,
in its order of preference), its timeouts, the assignment the leader gave it, when its
session expires, and the callbacks of a JoinGroup or SyncGroup waiting for the rebalance.

The coordinator (coordinator.py) changes groups only through `transition_to`, which checks the
transition table; the helpers here decide without side effects: which protocol the members
vote for, whether every member has rejoined, who leads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from moldau.coordinator.records import GroupValue, MemberValue, OffsetValue, subscribed_topics
from moldau.coordinator.state import EMPTY, STABLE, GroupState, check_transition

log = logging.getLogger("moldau.group")

Respond = Callable[[dict], None]


@dataclass(slots=True)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]  # (protocol_name, metadata), most preferred first
    assignment: bytes = b""
    session_deadline_ms: int = 0
    awaiting_join: Respond | None = None
    awaiting_sync: Respond | None = None
    is_new: bool = False  # joined in this rebalance; expires faster if it never rejoins

    def metadata_for(self, protocol_name: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        return b""

    def supports(self, names: set[str]) -> bool:
        return any(name in names for name, _ in self.protocols)

    def vote(self, candidates: set[str]) -> str:
        return next(name for name, _ in self.protocols if name in candidates)

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict[str, Member] = field(default_factory=dict)  # by member_id, in join order
    static_members: dict[str, str] = field(default_factory=dict)  # group_instance_id -> member_id
    pending_members: dict[str, int] = field(default_factory=dict)  # member_id -> deadline_ms (MEMBER_ID_REQUIRED)
    offsets: dict[tuple[str, int], OffsetValue] = field(default_factory=dict)
    rebalance_deadline_ms: int = 0  # join phase (PreparingRebalance) or sync phase (CompletingRebalance)
    initial_delay_ms: int = 0  # what is left to extend the initial join delay by (Kafka's InitialDelayedJoin)
    in_initial_delay: bool = False  # the join phase of an Empty group: wait out the delay
    new_member_added: bool = False  # a member joined during the current delay period
    state_timestamp_ms: int = -1

    def transition_to(self, new: GroupState, now_ms: int) -> None:
        check_transition(self.state, new)
        if log.isEnabledFor(logging.INFO) and new != self.state:
            log.info("Group %s: %s -> %s (generation %d, %d member(s)%s)", self.group_id, self.state.value,
                     new.value, self.generation_id, len(self.members),
                     f", protocol {self.protocol_name}" if new == STABLE and self.protocol_name else "")
        self.state = new
        self.state_timestamp_ms = now_ms

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    # --- decisions ----------------------------------------------------------------------
    def supports_protocols(self, protocol_type: str, protocols: list[tuple[str, bytes]]) -> bool:
        """A joining member must share the group's protocol_type and one protocol with all."""
        if not protocols or not protocol_type:
            return False
        if not self.members:
            return True
        names = {name for name, _ in protocols}
        return self.protocol_type == protocol_type and bool(names & self.candidate_protocols())

    def candidate_protocols(self) -> set[str]:
        names: set[str] | None = None
        for member in self.members.values():
            supported = {name for name, _ in member.protocols}
            names = supported if names is None else names & supported
        return names or set()

    def select_protocol(self) -> str:
        """The protocol most members prefer among those every member supports (Kafka's vote)."""
        candidates = self.candidate_protocols()
        votes: dict[str, int] = {}
        for member in self.members.values():
            choice = member.vote(candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(sorted(votes), key=lambda name: votes[name])

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join is not None for m in self.members.values())

    def choose_leader(self) -> str | None:
        if self.leader_id in self.members:
            return self.leader_id
        joined = [m for m in self.members.values() if m.awaiting_join is not None]
        pool = joined or list(self.members.values())
        return pool[0].member_id if pool else None

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to (consumer protocol), None if unknown."""
        if self.protocol_type != "consumer" or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            topics.update(subscribed_topics(member.metadata_for(self.protocol_name)))
        return topics

    # --- storage ------------------------------------------------------------------------
    def to_value(self) -> GroupValue:
        members = tuple(
            MemberValue(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                        m.session_timeout_ms, m.metadata_for(self.protocol_name), m.assignment)
            for m in self.members.values()
        )
        return GroupValue(self.protocol_type or "", self.generation_id, self.protocol_name, self.leader_id,
                          self.state_timestamp_ms, members)


def member_from_value(value: MemberValue, protocol_type: str, protocol_name: str | None) -> Member:
    protocols = [(protocol_name, value.subscription)] if protocol_name else []
    return Member(value.member_id, value.group_instance_id, value.client_id, value.client_host,
                  value.rebalance_timeout_ms, value.session_timeout_ms, protocol_type, protocols,
                  assignment=value.assignment)
