"""The KIP-848 consumer group coordinator: ConsumerGroupHeartbeat, session and revocation timeouts.

Theory of operation. Beside the classic groups (coordinator.py) this coordinator owns the
groups of type `consumer` whose `__consumer_offsets` partition this broker leads. A member
heartbeats (ConsumerGroupHeartbeat) with its member epoch, its subscription (topic names or an
RE2/J regex) and the partitions it owns; the coordinator answers with the member's epoch and,
when it changed, the partitions the member may own now. One heartbeat runs these steps:

1. Validate the request (Kafka's INVALID_REQUEST messages, UNSUPPORTED_ASSIGNOR,
   INVALID_REGULAR_EXPRESSION), find or create the group (an empty classic group converts,
   as `group.consumer.migration.policy` allows) and the member (dynamic or static: a new
   member, a static member replacing one that left with epoch -2, or a known member whose
   epoch must match — FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
   UNRELEASED_INSTANCE_ID otherwise).
2. If the member's subscription or the subscribed topics' metadata changed, bump the group
   epoch; if the group epoch is ahead of the target assignment epoch, run the group's server
   assignor (assignors.py) over all members: a new target assignment at the group epoch.
3. Reconcile the member towards its target (reconciliation.py): revoke first, then assign
   what no one else owns.

Each step yields records (consumer_records.py). They are appended to the group's partition as
one batch, replayed into the group (consumer_group.py: memory equals the log), and the client
is answered once the batch is replicated (`core.after_replicated`). Other members learn of a
new target assignment on their own next heartbeat, so one heartbeat does work proportional to
its member, except when the assignor runs.

Liveness. A member's session restarts on each heartbeat; a member that does not heartbeat
within the group's session timeout is fenced (removed, group epoch bumped). A member asked to
revoke partitions must do so within its rebalance timeout or is fenced too. Deadlines live in
a heap read by `next_deadline_ms` / `run_deadlines` (the core's timer), so they fire on time.
A static member that leaves with epoch -2 keeps its partitions until its session expires, so a
restart within the session timeout gets them back without a rebalance.

On a cluster the coordinator of a group is the leader of its offsets partition: a new leader
replays the partition (`load_partition`) and the members' sessions restart there; records
appended but not yet replicated are answered only once replicated, and a leader that loses
the partition unloads its groups (answers NOT_COORDINATOR), so clients move to the new one.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import struct
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.coordinator import assignors
from moldau.coordinator import consumer_records as cr
from moldau.coordinator import offsets_topic as topic
from moldau.coordinator import records as rec
from moldau.coordinator.consumer_config import TYPE_GROUP, ConsumerGroupSettings
from moldau.coordinator.consumer_group import ConsumerGroup, ConsumerMember
from moldau.coordinator.offsets_topic import CoordinatorError, _coordinator_error
from moldau.coordinator.reconciliation import UNREVOKED_PARTITIONS, CurrentAssignment, owns_subset, reconcile
from moldau.coordinator.regex import RegexError, compile_regex
from moldau.coordinator.state import DEAD

log = logging.getLogger("moldau.group")

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

Respond = Callable[[dict], None]
Record = tuple[cr.Key, "cr.Value | None"]


@dataclass(slots=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: cr.Assignment | None = None  # None: not sent (unchanged since the last heartbeat)
    client_id: str = ""
    client_host: str = ""
    version: int = 1


class HeartbeatError(CoordinatorError):
    pass


def heartbeat_response(error: ErrorCode, message: str | None = None, member_id: str | None = None,
                       member_epoch: int = 0, heartbeat_interval_ms: int = 0,
                       assignment: cr.Assignment | None = None) -> dict:
    return {"throttle_time": 0, "error_code": error, "error_message": message, "member_id": member_id,
            "member_epoch": member_epoch, "heartbeat_interval": heartbeat_interval_ms,
            "assignment": None if assignment is None else {"topic_partitions": [
                {"topic_id": uuid.UUID(t), "partitions": sorted(assignment[t])} for t in sorted(assignment)]}}


class ConsumerGroupCoordinator:
    def __init__(self, core: Any, classic: Any, settings: ConsumerGroupSettings):
        self.core = core
        self.classic = classic  # the GroupCoordinator: routing, partitions, offsets
        self.settings = settings
        self.groups: dict[str, ConsumerGroup] = {}
        self._deadlines: list[tuple[int, str, str]] = []  # (deadline_ms, group_id, member_id), lazily pruned
        self._regex_refreshed_ms: dict[str, int] = {}

    # --- routing and loading ----------------------------------------------------------
    def group_for(self, group_id: str, now_ms: int) -> ConsumerGroup | None:
        """The consumer group if this broker coordinates it (raises NOT_COORDINATOR otherwise)."""
        self.classic._offsets_partition(group_id, now_ms)
        return self.groups.get(group_id)

    def load_partition(self, index: int, records: list[tuple[bytes, bytes | None]], now_ms: int) -> None:
        """Rebuild the consumer groups of one offsets partition from its records (called by the
        classic coordinator's load, after it folded the offsets); restart every session."""
        self.unload_partition(index)
        loaded: dict[str, ConsumerGroup] = {}
        for key_bytes, value_bytes in records:
            key = cr.decode_key(key_bytes)
            value = None if value_bytes is None else cr.decode_value(key.record_type, value_bytes)
            loaded.setdefault(key.group_id, ConsumerGroup(key.group_id, state_timestamp_ms=now_ms)).replay(key, value)
        for group_id in sorted(loaded):
            group = loaded[group_id]
            if not group.exists:
                continue
            shell = self.classic.groups.pop(group_id, None)  # the offsets the classic replay folded
            if shell is not None:
                group.offsets = shell.offsets
            self.groups[group_id] = group
            session_ms, _ = self._timings(group_id)
            for member in group.members.values():
                self._schedule_session(group, member, now_ms + session_ms)
            group.state = group.derive_state()

    def unload_partition(self, index: int) -> None:
        for group_id in [g for g in sorted(self.groups) if self.classic.partition_of(g) == index]:
            del self.groups[group_id]

    def _timings(self, group_id: str) -> tuple[int, int]:
        return self.settings.effective(self.core.image.configs.get((TYPE_GROUP, group_id), {}))

    # --- ConsumerGroupHeartbeat ----------------------------------------------------------
    def heartbeat(self, req: HeartbeatRequest, respond: Respond, now_ms: int) -> None:
        try:
            self._validate(req)
            partition = self.classic._offsets_partition(req.group_id, now_ms)
            if req.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                plan = self._leave(req)
            else:
                plan = self._join_or_heartbeat(req, now_ms)
        except CoordinatorError as error:
            message = str(error) if str(error) != error.error_code.name else None
            respond(heartbeat_response(error.error_code, message, req.member_id or None))
            return
        response = plan.response
        self._write(plan, partition, now_ms, lambda code: respond(
            response if code == ErrorCode.none else heartbeat_response(_coordinator_error(code), None, req.member_id)))

    def _validate(self, req: HeartbeatRequest) -> None:
        if "consumer" not in self.settings.rebalance_protocols:
            raise HeartbeatError(ErrorCode.unsupported_version, "The consumer rebalance protocol is disabled.")
        if not req.group_id:
            raise HeartbeatError(ErrorCode.invalid_request, "GroupId can't be empty.")
        if req.instance_id is not None and not req.instance_id:
            raise HeartbeatError(ErrorCode.invalid_request, "InstanceId can't be empty.")
        if req.rack_id is not None and not req.rack_id:
            raise HeartbeatError(ErrorCode.invalid_request, "RackId can't be empty.")
        if not req.member_id and (req.version >= 1 or req.member_epoch != 0):
            raise HeartbeatError(ErrorCode.invalid_request, "MemberId can't be empty.")
        if req.member_epoch == 0:
            if req.rebalance_timeout_ms == -1:
                raise HeartbeatError(ErrorCode.invalid_request, "RebalanceTimeoutMs must be provided in first request.")
            if req.owned:
                raise HeartbeatError(ErrorCode.invalid_request, "TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and req.subscribed_topic_regex is None:
                raise HeartbeatError(ErrorCode.invalid_request,
                                     "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH and req.instance_id is None:
            raise HeartbeatError(ErrorCode.invalid_request, "InstanceId can't be null.")
        elif req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise HeartbeatError(ErrorCode.invalid_request, f"MemberEpoch {req.member_epoch} is invalid.")
        names = req.subscribed_topic_names
        if names is not None and len(names) > limits.consumer_group_subscribed_topics_max:
            raise HeartbeatError(ErrorCode.invalid_request, f"SubscribedTopicNames has more than "
                                 f"{limits.consumer_group_subscribed_topics_max} topics.")
        if req.server_assignor is not None and req.server_assignor not in self.settings.assignors:
            raise HeartbeatError(ErrorCode.unsupported_assignor, f"ServerAssignor {req.server_assignor} is not "
                                 f"supported. Supported assignors: {', '.join(self.settings.assignors)}.")
        if req.subscribed_topic_regex:
            try:
                compile_regex(req.subscribed_topic_regex)
            except RegexError as error:
                raise HeartbeatError(ErrorCode.invalid_regular_expression,
                                     f"SubscribedTopicRegex `{req.subscribed_topic_regex}` is not a valid regular "
                                     f"expression: {error}.") from None

    def _join_or_heartbeat(self, req: HeartbeatRequest, now_ms: int) -> "_Plan":
        plan = self._group_for_heartbeat(req, now_ms)
        group = plan.group
        member, replaced = self._member_for_heartbeat(group, req)
        plan.replaced = replaced
        if replaced is not None:
            plan.records += _member_tombstones(group.group_id, replaced.member_id)
            plan.targets[member.member_id] = plan.targets.pop(replaced.member_id, {})
        updated = self._updated_member(member, req)
        plan.updated = updated
        known = member.member_id in group.members
        plan.steady = known and replaced is None and not _subscription_changed(member, updated)
        if not known or updated.metadata_value() != member.metadata_value():
            plan.records.append((cr.Key(cr.MEMBER_METADATA, group.group_id, updated.member_id),
                                 updated.metadata_value()))
        plan.records += self._refresh_regexes(group, plan, now_ms)
        group_epoch, metadata_hash = self._group_epoch(plan, member if known else replaced)
        if group_epoch != group.group_epoch or metadata_hash != group.metadata_hash or not group.exists:
            plan.records.append((cr.Key(cr.GROUP_METADATA, group.group_id),
                                 cr.GroupMetadataValue(group_epoch, metadata_hash)))
        target_epoch = group.target_assignment_epoch
        if group_epoch > target_epoch:
            plan.records += self._assign(plan, group_epoch)
            target_epoch = group_epoch
        elif replaced is not None:
            plan.records.append((cr.Key(cr.TARGET_ASSIGNMENT_MEMBER, group.group_id, updated.member_id),
                                 cr.TargetAssignmentMemberValue(plan.targets[updated.member_id])))
        mine = {updated.member_id} | ({replaced.member_id} if replaced is not None else set())
        current = reconcile(updated.current(), plan.targets.get(updated.member_id, {}), target_epoch, req.owned,
                            lambda t, p: group.owners.get((t, p), updated.member_id) not in mine)
        if not known or current != member.current():
            plan.records.append((cr.Key(cr.CURRENT_MEMBER_ASSIGNMENT, group.group_id, updated.member_id),
                                 updated.current_value(current)))
        session_ms, heartbeat_ms = self._timings(group.group_id)
        full = req.member_epoch == 0 or (req.rebalance_timeout_ms != -1 and req.owned is not None and
                                         (req.subscribed_topic_names is not None or req.subscribed_topic_regex is not None))
        changed = current.assigned != member.assigned or current.member_epoch != member.member_epoch
        plan.response = heartbeat_response(ErrorCode.none, None, updated.member_id, current.member_epoch, heartbeat_ms,
                                           current.assigned if full or changed or not known else None)
        revoking = current.state == UNREVOKED_PARTITIONS
        plan.after = (updated.member_id, now_ms + session_ms,
                      now_ms + max(updated.rebalance_timeout_ms, 0) if revoking else None)
        return plan

    def _group_for_heartbeat(self, req: HeartbeatRequest, now_ms: int) -> "_Plan":
        group = self.groups.get(req.group_id)
        if group is not None:
            return _Plan(group, dict(group.target))
        if req.member_epoch != 0:
            raise HeartbeatError(ErrorCode.group_id_not_found, f"Consumer group {req.group_id} not found.")
        plan = _Plan(ConsumerGroup(req.group_id, state_timestamp_ms=now_ms), {})
        classic = self.classic.groups.get(req.group_id)
        if classic is not None and not classic.is_in(DEAD):
            if classic.members or classic.pending_members or not self.settings.allows("upgrade"):
                raise HeartbeatError(ErrorCode.group_id_not_found, f"Group {req.group_id} is not a consumer group.")
            # An empty classic group converts: its metadata goes, its committed offsets stay.
            plan.records.append((rec.GroupKey(req.group_id), None))
            log.info("Group %s: converting the empty classic group to a consumer group", req.group_id)
        return plan

    def _member_for_heartbeat(self, group: ConsumerGroup,
                              req: HeartbeatRequest) -> tuple[ConsumerMember, ConsumerMember | None]:
        """(the member, the static member it replaces or None); raises the fencing errors."""
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                if req.member_epoch != 0:
                    raise HeartbeatError(ErrorCode.unknown_member_id, f"Member {req.member_id} is not a member of "
                                         f"group {group.group_id}.")
                return self._new_member(group, req.member_id), None
            _check_epoch(member, req)
            return member, None
        existing_id = group.static_members.get(req.instance_id)
        existing = group.members.get(existing_id) if existing_id is not None else None
        if req.member_epoch != 0:
            if existing is None:
                raise HeartbeatError(ErrorCode.unknown_member_id, f"Instance id {req.instance_id} is unknown.")
            if existing_id != req.member_id:
                raise HeartbeatError(ErrorCode.fenced_instance_id, f"Static member {req.member_id} with instance id "
                                     f"{req.instance_id} was fenced by member {existing_id}.")
            _check_epoch(existing, req)
            return existing, None
        if existing is None:
            return self._new_member(group, req.member_id), None
        if existing_id == req.member_id:
            return existing, None  # rejoins with epoch 0 (KIP-848: a fenced member rejoins as it is)
        if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise HeartbeatError(ErrorCode.unreleased_instance_id, f"Static member {existing_id} with instance id "
                                 f"{req.instance_id} is not released yet.")
        # Back under a new member id: takes the old member's place and partitions, no rebalance.
        new = ConsumerMember(req.member_id, **{f: getattr(existing, f) for f in (
            "instance_id", "rack_id", "client_id", "client_host", "subscribed_topic_names", "subscribed_topic_regex",
            "rebalance_timeout_ms", "server_assignor", "state", "assigned", "pending_revocation")})
        return new, existing

    def _new_member(self, group: ConsumerGroup, member_id: str) -> ConsumerMember:
        capacity = min(self.settings.max_size, limits.group_members_max)
        if len(group.members) >= capacity:
            raise HeartbeatError(ErrorCode.group_max_size_reached,
                                 f"The consumer group has reached its maximum capacity of {capacity} members.")
        return ConsumerMember(member_id)

    @staticmethod
    def _updated_member(member: ConsumerMember, req: HeartbeatRequest) -> ConsumerMember:
        updated = ConsumerMember(**{f: getattr(member, f) for f in ConsumerMember.__slots__})
        if req.instance_id is not None:
            updated.instance_id = req.instance_id
        if req.rack_id is not None:
            updated.rack_id = req.rack_id
        if req.rebalance_timeout_ms != -1:
            updated.rebalance_timeout_ms = req.rebalance_timeout_ms
        if req.subscribed_topic_names is not None:
            updated.subscribed_topic_names = tuple(sorted(set(req.subscribed_topic_names)))
        if req.subscribed_topic_regex is not None:
            updated.subscribed_topic_regex = req.subscribed_topic_regex or None
        if req.server_assignor is not None:
            updated.server_assignor = req.server_assignor
        updated.client_id, updated.client_host = req.client_id, req.client_host
        if updated.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            updated.member_epoch = 0  # a static member back after leaving with -2: reconciles from its partitions
        return updated

    # --- subscriptions, group epoch, target assignment --------------------------------------
    def _refresh_regexes(self, group: ConsumerGroup, plan: "_Plan", now_ms: int) -> list[Record]:
        """(Re)resolve the group's regexes against the topics that exist now: a regex new to the
        group at once, known ones when the metadata changed (at most once a second per group)."""
        if plan.steady:
            wanted = set(self._group_view(group)[0])
        else:
            wanted = {m.subscribed_topic_regex for m in plan.members() if m.subscribed_topic_regex}
        if not wanted and not group.regexes:
            return []
        records: list[Record] = []
        version = self.core.image.offset
        last = self._regex_refreshed_ms.get(group.group_id)
        due = last is None or now_ms - last >= limits.consumer_group_regex_refresh_ms
        for regex in sorted(wanted):
            resolved = group.regexes.get(regex)
            if resolved is not None and (resolved.version == version or not due):
                continue
            topics = self._resolve(regex)
            if resolved is None or topics != resolved.topics:
                records.append((cr.Key(cr.REGULAR_EXPRESSION, group.group_id, regex),
                                cr.RegularExpressionValue(topics, version, now_ms)))
            else:
                resolved.version = version  # same topics: remember we looked (memory only)
        for regex in sorted(set(group.regexes) - wanted):
            records.append((cr.Key(cr.REGULAR_EXPRESSION, group.group_id, regex), None))
        if wanted and due:
            self._regex_refreshed_ms[group.group_id] = now_ms
        return records

    def _resolve(self, regex: str) -> tuple[str, ...]:
        pattern = compile_regex(regex)
        return tuple(name for name in sorted(self.core.image.topics_by_name)
                     if name not in INTERNAL_TOPICS and pattern.fullmatch(name) is not None)

    @staticmethod
    def _subscribed_topics(member: ConsumerMember, regexes: dict[str, tuple[str, ...]]) -> set[str]:
        topics = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex:
            topics.update(regexes.get(member.subscribed_topic_regex, ()))
        return topics

    def _group_epoch(self, plan: "_Plan", old: ConsumerMember | None) -> tuple[int, int]:
        """The group epoch after this heartbeat: bumped when a member joined, a subscription (or
        assignor, or rack) changed, or the subscribed topics' metadata changed (its hash)."""
        group, updated = plan.group, plan.updated
        regex_records = any(isinstance(k, cr.Key) and k.record_type == cr.REGULAR_EXPRESSION for k, _ in plan.records)
        if plan.steady and not regex_records:
            metadata_hash = self._group_view(group)[2]  # nothing changed: the cached union's hash
        else:
            regexes = plan.regex_topics()
            topics: set[str] = set()
            for member in plan.members():
                topics |= self._subscribed_topics(member, regexes)
            metadata_hash = self._metadata_hash(topics)
        changed = old is None or _subscription_changed(old, updated)
        if changed or metadata_hash != group.metadata_hash or not group.exists:
            return group.group_epoch + 1, metadata_hash
        return group.group_epoch, metadata_hash

    def _group_view(self, group: ConsumerGroup) -> tuple[frozenset[str], frozenset[str], int]:
        """(regexes in use, subscribed topics, their metadata hash) of the group as replayed;
        cached until a subscription record is replayed or the metadata image moves, so a
        heartbeat that changes nothing costs O(1) in the group's size."""
        key = (group.subscription_version, self.core.image.offset)
        if group.derived is None or group.derived[0] != key:
            regexes = {regex: resolved.topics for regex, resolved in group.regexes.items()}
            topics: set[str] = set()
            in_use: set[str] = set()
            for member in group.members.values():
                topics |= self._subscribed_topics(member, regexes)
                if member.subscribed_topic_regex:
                    in_use.add(member.subscribed_topic_regex)
            group.derived = (key, frozenset(in_use), frozenset(topics), self._metadata_hash(topics))
        return group.derived[1], group.derived[2], group.derived[3]

    def _metadata_hash(self, topics: set[str]) -> int:
        """A 64-bit hash of the subscribed topics' names, ids and partition counts (0 for none):
        a change of any of them bumps the group epoch (Kafka 4.1's metadata hash plays this role;
        its exact function is Kafka's own, this one is only ever compared with itself)."""
        digest = hashlib.blake2b(digest_size=8)
        found = False
        for name in sorted(topics):
            image = self.core.image.topic(name)
            if image is None:
                continue
            found = True
            digest.update(f"{name}\0{image.topic_id}\0{len(image.partitions)}\n".encode())
        if not found:
            return 0
        return struct.unpack(">q", digest.digest())[0] or 1

    def _assign(self, plan: "_Plan", group_epoch: int) -> list[Record]:
        """Run the group's assignor over all members: the target assignment of `group_epoch`."""
        group = plan.group
        regexes = plan.regex_topics()
        members = plan.members()
        specs, counts = [], {}
        for member in members:
            topic_ids = set()
            for name in sorted(self._subscribed_topics(member, regexes)):
                image = self.core.image.topic(name)
                if image is not None:
                    topic_ids.add(image.topic_id)
                    counts[image.topic_id] = len(image.partitions)
            specs.append(assignors.MemberSpec(member.member_id, frozenset(topic_ids),
                                              plan.targets.get(member.member_id, {})))
        name = ConsumerGroup(group.group_id, members={m.member_id: m for m in members}).preferred_assignor(
            self.settings.assignors[0])
        target = assignors.assign(name, specs, counts)
        records: list[Record] = []
        for member_id in sorted(target):
            if target[member_id] != group.target.get(member_id):
                records.append((cr.Key(cr.TARGET_ASSIGNMENT_MEMBER, group.group_id, member_id),
                                cr.TargetAssignmentMemberValue(target[member_id])))
        records.append((cr.Key(cr.TARGET_ASSIGNMENT_METADATA, group.group_id),
                        cr.TargetAssignmentMetadataValue(group_epoch)))
        plan.targets = target
        log.info("Consumer group %s: assignor %s computed the target assignment of epoch %d for %d member(s)",
                 group.group_id, name, group_epoch, len(members))
        return records

    # --- leaving and fencing -------------------------------------------------------------
    def _leave(self, req: HeartbeatRequest) -> "_Plan":
        group = self.groups.get(req.group_id)
        if group is None:
            raise HeartbeatError(ErrorCode.group_id_not_found, f"Consumer group {req.group_id} not found.")
        if req.instance_id is None:
            member = group.members.get(req.member_id)
            if member is None:
                raise HeartbeatError(ErrorCode.unknown_member_id, f"Member {req.member_id} is not a member of "
                                     f"group {group.group_id}.")
        else:
            member = group.members.get(group.static_members.get(req.instance_id, ""))
            if member is None:
                raise HeartbeatError(ErrorCode.unknown_member_id, f"Instance id {req.instance_id} is unknown.")
            if member.member_id != req.member_id:
                raise HeartbeatError(ErrorCode.fenced_instance_id, f"Static member {req.member_id} with instance "
                                     f"id {req.instance_id} was fenced by member {member.member_id}.")
        _, heartbeat_ms = self._timings(group.group_id)
        plan = _Plan(group, dict(group.target))
        plan.response = heartbeat_response(ErrorCode.none, None, req.member_id, req.member_epoch, heartbeat_ms)
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # Leaves for now: keeps its partitions until its session expires or it rejoins.
            left = CurrentAssignment(LEAVE_GROUP_STATIC_MEMBER_EPOCH, member.member_epoch, member.state,
                                     member.assigned, member.pending_revocation)
            plan.records.append((cr.Key(cr.CURRENT_MEMBER_ASSIGNMENT, group.group_id, member.member_id),
                                 member.current_value(left)))
            log.info("Consumer group %s: static member %s (%s) left for now", group.group_id, member.member_id,
                     member.instance_id)
            return plan
        log.info("Consumer group %s: member %s left", group.group_id, member.member_id)
        plan.records += self._removal_records(group, member)
        return plan

    def _removal_records(self, group: ConsumerGroup, member: ConsumerMember) -> list[Record]:
        """Tombstones of a member, and the group epoch bump its departure causes (the others get
        its partitions when their next heartbeat computes the new target assignment)."""
        records = _member_tombstones(group.group_id, member.member_id)
        remaining = [m for m in group.members.values() if m.member_id != member.member_id]
        regexes = {regex: resolved.topics for regex, resolved in group.regexes.items()}
        topics: set[str] = set()
        for other in remaining:
            topics |= self._subscribed_topics(other, regexes)
        still_used = {m.subscribed_topic_regex for m in remaining if m.subscribed_topic_regex}
        for regex in sorted(set(group.regexes) - still_used):
            records.append((cr.Key(cr.REGULAR_EXPRESSION, group.group_id, regex), None))
        records.append((cr.Key(cr.GROUP_METADATA, group.group_id),
                        cr.GroupMetadataValue(group.group_epoch + 1, self._metadata_hash(topics))))
        return records

    def fence(self, group: ConsumerGroup, member: ConsumerMember, reason: str, now_ms: int) -> None:
        """Remove a member whose session or revocation time ran out (nobody awaits an answer)."""
        log.info("Consumer group %s: member %s fenced because %s", group.group_id, member.member_id, reason)
        try:
            partition = self.classic._offsets_partition(group.group_id, now_ms)
        except CoordinatorError:
            return
        plan = _Plan(group, dict(group.target))
        plan.records = self._removal_records(group, member)
        self._write(plan, partition, now_ms, lambda code: None)

    # --- writing ---------------------------------------------------------------------------
    def _write(self, plan: "_Plan", partition: Any, now_ms: int, done: Callable[[ErrorCode], None]) -> None:
        """Append the plan's records as one batch, replay them into memory, and call `done` once
        the batch is replicated (at once when there is nothing to write)."""
        if not plan.records:
            self._after_replay(plan, now_ms)
            done(ErrorCode.none)
            return
        encoded = [(_encode_key(k), None if v is None else cr.encode_value(v)) for k, v in plan.records]
        try:
            first_offset = topic.append(self.core, partition, encoded, now_ms)
        except CoordinatorError as error:
            code = error.error_code
            done(ErrorCode.not_leader_or_follower if code == ErrorCode.not_coordinator else code)
            return
        self._replay(plan, now_ms)
        self._after_replay(plan, now_ms)
        self.core.after_replicated(partition, first_offset + len(encoded) - 1, done)

    def _replay(self, plan: "_Plan", now_ms: int) -> None:
        group = plan.group
        for key, value in plan.records:
            if isinstance(key, rec.GroupKey):  # the classic group this one converts from
                shell = self.classic.groups.pop(group.group_id, None)
                if shell is not None:
                    group.offsets = shell.offsets
                continue
            group.replay(key, value)
        if group.exists:
            self.groups[group.group_id] = group
        else:
            self.groups.pop(group.group_id, None)
        group.refresh_state(now_ms)

    def _after_replay(self, plan: "_Plan", now_ms: int) -> None:
        if plan.after is None:
            return
        member_id, session_deadline_ms, revocation_deadline_ms = plan.after
        group = plan.group
        member = group.members.get(member_id)
        if member is None:
            return
        self._schedule_session(group, member, session_deadline_ms)
        if revocation_deadline_ms is None:
            member.revocation_deadline_ms = None
        elif member.revocation_deadline_ms is None:  # the clock starts when revocation is first asked
            member.revocation_deadline_ms = revocation_deadline_ms
            heapq.heappush(self._deadlines, (revocation_deadline_ms, group.group_id, member_id))

    def _schedule_session(self, group: ConsumerGroup, member: ConsumerMember, deadline_ms: int) -> None:
        member.session_deadline_ms = deadline_ms
        heapq.heappush(self._deadlines, (deadline_ms, group.group_id, member.member_id))

    # --- timers ------------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        while self._deadlines:
            deadline_ms, group_id, member_id = self._deadlines[0]
            if self._is_due_entry(deadline_ms, group_id, member_id):
                return deadline_ms
            heapq.heappop(self._deadlines)
        return None

    def _is_due_entry(self, deadline_ms: int, group_id: str, member_id: str) -> bool:
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if member is None:
            return False
        return deadline_ms in (member.session_deadline_ms, member.revocation_deadline_ms)

    def run_deadlines(self, now_ms: int) -> None:
        while self._deadlines and self._deadlines[0][0] <= now_ms:
            deadline_ms, group_id, member_id = heapq.heappop(self._deadlines)
            if not self._is_due_entry(deadline_ms, group_id, member_id):
                continue
            group = self.groups[group_id]
            member = group.members[member_id]
            if member.session_deadline_ms <= now_ms:
                self.fence(group, member, "its session expired", now_ms)
            elif member.revocation_deadline_ms is not None and member.revocation_deadline_ms <= now_ms \
                    and member.state == UNREVOKED_PARTITIONS:
                self.fence(group, member, "it did not revoke its partitions within its rebalance timeout", now_ms)

    def tick(self, now_ms: int) -> None:
        if self.next_deadline_ms() is not None:
            self.run_deadlines(now_ms)

    # --- offsets, admin --------------------------------------------------------------------
    def check_offset_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int, version: int,
                            partitions: list[tuple[str, int]] = ()) -> None:
        """Kafka's ConsumerGroup.validateOffsetCommit: commits from outside the group need it empty;
        a member commits at its epoch (FENCED_MEMBER_EPOCH above it). Below it, as KIP-1251
        (Kafka 4.3) allows, a commit is accepted when the member got every committed partition
        at or before the epoch it names: its epoch moved on (a heartbeat response still on the
        way) but those partitions are still its own. Kafka 4.1 answers STALE_MEMBER_EPOCH there,
        which the Java consumer's commitSync turns into a CommitFailedException mid-rebalance."""
        if member_epoch < 0 and not group.members:
            return
        member = group.members.get(member_id)
        if member is None:
            raise CoordinatorError(ErrorCode.unknown_member_id)
        if version < 9:
            raise CoordinatorError(ErrorCode.unsupported_version)
        if member_epoch > member.member_epoch:
            raise CoordinatorError(ErrorCode.fenced_member_epoch)
        if member_epoch < member.member_epoch and not self._still_owned_since(member, member_epoch, partitions):
            raise CoordinatorError(ErrorCode.stale_member_epoch)

    def _still_owned_since(self, member: ConsumerMember, member_epoch: int, partitions) -> bool:
        if not partitions or member_epoch < 0:
            return False
        for name, partition in partitions:
            image = self.core.image.topic(name)
            epoch = member.assignment_epochs.get((image.topic_id, partition)) if image is not None else None
            if epoch is None or epoch > member_epoch:
                return False
        return True

    def check_offset_fetch(self, group: ConsumerGroup, member_id: str | None, member_epoch: int) -> None:
        """A member fetches at its epoch or an earlier one (its heartbeat response may still be
        on the way; Kafka 4.1 answers STALE_MEMBER_EPOCH there, which its own 4.1 clients do not
        retry); a greater epoch is fenced."""
        if not member_id or member_epoch < 0:
            return
        member = group.members.get(member_id)
        if member is None:
            raise CoordinatorError(ErrorCode.unknown_member_id)
        if member_epoch > member.member_epoch:
            raise CoordinatorError(ErrorCode.fenced_member_epoch)

    def delete_records(self, group: ConsumerGroup) -> list[tuple[bytes, bytes | None]]:
        """Tombstones for every record of an empty group (DeleteGroups, or a conversion to classic)."""
        records = [(cr.Key(cr.REGULAR_EXPRESSION, group.group_id, regex), None) for regex in sorted(group.regexes)]
        records += [(cr.Key(cr.TARGET_ASSIGNMENT_METADATA, group.group_id), None),
                    (cr.Key(cr.GROUP_METADATA, group.group_id), None)]
        return [(_encode_key(k), None) for k, _ in records]

    def forget(self, group_id: str) -> None:
        self.groups.pop(group_id, None)
        self._regex_refreshed_ms.pop(group_id, None)

    def subscribed_topic_names(self, group: ConsumerGroup) -> set[str]:
        regexes = {regex: resolved.topics for regex, resolved in group.regexes.items()}
        topics: set[str] = set()
        for member in group.members.values():
            topics |= self._subscribed_topics(member, regexes)
        return topics

    def convert_to_classic(self, group_id: str, now_ms: int) -> tuple[ErrorCode, dict | None]:
        """A classic JoinGroup for this consumer group: an empty group converts (its records are
        tombstoned, its offsets go to the classic group), as `group.consumer.migration.policy`
        allows; (error, offsets to carry over). A group with members refuses: Moldau does not
        run classic members inside a consumer group (Kafka's online migration)."""
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, None
        if group.members or not self.settings.allows("downgrade"):
            return ErrorCode.inconsistent_group_protocol, None
        partition = self.classic._offsets_partition(group_id, now_ms)
        topic.append(self.core, partition, self.delete_records(group), now_ms)
        log.info("Group %s: converting the empty consumer group to a classic group", group_id)
        self.forget(group_id)
        return ErrorCode.none, group.offsets


def _subscription_changed(old: ConsumerMember, new: ConsumerMember) -> bool:
    """What bumps the group epoch when a known member changes it."""
    return (old.subscribed_topic_names != new.subscribed_topic_names
            or old.subscribed_topic_regex != new.subscribed_topic_regex
            or old.server_assignor != new.server_assignor or old.rack_id != new.rack_id)


def _check_epoch(member: ConsumerMember, req: HeartbeatRequest) -> None:
    """Kafka's member epoch check. Epoch 0 is a rejoin and always allowed (KIP-848; Kafka
    4.1.1 itself fenced it, KAFKA-19233); the previous epoch is allowed with a subset of the
    current partitions, since the response that moved the member on may have been lost."""
    received = req.member_epoch
    if received == 0 or received == member.member_epoch:
        return
    if received > member.member_epoch:
        raise HeartbeatError(ErrorCode.fenced_member_epoch, f"The consumer group member has a greater member epoch "
                             f"({received}) than the one known by the group coordinator ({member.member_epoch}). "
                             f"The member must abandon all its partitions and rejoin.")
    if received != member.previous_member_epoch or not owns_subset(req.owned, member.assigned):
        raise HeartbeatError(ErrorCode.fenced_member_epoch, f"The consumer group member has a smaller member epoch "
                             f"({received}) than the one known by the group coordinator ({member.member_epoch}). "
                             f"The member must abandon all its partitions and rejoin.")


def _member_tombstones(group_id: str, member_id: str) -> list[Record]:
    return [(cr.Key(cr.CURRENT_MEMBER_ASSIGNMENT, group_id, member_id), None),
            (cr.Key(cr.TARGET_ASSIGNMENT_MEMBER, group_id, member_id), None),
            (cr.Key(cr.MEMBER_METADATA, group_id, member_id), None)]


def _encode_key(key: Any) -> bytes:
    return rec.encode_key(key) if isinstance(key, rec.GroupKey) else cr.encode_key(key)


class _Plan:
    """What one heartbeat (or fencing) will write: the records, the group's target assignment
    as it will be, the member as updated, and the response to give once they are replicated."""

    def __init__(self, group: ConsumerGroup, targets: dict[str, cr.Assignment]):
        self.group = group
        self.targets = targets
        self.records: list[Record] = []
        self.updated: ConsumerMember | None = None
        self.replaced: ConsumerMember | None = None
        self.response: dict = {}
        self.after: tuple[str, int, int | None] | None = None  # (member id, session deadline, revocation deadline)
        self.steady = False  # a known member whose subscription did not change

    def members(self) -> list[ConsumerMember]:
        """The group's members once this plan is applied (the updated member in its place)."""
        gone = {self.updated.member_id} if self.updated is not None else set()
        if self.replaced is not None:
            gone.add(self.replaced.member_id)
        members = [m for m_id, m in sorted(self.group.members.items()) if m_id not in gone]
        return members + ([self.updated] if self.updated is not None else [])

    def regex_topics(self) -> dict[str, tuple[str, ...]]:
        regexes = {regex: resolved.topics for regex, resolved in self.group.regexes.items()}
        for key, value in self.records:
            if isinstance(key, cr.Key) and key.record_type == cr.REGULAR_EXPRESSION:
                if value is None:
                    regexes.pop(key.member_id, None)
                else:
                    regexes[key.member_id] = value.topics
        return regexes
