"""JoinGroup, SyncGroup, Heartbeat, LeaveGroup and session expiry: the classic rebalance protocol.

Theory of operation. A rebalance has two phases. In the join phase (PreparingRebalance) every
member sends JoinGroup and its response is held back; the phase ends when every known member
has rejoined, or at the rebalance deadline (the largest rebalance timeout of the members),
when members that did not rejoin are removed. The first rebalance of an Empty group waits
group.initial.rebalance.delay.ms first (extended while new members keep arriving, up to the
rebalance timeout) so a fleet of consumers starting together forms one generation. Completing
the join bumps generation_id, picks the protocol every member supports that most members
prefer, keeps (or picks) the leader, and answers all held JoinGroups — the leader's answer
lists every member's metadata. In the sync phase (CompletingRebalance) the leader's SyncGroup
brings the assignments; they are stored in __consumer_offsets, the group becomes Stable and
every held SyncGroup is answered with its member's assignment. The broker never looks inside
protocols or assignments: range, roundrobin, sticky and cooperative-sticky all work because
the leader computes them.

Dynamic members joining with JoinGroup v4+ and no member_id get one (client_id + "-" + UUID)
with MEMBER_ID_REQUIRED and must rejoin with it (KIP-394); until then they are pending.
Static members (group.instance.id, KIP-345) keep their place across restarts: a rejoin with a
new member_id replaces the old member (whose held requests are answered FENCED_INSTANCE_ID) and,
if the group is Stable and the protocols did not change, does not rebalance.

Liveness: a member's session deadline moves on every Heartbeat, JoinGroup, SyncGroup and
OffsetCommit; `tick` removes members past it (except those waiting in a rebalance, which the
rebalance deadline covers) and rebalances the group, as does LeaveGroup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.coordinator.group import Group, Member, Respond
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.coordinator.state import COMPLETING_REBALANCE, DEAD, EMPTY, PREPARING_REBALANCE, STABLE

log = logging.getLogger("moldau.group")

# Kafka's GroupCoordinator.NewMemberJoinTimeoutMs: a new member that never rejoins is dropped.
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000


@dataclass(slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    require_known_member_id: bool  # JoinGroup v4+ (KIP-394)


def join_response(error: ErrorCode, member_id: str = "", group: Group | None = None,
                  members: list[Member] | None = None, skip_assignment: bool = False) -> dict:
    return {
        "throttle_time": 0, "error_code": error,
        "generation_id": group.generation_id if group and error == ErrorCode.none else -1,
        "protocol_type": group.protocol_type if group and error == ErrorCode.none else None,
        "protocol_name": group.protocol_name if group and error == ErrorCode.none else None,
        "leader": (group.leader_id or "") if group and error == ErrorCode.none else "",
        "skip_assignment": skip_assignment, "member_id": member_id,
        "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id,
                     "metadata": m.metadata_for(group.protocol_name if group else None)} for m in members or ()],
    }


def sync_response(error: ErrorCode, group: Group | None = None, assignment: bytes = b"") -> dict:
    ok = error == ErrorCode.none and group is not None
    return {"throttle_time": 0, "error_code": error,
            "protocol_type": group.protocol_type if ok else None,
            "protocol_name": group.protocol_name if ok else None,
            "assignment": assignment if ok else b""}


class MembershipMixin:
    """The rebalance protocol; mixed into GroupCoordinator (which supplies groups and storage)."""

    # --- JoinGroup ----------------------------------------------------------------------
    def join_group(self, req: JoinRequest, respond: Respond, now_ms: int) -> None:
        try:
            self._check_join(req)
            self._convert_consumer_group(req.group_id, now_ms)
            group = self.group_for(req.group_id, now_ms, create=req.member_id == "")
        except CoordinatorError as error:
            respond(join_response(error.error_code, req.member_id))
            return
        if group is None:
            respond(join_response(ErrorCode.unknown_member_id, req.member_id))
        elif group.is_in(DEAD):
            respond(join_response(ErrorCode.coordinator_not_available, req.member_id))
        elif not group.supports_protocols(req.protocol_type, req.protocols):
            respond(join_response(ErrorCode.inconsistent_group_protocol, req.member_id))
        elif req.member_id == "":
            self._join_new_member(group, req, respond, now_ms)
        else:
            self._join_known_member(group, req, respond, now_ms)
        if group is not None:
            self._maybe_complete_join(group, now_ms)

    def _convert_consumer_group(self, group_id: str, now_ms: int) -> None:
        """A KIP-848 consumer group of this id becomes classic if it is empty (its offsets stay)."""
        if self.consumer is None or self.consumer.group_for(group_id, now_ms) is None:
            return
        error, offsets = self.consumer.convert_to_classic(group_id, now_ms)
        if error != ErrorCode.none:
            raise CoordinatorError(error)
        self.groups[group_id] = Group(group_id, offsets=offsets, state_timestamp_ms=now_ms)

    def _check_join(self, req: JoinRequest) -> None:
        if not req.group_id:
            raise CoordinatorError(ErrorCode.invalid_group_id)
        config = self.core.config  # group.min/max.session.timeout.ms
        if not config.group_min_session_timeout_ms <= req.session_timeout_ms <= config.group_max_session_timeout_ms:
            raise CoordinatorError(ErrorCode.invalid_session_timeout)

    def _join_new_member(self, group: Group, req: JoinRequest, respond: Respond, now_ms: int) -> None:
        prefix = req.group_instance_id if req.group_instance_id is not None else req.client_id
        member_id = f"{prefix}-{self.new_uuid()}"
        old_id = group.static_members.get(req.group_instance_id) if req.group_instance_id is not None else None
        if old_id is not None and old_id in group.members:  # a static member back: takes its own place
            self._replace_static_member(group, old_id, member_id, req, respond, now_ms)
            return
        if len(group.members) + len(group.pending_members) >= limits.group_members_max:
            respond(join_response(ErrorCode.group_max_size_reached))
            return
        if req.group_instance_id is None and req.require_known_member_id:
            group.pending_members[member_id] = now_ms + req.session_timeout_ms
            respond(join_response(ErrorCode.member_id_required, member_id))
            return
        self._add_member(group, member_id, req, respond, now_ms)

    def _join_known_member(self, group: Group, req: JoinRequest, respond: Respond, now_ms: int) -> None:
        member_id = req.member_id
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            self._add_member(group, member_id, req, respond, now_ms)
            return
        error = self._member_error(group, member_id, req.group_instance_id)
        if error is not None or group.is_in(EMPTY, DEAD):
            respond(join_response(error or ErrorCode.unknown_member_id, member_id))
            return
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        unchanged = member.matches(req.protocols)
        if group.is_in(COMPLETING_REBALANCE) and unchanged:
            respond(self._join_result(group, member))  # the member lost our answer: repeat it
        elif group.is_in(STABLE) and unchanged and member_id != group.leader_id:
            respond(self._join_result(group, member))
        else:
            self._update_member(group, member, req, respond, now_ms)

    def _member_error(self, group: Group, member_id: str, instance_id: str | None) -> ErrorCode | None:
        """UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID for a request naming a member, else None."""
        if instance_id is not None:
            known = group.static_members.get(instance_id)
            if known is not None and known != member_id:
                return ErrorCode.fenced_instance_id
        if member_id not in group.members:
            return ErrorCode.unknown_member_id
        return None

    def _join_result(self, group: Group, member: Member, skip_assignment: bool = False) -> dict:
        members = list(group.members.values()) if member.member_id == group.leader_id else []
        return join_response(ErrorCode.none, member.member_id, group, members, skip_assignment)

    def _add_member(self, group: Group, member_id: str, req: JoinRequest, respond: Respond, now_ms: int) -> None:
        member = Member(member_id, req.group_instance_id, req.client_id, req.client_host, req.rebalance_timeout_ms,
                        req.session_timeout_ms, req.protocol_type, list(req.protocols),
                        session_deadline_ms=now_ms + req.session_timeout_ms, awaiting_join=respond, is_new=True)
        group.members[member_id] = member
        if req.group_instance_id is not None:
            group.static_members[req.group_instance_id] = member_id
        if not group.protocol_type:
            group.protocol_type = req.protocol_type
        group.new_member_added = True
        self._rebalance(group, now_ms)

    def _update_member(self, group: Group, member: Member, req: JoinRequest, respond: Respond, now_ms: int) -> None:
        if member.awaiting_join is not None and member.awaiting_join is not respond:
            # A second JoinGroup replaces the first (the client gave up on it); answering the
            # first with REBALANCE_IN_PROGRESS keeps the member id should it still be read.
            member.awaiting_join(join_response(ErrorCode.rebalance_in_progress, member.member_id))
        member.protocols = list(req.protocols)
        member.rebalance_timeout_ms, member.session_timeout_ms = req.rebalance_timeout_ms, req.session_timeout_ms
        member.client_id, member.client_host = req.client_id, req.client_host
        member.awaiting_join = respond
        self._rebalance(group, now_ms)

    def _replace_static_member(self, group: Group, old_id: str, new_id: str, req: JoinRequest,
                               respond: Respond, now_ms: int) -> None:
        old = group.members.pop(old_id)
        for waiting in (old.awaiting_join, old.awaiting_sync):
            if waiting is not None:
                waiting(join_response(ErrorCode.fenced_instance_id, old_id) if waiting is old.awaiting_join
                        else sync_response(ErrorCode.fenced_instance_id))
        old.awaiting_join = old.awaiting_sync = None
        old.member_id = new_id
        group.members[new_id] = old
        group.static_members[req.group_instance_id] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        old.session_deadline_ms = now_ms + req.session_timeout_ms
        if group.is_in(STABLE) and old.matches(req.protocols):
            # Same subscription: hand back the current generation without a rebalance (KIP-345).
            self._store_quietly(group, now_ms)
            respond(self._join_result(group, old, skip_assignment=new_id == group.leader_id))
        else:
            self._update_member(group, old, req, respond, now_ms)

    # --- rebalance phases -----------------------------------------------------------------
    def _rebalance(self, group: Group, now_ms: int) -> None:
        """Enter (or stay in) the join phase."""
        if group.is_in(PREPARING_REBALANCE):
            return
        if group.is_in(COMPLETING_REBALANCE):
            self._answer_syncs(group, ErrorCode.rebalance_in_progress)
        initial = group.is_in(EMPTY)
        group.transition_to(PREPARING_REBALANCE, now_ms)
        timeout_ms = max((m.rebalance_timeout_ms for m in group.members.values()), default=0)
        if initial:
            delay_ms = min(self.initial_rebalance_delay_ms, timeout_ms)
            group.initial_delay_ms = max(0, timeout_ms - delay_ms)
            group.in_initial_delay = True
            group.new_member_added = False
            group.rebalance_deadline_ms = now_ms + delay_ms
        else:
            group.in_initial_delay = False
            group.rebalance_deadline_ms = now_ms + timeout_ms

    def _maybe_complete_join(self, group: Group, now_ms: int) -> None:
        if not group.is_in(PREPARING_REBALANCE):
            return
        if now_ms >= group.rebalance_deadline_ms:
            if group.in_initial_delay and group.new_member_added and group.initial_delay_ms > 0:
                extension_ms = min(self.initial_rebalance_delay_ms, group.initial_delay_ms)
                group.initial_delay_ms -= extension_ms
                group.new_member_added = False
                group.rebalance_deadline_ms = now_ms + extension_ms
                return
            self._complete_join(group, now_ms)
        elif not group.in_initial_delay and group.all_members_joined():
            self._complete_join(group, now_ms)

    def _complete_join(self, group: Group, now_ms: int) -> None:
        for member in [m for m in group.members.values() if m.awaiting_join is None]:
            self._remove_member(group, member)
        group.generation_id += 1
        self.core.metrics.rebalances += 1
        if not group.members:
            group.protocol_name, group.leader_id = None, None
            group.transition_to(EMPTY, now_ms)
            self._store_quietly(group, now_ms)
            return
        group.protocol_name = group.select_protocol()
        group.leader_id = group.choose_leader()
        group.transition_to(COMPLETING_REBALANCE, now_ms)
        group.rebalance_deadline_ms = now_ms + max(m.rebalance_timeout_ms for m in group.members.values())
        for member in list(group.members.values()):
            respond, member.awaiting_join = member.awaiting_join, None
            member.assignment = b""
            member.is_new = False
            member.session_deadline_ms = now_ms + member.session_timeout_ms
            respond(self._join_result(group, member))

    def _store_quietly(self, group: Group, now_ms: int) -> None:
        # Memory stays authoritative while this broker coordinates; a failed write only means
        # a restart brings back the previous generation, whose members then rejoin.
        try:
            self.store_group(group, now_ms)
        except CoordinatorError:
            pass

    def _answer_syncs(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            respond, member.awaiting_sync = member.awaiting_sync, None
            if respond is not None:
                assignment = member.assignment
                respond(sync_response(error, group, assignment))

    def _remove_member(self, group: Group, member: Member) -> None:
        group.members.pop(member.member_id, None)
        if member.group_instance_id is not None and group.static_members.get(member.group_instance_id) == member.member_id:
            del group.static_members[member.group_instance_id]
        if member.awaiting_join is not None:
            member.awaiting_join(join_response(ErrorCode.unknown_member_id, member.member_id))
        if member.awaiting_sync is not None:
            member.awaiting_sync(sync_response(ErrorCode.unknown_member_id))
        member.awaiting_join = member.awaiting_sync = None
        if group.leader_id == member.member_id:
            group.leader_id = None

    def _members_left(self, group: Group, now_ms: int) -> None:
        """After removals: rebalance a settled group, or finish a join phase now complete."""
        if group.is_in(STABLE, COMPLETING_REBALANCE):
            self._rebalance(group, now_ms)
        self._maybe_complete_join(group, now_ms)

    # --- SyncGroup ------------------------------------------------------------------------
    def sync_group(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                   protocol_type: str | None, protocol_name: str | None, assignments: dict[str, bytes],
                   respond: Respond, now_ms: int) -> None:
        try:
            group = self.group_for(group_id, now_ms)
        except CoordinatorError as error:
            respond(sync_response(error.error_code))
            return
        error = self._sync_error(group, generation_id, member_id, instance_id, protocol_type, protocol_name)
        if error is not None:
            respond(sync_response(error))
            return
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.is_in(STABLE):
            respond(sync_response(ErrorCode.none, group, member.assignment))
            return
        member.awaiting_sync = respond
        if member_id == group.leader_id:
            self._complete_sync(group, assignments, now_ms)

    def _sync_error(self, group, generation_id, member_id, instance_id, protocol_type, protocol_name):
        if group is None:
            return ErrorCode.unknown_member_id
        if group.is_in(DEAD):
            return ErrorCode.coordinator_not_available
        error = self._member_error(group, member_id, instance_id)
        if error is not None:
            return error
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        if (protocol_type is not None and protocol_type != group.protocol_type) or \
                (protocol_name is not None and protocol_name != group.protocol_name):
            return ErrorCode.inconsistent_group_protocol
        if group.is_in(EMPTY):
            return ErrorCode.unknown_member_id
        if group.is_in(PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return None

    def _complete_sync(self, group: Group, assignments: dict[str, bytes], now_ms: int) -> None:
        for member in group.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        try:
            self.store_group(group, now_ms)
        except CoordinatorError as error:
            for member in group.members.values():
                member.assignment = b""
            self._answer_syncs(group, error.error_code)
            self._rebalance(group, now_ms)
            return
        group.transition_to(STABLE, now_ms)
        self._answer_syncs(group, ErrorCode.none)

    # --- Heartbeat and LeaveGroup ---------------------------------------------------------
    def heartbeat(self, group_id: str, generation_id: int, member_id: str, instance_id: str | None,
                  now_ms: int) -> ErrorCode:
        try:
            group = self.group_for(group_id, now_ms)
        except CoordinatorError as error:
            return error.error_code
        if group is None:
            return ErrorCode.unknown_member_id
        if group.is_in(DEAD):
            return ErrorCode.coordinator_not_available
        error = self._member_error(group, member_id, instance_id)
        if error is not None or group.is_in(EMPTY):
            return error or ErrorCode.unknown_member_id
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        member = group.members[member_id]
        member.session_deadline_ms = now_ms + member.session_timeout_ms
        if group.is_in(PREPARING_REBALANCE):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave_group(self, group_id: str, identities: list[tuple[str, str | None]],
                    now_ms: int) -> tuple[ErrorCode, list[ErrorCode]]:
        """(group-level error, one error per (member_id, group_instance_id) leaving)."""
        try:
            group = self.group_for(group_id, now_ms)
        except CoordinatorError as error:
            return error.error_code, [error.error_code] * len(identities)
        if group is None:
            return ErrorCode.none, [ErrorCode.unknown_member_id] * len(identities)
        if group.is_in(DEAD):
            return ErrorCode.coordinator_not_available, [ErrorCode.coordinator_not_available] * len(identities)
        errors = [self._leave_one(group, member_id, instance_id) for member_id, instance_id in identities]
        if ErrorCode.none in errors:
            self._members_left(group, now_ms)
        return ErrorCode.none, errors

    def _leave_one(self, group: Group, member_id: str, instance_id: str | None) -> ErrorCode:
        if instance_id is not None:
            known = group.static_members.get(instance_id)
            if known is None:
                return ErrorCode.unknown_member_id
            if member_id and member_id != known:
                return ErrorCode.fenced_instance_id
            member_id = known
        if member_id in group.pending_members:
            del group.pending_members[member_id]
            return ErrorCode.none
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        self._remove_member(group, member)
        return ErrorCode.none

    # --- time -----------------------------------------------------------------------------
    def expire_sessions(self, group: Group, now_ms: int) -> None:
        expired = [m for m in group.members.values() if not self._keep_alive(m, now_ms)]
        for member in expired:
            log.info("Group %s: member %s (client %s, %s) has not heartbeated within its session "
                     "timeout of %d ms; removing it", group.group_id, member.member_id, member.client_id,
                     member.client_host, member.session_timeout_ms)
            self._remove_member(group, member)
        stale = [mid for mid, deadline in group.pending_members.items() if deadline <= now_ms]
        for member_id in stale:
            del group.pending_members[member_id]
        if expired or stale:
            self._members_left(group, now_ms)
        self._maybe_complete_join(group, now_ms)
        if group.is_in(COMPLETING_REBALANCE) and now_ms >= group.rebalance_deadline_ms:
            # The leader never sent its assignment: drop members that did not sync and start over.
            for member in [m for m in group.members.values() if m.awaiting_sync is None]:
                self._remove_member(group, member)
            self._rebalance(group, now_ms)
            self._maybe_complete_join(group, now_ms)

    @staticmethod
    def next_group_deadline(group: Group) -> int | None:
        """The earliest time expire_sessions would change `group` (None: nothing pending) —
        the same rules as _keep_alive and the rebalance phases, as deadlines."""
        if group.is_in(DEAD):
            return None
        deadlines = list(group.pending_members.values())
        for member in group.members.values():
            if member.awaiting_join is not None:
                if member.is_new:
                    deadlines.append(member.session_deadline_ms - member.session_timeout_ms + NEW_MEMBER_JOIN_TIMEOUT_MS)
            elif member.awaiting_sync is None:
                deadlines.append(member.session_deadline_ms)
        if group.is_in(PREPARING_REBALANCE) or group.is_in(COMPLETING_REBALANCE):
            deadlines.append(group.rebalance_deadline_ms)
        return min(deadlines) if deadlines else None

    @staticmethod
    def _keep_alive(member: Member, now_ms: int) -> bool:
        if member.awaiting_join is not None:
            return not member.is_new or member.session_deadline_ms - member.session_timeout_ms + \
                NEW_MEMBER_JOIN_TIMEOUT_MS > now_ms
        if member.awaiting_sync is not None:
            return True
        return member.session_deadline_ms > now_ms
