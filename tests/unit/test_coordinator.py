"""Unit tests of the group coordinator on a real BrokerCore over an in-memory file system.

Time is virtual (now_ms passed explicitly) and member ids come from a counting uuid source, so
every test is deterministic.
"""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.coordinator import offsets_topic, records
from moldau.coordinator.coordinator import OffsetCommit
from moldau.coordinator.membership import JoinRequest
from moldau.coordinator.state import COMPLETING_REBALANCE, DEAD, EMPTY, PREPARING_REBALANCE, STABLE, InvalidTransition, check_transition
from moldau.log import MemoryFileSystem

SESSION_MS = 10_000
REBALANCE_MS = 20_000


class Uuids:
    def __init__(self):
        self.count = 0

    def __call__(self) -> uuid.UUID:
        self.count += 1
        return uuid.UUID(int=self.count)


def make_core(fs=None, delay_ms: int = 0, now_ms: int = 0) -> BrokerCore:
    config = BrokerConfig(data_dir="/data", offsets_topic_num_partitions=3, group_initial_rebalance_delay_ms=delay_ms)
    core = BrokerCore(config, fs or MemoryFileSystem(), Uuids(), now_ms)
    core.controller.create_topic("t", 4, 1)
    return core


def coordinator(core):
    return core.extensions["group_coordinator"]


def join(core, now_ms, member_id="", instance=None, protocols=(("range", b"m1"),), group="g", client="c"):
    answers = []
    request = JoinRequest(group, member_id, instance, client, "/127.0.0.1", SESSION_MS, REBALANCE_MS,
                          "consumer", list(protocols), require_known_member_id=True)
    coordinator(core).join_group(request, answers.append, now_ms)
    return answers


def join_new(core, now_ms, **kwargs):
    """A dynamic member's two-step join (MEMBER_ID_REQUIRED, then rejoin with the id)."""
    first = join(core, now_ms, **kwargs)
    assert first[0]["error_code"] == ErrorCode.member_id_required
    return first[0]["member_id"], join(core, now_ms, member_id=first[0]["member_id"], **kwargs)


def sync(core, now_ms, member_id, generation, assignments=None, group="g", instance=None):
    answers = []
    coordinator(core).sync_group(group, generation, member_id, instance, None, None, assignments or {},
                                 answers.append, now_ms)
    return answers


def group_of(core, name="g"):
    return coordinator(core).groups[name]


def test_transition_table_refuses_missing_entries():
    check_transition(EMPTY, PREPARING_REBALANCE)
    check_transition(COMPLETING_REBALANCE, STABLE)
    with pytest.raises(InvalidTransition):
        check_transition(EMPTY, STABLE)
    with pytest.raises(InvalidTransition):
        check_transition(STABLE, COMPLETING_REBALANCE)
    with pytest.raises(InvalidTransition):
        check_transition(DEAD, EMPTY)


def test_java_hash_matches_kafka_partitioning():
    assert offsets_topic.java_string_hash("hello") == 99162322
    assert offsets_topic.java_string_hash("polygenelubricants") == -2147483648
    assert offsets_topic.partition_for("polygenelubricants", 50) == 0


def test_records_round_trip():
    key = records.OffsetKey("g", "t", 3)
    assert records.decode_key(records.encode_key(key)) == key
    value = records.OffsetValue(42, 7, "meta", 1000)
    assert records.decode_offset_value(records.encode_offset_value(value)) == value
    member = records.MemberValue("m-1", "i-1", "c", "/h", 300, 10, b"sub", b"asg")
    group = records.GroupValue("consumer", 5, "range", "m-1", 99, (member,))
    assert records.decode_group_value(records.encode_group_value(group)) == group
    assert records.decode_key(records.encode_key(records.GroupKey("g"))) == records.GroupKey("g")


def test_two_members_form_a_generation_and_get_their_assignments():
    core = make_core()
    a, answers_a = join_new(core, 0)
    assert answers_a[0]["error_code"] == ErrorCode.none and answers_a[0]["leader"] == a
    assert answers_a[0]["generation_id"] == 1 and answers_a[0]["protocol_name"] == "range"
    assert sync(core, 1, a, 1, {a: b"A"})[0]["assignment"] == b"A"
    assert group_of(core).state is STABLE
    b, answers_b = join_new(core, 2)
    assert answers_b == []  # held until the existing member rejoins
    assert coordinator(core).heartbeat("g", 1, a, None, 3) == ErrorCode.rebalance_in_progress
    answers_a = join(core, 4, member_id=a)
    assert answers_a[0]["generation_id"] == 2 and answers_b[0]["generation_id"] == 2
    assert [m["member_id"] for m in answers_a[0]["members"]] == [a, b]
    assert answers_b[0]["members"] == []
    waiting_b = sync(core, 5, b, 2)
    assert waiting_b == [] and group_of(core).state is COMPLETING_REBALANCE
    assert sync(core, 6, a, 2, {a: b"A2", b: b"B2"})[0]["assignment"] == b"A2"
    assert waiting_b[0]["assignment"] == b"B2" and group_of(core).state is STABLE


def test_session_expiry_removes_a_silent_member_and_rebalances():
    core = make_core()
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {a: b""})
    b, held_b = join_new(core, 0)
    join(core, 0, member_id=a)
    sync(core, 0, b, 2)
    sync(core, 0, a, 2, {})
    for now in range(1000, SESSION_MS, 1000):
        assert coordinator(core).heartbeat("g", 2, a, None, now) == ErrorCode.none
        coordinator(core).tick(now)
    coordinator(core).tick(SESSION_MS + 1)  # b never heartbeated
    group = group_of(core)
    assert list(group.members) == [a] and group.state is PREPARING_REBALANCE
    assert join(core, SESSION_MS + 2, member_id=a)[0]["generation_id"] == 3


def test_rebalance_timeout_drops_members_that_do_not_rejoin():
    core = make_core()
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {})
    b, held_b = join_new(core, 10)
    coordinator(core).heartbeat("g", 1, a, None, 5_000)
    coordinator(core).tick(REBALANCE_MS + 11)  # a never rejoined within the rebalance timeout
    assert held_b[0]["generation_id"] == 2 and held_b[0]["leader"] == b
    assert list(group_of(core).members) == [b]


def test_leave_group_rebalances_and_an_empty_group_becomes_empty():
    core = make_core()
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {})
    error, errors = coordinator(core).leave_group("g", [(a, None)], 1)
    assert (error, errors) == (ErrorCode.none, [ErrorCode.none])
    assert group_of(core).state is EMPTY and group_of(core).generation_id == 2
    assert coordinator(core).leave_group("g", [(a, None)], 2)[1] == [ErrorCode.unknown_member_id]


def test_static_member_rejoins_without_rebalance_and_fences_the_old_id():
    core = make_core()
    first = join(core, 0, instance="i1")
    a = first[0]["member_id"]
    assert first[0]["error_code"] == ErrorCode.none and a.startswith("i1-")
    sync(core, 0, a, 1, {a: b"A"})
    again = join(core, 100, instance="i1")  # restarted: no member id, same instance id
    a2 = again[0]["member_id"]
    assert a2 != a and again[0]["generation_id"] == 1 and group_of(core).state is STABLE
    assert coordinator(core).heartbeat("g", 1, a, "i1", 101) == ErrorCode.fenced_instance_id
    assert sync(core, 102, a2, 1, instance="i1")[0]["assignment"] == b"A"


def test_inconsistent_protocols_and_bad_session_timeout_are_refused():
    core = make_core()
    a, _ = join_new(core, 0)
    answer = join(core, 1, protocols=(("roundrobin", b""),))
    assert answer[0]["error_code"] == ErrorCode.inconsistent_group_protocol
    request = JoinRequest("g", "", None, "c", "/h", 10, REBALANCE_MS, "consumer", [("range", b"")], True)
    answers = []
    coordinator(core).join_group(request, answers.append, 2)
    assert answers[0]["error_code"] == ErrorCode.invalid_session_timeout


def test_initial_rebalance_delay_waits_for_more_members():
    core = make_core(delay_ms=3000)
    a, held_a = join_new(core, 0)
    assert held_a == []
    b, held_b = join_new(core, 1000)
    coordinator(core).tick(2999)
    assert held_a == [] and held_b == []
    coordinator(core).tick(3000)  # b arrived during the delay: extended once more
    assert held_a == []
    coordinator(core).tick(6000)
    assert held_a[0]["generation_id"] == 1 and len(held_a[0]["members"]) == 2


def test_offsets_commit_fetch_and_survive_a_restart():
    fs = MemoryFileSystem()
    core = make_core(fs)
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {})
    errors = coordinator(core).commit_offsets("g", 1, a, None, [OffsetCommit("t", 0, 10, 0, "m"),
                                                                 OffsetCommit("t", 9, 1, 0, None)], 5)
    assert errors == [ErrorCode.none, ErrorCode.unknown_topic_or_partition]
    assert coordinator(core).commit_offsets("g", 7, a, None, [OffsetCommit("t", 1, 1, 0, None)], 6) == \
        [ErrorCode.illegal_generation]
    assert coordinator(core).commit_offsets("g", -1, "", None, [OffsetCommit("t", 1, 1, 0, None)], 6) == \
        [ErrorCode.unknown_member_id]
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 100)
    error, result = coordinator(core).fetch_offsets("g", [("t", [0, 1])], 100)
    assert error == ErrorCode.none
    (name, partitions), = result
    assert partitions[0][1].offset == 10 and partitions[0][1].metadata == "m" and partitions[1][1] is None
    group = group_of(core)
    assert group.state is STABLE and list(group.members) == [a] and group.generation_id == 1
    coordinator(core).tick(100 + SESSION_MS + 1)  # the member is gone: its session expires
    assert group.state is EMPTY


def test_admin_commit_delete_offsets_and_delete_group():
    fs = MemoryFileSystem()
    core = make_core(fs)
    assert coordinator(core).commit_offsets("admin", -1, "", None, [OffsetCommit("t", 0, 5, -1, "")], 0) == \
        [ErrorCode.none]
    assert coordinator(core).commit_offsets("admin", -1, "", None, [OffsetCommit("t", 1, 6, -1, "")], 0) == \
        [ErrorCode.none]
    error, results = coordinator(core).delete_offsets("admin", [("t", [1])], 1)
    assert error == ErrorCode.none and results == [("t", [(1, ErrorCode.none)])]
    listed = coordinator(core).list_groups(None, None, 1)
    assert [g.group_id for g in listed] == ["admin"]
    a, _ = join_new(core, 2, group="busy")
    assert coordinator(core).delete_group("busy", 3) == ErrorCode.non_empty_group
    assert coordinator(core).delete_group("nope", 3) == ErrorCode.group_id_not_found
    assert coordinator(core).delete_group("admin", 3) == ErrorCode.none
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 10)
    assert "admin" not in coordinator(core).groups
    assert coordinator(core).fetch_offsets("admin", [("t", [0])], 10)[1] == [("t", [(0, None)])]


def test_deleting_a_topic_drops_the_committed_offsets_of_every_group():
    """A group must not resume a recreated topic at the deleted topic's offsets (it would skip
    the new topic's first records): Kafka deletes them with the topic, durably."""
    fs = MemoryFileSystem()
    core = make_core(fs)
    core.controller.create_topic("keep", 1, 1)
    for group_id in ("g1", "g2"):
        assert coordinator(core).commit_offsets(
            group_id, -1, "", None, [OffsetCommit("t", 0, 10, -1, ""), OffsetCommit("keep", 0, 3, -1, "")], 0) == \
            [ErrorCode.none, ErrorCode.none]
    core.controller.delete_topic("t")
    core.controller.create_topic("t", 4, 1)
    for group_id in ("g1", "g2"):
        assert coordinator(core).fetch_offsets(group_id, [("t", [0]), ("keep", [0])], 1)[1][0] == ("t", [(0, None)])
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 10)  # the tombstones survive a restart
    for group_id in ("g1", "g2"):
        (_, t_offsets), (_, keep_offsets) = coordinator(core).fetch_offsets(group_id, [("t", [0]), ("keep", [0])], 10)[1]
        assert t_offsets == [(0, None)] and keep_offsets[0][1].offset == 3


def test_offsets_of_a_topic_deleted_before_its_group_loaded_are_dropped_on_load():
    """Offsets left in __consumer_offsets for a topic that no longer exists (the broker stopped
    between deleting the topic and tombstoning its offsets) go when the partition loads."""
    fs = MemoryFileSystem()
    core = make_core(fs)
    assert coordinator(core).commit_offsets("g", -1, "", None, [OffsetCommit("t", 0, 10, -1, "")], 0) == [ErrorCode.none]
    del core.extensions["group_coordinator"]  # the deletion happens without the coordinator
    core.controller.delete_topic("t")
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 10)
    core.tick(10)  # the first tick after a start loads every offsets partition
    core.controller.create_topic("t", 4, 1)
    assert coordinator(core).fetch_offsets("g", [("t", [0])], 10)[1] == [("t", [(0, None)])]
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 20)  # dropped durably: the recreated t stays clean
    assert coordinator(core).fetch_offsets("g", [("t", [0])], 20)[1] == [("t", [(0, None)])]


def test_producer_ids_are_never_reused_across_restarts():
    fs = MemoryFileSystem()
    core = make_core(fs)
    ids = [core.extensions["producer_ids"].next_producer_id() for _ in range(3)]
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), 10)
    later = core.extensions["producer_ids"].next_producer_id()
    assert ids == [0, 1, 2] and later > 2


def test_offsets_expire_after_the_retention_period_of_an_empty_group():
    fs = MemoryFileSystem()
    core = make_core(fs)
    OFFSETS_RETENTION_MS = core.config.offsets_retention_ms  # offsets.retention.minutes: 7 days
    coordinator(core).commit_offsets("old", -1, "", None, [OffsetCommit("t", 0, 5, -1, "")], 0)
    coordinator(core).commit_offsets("fresh", -1, "", None, [OffsetCommit("t", 0, 5, -1, "")], OFFSETS_RETENTION_MS)
    a, _ = join_new(core, 0, group="consumers")
    sync(core, 0, a, 1, {}, group="consumers")
    coordinator(core).commit_offsets("consumers", 1, a, None, [OffsetCommit("t", 1, 3, -1, "")], 1)
    coordinator(core).leave_group("consumers", [(a, None)], 2)
    coordinator(core).expire_offsets(OFFSETS_RETENTION_MS + 2)
    assert sorted(coordinator(core).groups) == ["fresh"]
    core.close()
    core = BrokerCore(core.config, fs, Uuids(), OFFSETS_RETENTION_MS + 3)
    assert coordinator(core).fetch_offsets("old", [("t", [0])], OFFSETS_RETENTION_MS + 3)[1] == [("t", [(0, None)])]
    assert sorted(g.group_id for g in coordinator(core).list_groups(None, None, OFFSETS_RETENTION_MS + 3)) == ["fresh"]


def test_losing_leadership_of_the_offsets_partition_unloads_its_groups():
    core = make_core()
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {})
    b, held_b = join_new(core, 1)  # waits for a to rejoin
    index = coordinator(core).partition_of("g")
    partition = core.partition(offsets_topic.TOPIC, index)
    partition.leader = 2  # another broker leads it now
    coordinator(core).tick(2)
    assert "g" not in coordinator(core).groups
    assert held_b[0]["error_code"] == ErrorCode.not_coordinator
    assert coordinator(core).heartbeat("g", 1, a, None, 3) == ErrorCode.not_coordinator
    partition.leader = core.node_id
    partition.leader_epoch += 1
    coordinator(core).tick(4)  # leading again: the group comes back from the log
    assert coordinator(core).groups["g"].generation_id == 1


def test_group_size_limit_refuses_new_members_but_not_a_returning_static_one(monkeypatch):
    from moldau import limits

    monkeypatch.setattr(limits, "group_members_max", 2)
    core = make_core()
    first = join(core, 0, instance="i1")[0]["member_id"]
    join_new(core, 0)
    assert join(core, 1)[0]["error_code"] == ErrorCode.group_max_size_reached
    assert join(core, 2, instance="i1")[0]["member_id"] != first  # replaced, not refused


def test_sessions_end_on_the_deadline_through_the_core_timer():
    """The core arms its one timer for the coordinator's earliest deadline (BrokerCore
    next_deadline_ms/run_deadlines): a member's session ends at its deadline, not on the next
    500 ms tick, so a DeleteGroups right after it finds the group Empty, as on Kafka."""
    core = make_core()
    a = join(core, 0, instance="static-1")[0]["member_id"]  # a static member joins in one step
    sync(core, 0, a, 1, {a: b""})
    assert coordinator(core).heartbeat("g", 1, a, "static-1", 1_234) == ErrorCode.none
    deadline = 1_234 + SESSION_MS
    assert core.next_deadline_ms() == deadline  # the heartbeat moved it; nothing earlier is armed
    core.run_deadlines(deadline - 1)
    assert list(group_of(core).members) == [a]
    core.run_deadlines(deadline)
    assert group_of(core).state is EMPTY and not group_of(core).members
    assert coordinator(core).delete_group("g", deadline + 1) == ErrorCode.none
    assert core.next_deadline_ms() is None or core.next_deadline_ms() > deadline


def test_join_and_rebalance_phases_end_on_their_deadlines():
    core = make_core()
    a, _ = join_new(core, 0)
    sync(core, 0, a, 1, {})
    b, held_b = join_new(core, 10)  # a should rejoin; it only heartbeats
    assert coordinator(core).heartbeat("g", 1, a, None, 5_000) == ErrorCode.rebalance_in_progress
    assert core.next_deadline_ms() == 5_000 + SESSION_MS  # a's session, before the join deadline
    core.run_deadlines(5_000 + SESSION_MS - 1)
    assert not held_b
    core.run_deadlines(5_000 + SESSION_MS)  # a is gone: the join phase completes with b at once
    assert held_b and held_b[0]["generation_id"] == 2 and list(group_of(core).members) == [b]
    # The leader b never syncs nor heartbeats: its session ends on time, leaving the group Empty.
    assert group_of(core).state is COMPLETING_REBALANCE
    assert core.next_deadline_ms() == 5_000 + 2 * SESSION_MS
    core.run_deadlines(5_000 + 2 * SESSION_MS)
    assert group_of(core).state is EMPTY
