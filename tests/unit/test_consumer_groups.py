"""KIP-848 consumer groups on a real BrokerCore over an in-memory file system, on virtual time.

Members are driven by ConsumerGroupHeartbeat requests given straight to the coordinator; a tiny
client model (`Client`) keeps what each member owns the way a real consumer does (revoke what
the response no longer lists, add what it lists), so the tests can check that no partition is
ever owned by two members.
"""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.coordinator import consumer_records as cr
from moldau.coordinator import records as rec
from moldau.coordinator.assignors import MemberSpec, range_assign, uniform_assign
from moldau.coordinator.consumer_coordinator import HeartbeatRequest
from moldau.coordinator.coordinator import OffsetCommit
from moldau.coordinator.reconciliation import STABLE, UNRELEASED_PARTITIONS, UNREVOKED_PARTITIONS, CurrentAssignment, reconcile
from moldau.log import MemoryFileSystem
from moldau.testing.node import committed, local_core

SESSION_MS = 45_000


class Uuids:
    def __init__(self):
        self.count = 0

    def __call__(self) -> uuid.UUID:
        self.count += 1
        return uuid.UUID(int=self.count)


def make_core(fs=None, now_ms=0, partitions=6, **props) -> BrokerCore:
    config = BrokerConfig.from_properties({"offsets.topic.num.partitions": "3", **props})
    config.data_dir = "/data"
    core = local_core(config, fs or MemoryFileSystem(), Uuids(), now_ms)
    if core.image.topic("t") is None:
        committed(core).create_topic("t", partitions, 1)
    return core


def consumer(core):
    return core.extensions["consumer_group_coordinator"]


def topic_id(core, name="t") -> str:
    return core.image.topic(name).topic_id


def heartbeat(core, now_ms, member_id, epoch, group="g", **fields) -> dict:
    answers = []
    request = HeartbeatRequest(group_id=group, member_id=member_id, member_epoch=epoch, **fields)
    consumer(core).heartbeat(request, answers.append, now_ms)
    assert len(answers) == 1, "one node: answered at once"
    return answers[0]


class Client:
    """A member as a consumer runs it: joins, then heartbeats with what it owns."""

    def __init__(self, core, member_id, topics=("t",), regex=None, instance_id=None, assignor=None, group="g"):
        self.core, self.member_id, self.group = core, member_id, group
        self.topics, self.regex, self.instance_id, self.assignor = topics, regex, instance_id, assignor
        self.epoch = 0
        self.owned: dict[str, frozenset[int]] = {}

    def beat(self, now_ms) -> dict:
        fields = {"instance_id": self.instance_id}
        if self.epoch == 0:
            fields.update(rebalance_timeout_ms=30_000, server_assignor=self.assignor,
                          subscribed_topic_names=tuple(self.topics) if self.regex is None else None,
                          subscribed_topic_regex=self.regex, owned={})
        else:
            fields.update(owned=dict(self.owned))
        response = heartbeat(self.core, now_ms, self.member_id, self.epoch, group=self.group, **fields)
        if response["error_code"] == ErrorCode.none:
            self.epoch = response["member_epoch"]
            if response["assignment"] is not None:
                self.owned = {str(tp["topic_id"]): frozenset(tp["partitions"])
                              for tp in response["assignment"]["topic_partitions"]}
        return response

    def partitions(self) -> set[tuple[str, int]]:
        return {(t, p) for t, parts in self.owned.items() for p in parts}


def no_double_ownership(clients) -> None:
    seen: dict[tuple[str, int], str] = {}
    for client in clients:
        for key in client.partitions():
            assert key not in seen, f"{key} owned by {seen[key]} and {client.member_id}"
            seen[key] = client.member_id


def converge(clients, now_ms, rounds=6) -> None:
    for _ in range(rounds):
        for client in clients:
            client.beat(now_ms)
            no_double_ownership(clients)


# --- joining, rebalancing, no double ownership --------------------------------------------

def test_first_member_gets_every_partition():
    core = make_core()
    a = Client(core, "a")
    response = a.beat(0)
    assert response["error_code"] == ErrorCode.none
    assert response["member_epoch"] == 1
    assert response["heartbeat_interval"] == 5_000
    assert a.partitions() == {(topic_id(core), p) for p in range(6)}
    group = consumer(core).groups["g"]
    assert group.state.value == "Stable" and group.group_epoch == 1 and group.target_assignment_epoch == 1


def test_second_member_waits_for_revocation_and_nothing_is_owned_twice():
    core = make_core()
    a, b = Client(core, "a"), Client(core, "b")
    a.beat(0)
    b.beat(10)
    assert b.epoch == 2 and b.partitions() == set()  # a still owns everything
    assert consumer(core).groups["g"].members["b"].state == UNRELEASED_PARTITIONS
    a.beat(20)  # told to revoke three
    assert consumer(core).groups["g"].members["a"].state == UNREVOKED_PARTITIONS
    assert len(a.partitions()) == 3 and a.epoch == 1
    no_double_ownership([a, b])
    a.beat(30)  # acknowledges the revocation: moves to epoch 2
    assert a.epoch == 2
    b.beat(40)
    assert len(b.partitions()) == 3
    no_double_ownership([a, b])
    assert consumer(core).groups["g"].state.value == "Stable"


def test_three_members_over_six_partitions_then_one_leaves():
    core = make_core()
    clients = [Client(core, m) for m in ("a", "b", "c")]
    converge(clients, 0)
    assert sorted(len(c.partitions()) for c in clients) == [2, 2, 2]
    response = heartbeat(core, 100, "c", clients[2].epoch, owned=None)
    assert response["error_code"] == ErrorCode.none
    response = heartbeat(core, 100, "c", -1)
    assert response["member_epoch"] == -1
    clients = clients[:2]
    converge(clients, 200)
    assert sorted(len(c.partitions()) for c in clients) == [3, 3]
    assert consumer(core).groups["g"].state.value == "Stable"


def test_session_expiry_fences_a_member_on_its_deadline():
    core = make_core()
    a, b = Client(core, "a"), Client(core, "b")
    converge([a, b], 0)
    assert core.next_deadline_ms() <= consumer(core).next_deadline_ms() == SESSION_MS
    a.beat(30_000)  # only a keeps heartbeating
    core.local_node.advance_to(SESSION_MS - 1)
    assert "b" in consumer(core).groups["g"].members
    core.local_node.advance_to(SESSION_MS)
    assert "b" not in consumer(core).groups["g"].members
    a.beat(SESSION_MS + 10)
    assert len(a.partitions()) == 6
    assert core.next_deadline_ms() <= consumer(core).next_deadline_ms() == SESSION_MS + 10 + SESSION_MS


def test_a_member_that_does_not_revoke_is_fenced_after_its_rebalance_timeout():
    core = make_core()
    a = Client(core, "a")
    a.beat(0)
    Client(core, "b").beat(10)
    heartbeat(core, 20, "a", 1, owned=dict(a.owned))  # asked to revoke; keeps owning all six
    assert consumer(core).groups["g"].members["a"].state == UNREVOKED_PARTITIONS
    for now in range(5_000, 30_000, 5_000):
        heartbeat(core, now, "a", 1, owned=dict(a.owned))
        heartbeat(core, now, "b", 2, owned={})
    core.local_node.advance_to(30_020)
    assert "a" not in consumer(core).groups["g"].members


# --- bad input ---------------------------------------------------------------------------

def test_errors_for_bad_heartbeats():
    core = make_core()
    Client(core, "a").beat(0)
    assert heartbeat(core, 1, "a", 5, owned={})["error_code"] == ErrorCode.fenced_member_epoch
    assert heartbeat(core, 1, "zz", 1)["error_code"] == ErrorCode.unknown_member_id
    assert heartbeat(core, 1, "", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",))["error_code"] == \
        ErrorCode.invalid_request
    assert heartbeat(core, 1, "b", 0, subscribed_topic_names=("t",))["error_code"] == ErrorCode.invalid_request
    response = heartbeat(core, 1, "b", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",), server_assignor="sticky")
    assert response["error_code"] == ErrorCode.unsupported_assignor
    assert "uniform" in response["error_message"]
    response = heartbeat(core, 1, "b", 0, rebalance_timeout_ms=1, subscribed_topic_regex="t(")
    assert response["error_code"] == ErrorCode.invalid_regular_expression
    assert heartbeat(core, 1, "b", 3, group="nope")["error_code"] == ErrorCode.group_id_not_found
    # nothing else disturbed
    assert set(consumer(core).groups["g"].members) == {"a"}
    assert consumer(core).groups["g"].group_epoch == 1


def test_a_subscription_to_ten_thousand_topics_works():
    core = make_core()
    names = tuple(f"missing-{i}" for i in range(10_000)) + ("t",)
    response = heartbeat(core, 0, "a", 0, rebalance_timeout_ms=1, subscribed_topic_names=names)
    assert response["error_code"] == ErrorCode.none
    assert sum(len(tp["partitions"]) for tp in response["assignment"]["topic_partitions"]) == 6


def test_previous_epoch_with_a_subset_is_accepted():
    core = make_core()
    a = Client(core, "a")
    a.beat(0)
    response = heartbeat(core, 10, "a", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",), owned={})
    assert response["error_code"] == ErrorCode.none  # epoch 0 again: a rejoin
    assert response["member_epoch"] == 1 and response["assignment"] is not None


# --- static members ------------------------------------------------------------------------

def test_static_member_rejoins_under_a_new_member_id_without_a_rebalance():
    core = make_core()
    a, b = Client(core, "a", instance_id="i-a"), Client(core, "b")
    converge([a, b], 0)
    before = set(a.partitions())
    epoch = consumer(core).groups["g"].group_epoch
    assert heartbeat(core, 100, "a", -2, instance_id="i-a")["member_epoch"] == -2
    again = Client(core, "a2", instance_id="i-a")
    again.beat(200)
    assert again.partitions() == before
    assert consumer(core).groups["g"].group_epoch == epoch
    assert set(consumer(core).groups["g"].members) == {"a2", "b"}
    intruder = heartbeat(core, 300, "a3", 0, instance_id="i-a", rebalance_timeout_ms=1, subscribed_topic_names=("t",))
    assert intruder["error_code"] == ErrorCode.unreleased_instance_id
    assert heartbeat(core, 300, "a", again.epoch, instance_id="i-a")["error_code"] == ErrorCode.fenced_instance_id


# --- regex subscriptions -----------------------------------------------------------------

def test_regex_subscription_picks_up_a_topic_created_later():
    core = make_core()
    committed(core).create_topic("orders-eu", 2, 1)
    a = Client(core, "a", topics=(), regex="orders-.*")
    a.beat(0)
    assert a.partitions() == {(topic_id(core, "orders-eu"), p) for p in range(2)}
    committed(core).create_topic("orders-us", 2, 1)
    a.beat(2_000)
    a.beat(2_001)
    assert {t for t, _ in a.partitions()} == {topic_id(core, "orders-eu"), topic_id(core, "orders-us")}


# --- offsets, persistence, conversion --------------------------------------------------------

def test_offset_commits_check_the_member_epoch():
    core = make_core()
    a = Client(core, "a")
    a.beat(0)
    classic = core.extensions["group_coordinator"]
    commit = [OffsetCommit("t", 0, 42, -1, None)]
    assert classic.commit_offsets("g", 1, "a", None, commit, 10) == [ErrorCode.none]
    assert classic.commit_offsets("g", 0, "a", None, commit, 10) == [ErrorCode.stale_member_epoch]
    assert classic.commit_offsets("g", 2, "a", None, commit, 10) == [ErrorCode.fenced_member_epoch]
    assert classic.commit_offsets("g", -1, "", None, commit, 10) == [ErrorCode.unknown_member_id]
    error, results = classic.fetch_offsets("g", [("t", [0])], 10)
    assert error == ErrorCode.none and results[0][1][0][1].offset == 42


def test_a_commit_at_the_previous_epoch_is_accepted_for_partitions_still_owned():
    core = make_core()
    a, b = Client(core, "a"), Client(core, "b")
    a.beat(0)
    b.beat(10)
    a.beat(20)
    a.beat(30)  # a: epoch 2 on the server, and keeps 0, 1, 2 it had since epoch 1
    kept = sorted(p for _, p in a.partitions())
    lost = sorted(set(range(6)) - set(kept))
    classic = core.extensions["group_coordinator"]
    assert classic.commit_offsets("g", 1, "a", None, [OffsetCommit("t", kept[0], 1, -1, None)], 40) == [ErrorCode.none]
    assert classic.commit_offsets("g", 1, "a", None, [OffsetCommit("t", lost[0], 1, -1, None)], 40) == \
        [ErrorCode.stale_member_epoch]


def test_a_group_survives_a_restart_with_epochs_assignments_and_offsets():
    fs = MemoryFileSystem()
    core = make_core(fs)
    a, b = Client(core, "a"), Client(core, "b", instance_id="i-b")
    converge([a, b], 0)
    core.extensions["group_coordinator"].commit_offsets("g", a.epoch, "a", None, [OffsetCommit("t", 1, 7, -1, None)], 5)
    before = consumer(core).groups["g"]
    snapshot = (before.group_epoch, before.target_assignment_epoch,
                {m: (x.member_epoch, x.assigned) for m, x in before.members.items()}, dict(before.target))
    core.close()
    core = make_core(fs, now_ms=1_000)
    core.tick(1_000)
    after = consumer(core).groups["g"]
    assert (after.group_epoch, after.target_assignment_epoch,
            {m: (x.member_epoch, x.assigned) for m, x in after.members.items()}, after.target) == snapshot
    assert after.static_members == {"i-b": "b"}
    assert after.offsets[("t", 1)].offset == 7
    assert after.state.value == "Stable"
    assert core.next_deadline_ms() <= consumer(core).next_deadline_ms() == 1_000 + SESSION_MS  # sessions restart at load
    a.core = b.core = core
    assert a.beat(2_000)["error_code"] == ErrorCode.none


def test_an_empty_classic_group_converts_and_keeps_its_offsets_and_back():
    core = make_core()
    classic = core.extensions["group_coordinator"]
    classic.commit_offsets("g", -1, "", None, [OffsetCommit("t", 2, 99, -1, None)], 0)
    assert "g" in classic.groups
    Client(core, "a").beat(10)
    assert "g" not in classic.groups
    assert consumer(core).groups["g"].offsets[("t", 2)].offset == 99
    assert heartbeat(core, 20, "a", -1)["error_code"] == ErrorCode.none
    from moldau.coordinator.membership import JoinRequest
    answers = []
    classic.join_group(JoinRequest("g", "", None, "c", "/h", 10_000, 10_000, "consumer", [("range", b"")], True),
                       answers.append, 30)
    assert answers[0]["error_code"] == ErrorCode.member_id_required
    assert "g" not in consumer(core).groups
    assert classic.groups["g"].offsets[("t", 2)].offset == 99


def test_a_classic_join_into_a_live_consumer_group_is_refused():
    core = make_core()
    Client(core, "a").beat(0)
    from moldau.coordinator.membership import JoinRequest
    answers = []
    core.extensions["group_coordinator"].join_group(
        JoinRequest("g", "", None, "c", "/h", 10_000, 10_000, "consumer", [("range", b"")], True), answers.append, 1)
    assert answers[0]["error_code"] == ErrorCode.inconsistent_group_protocol


def test_list_describe_and_delete():
    core = make_core()
    a = Client(core, "a")
    a.beat(0)
    classic = core.extensions["group_coordinator"]
    assert [g.group_id for g in classic.list_consumer_groups(None, 1)] == ["g"]
    assert classic.list_consumer_groups({"empty"}, 1) == []
    assert classic.delete_group("g", 1) == ErrorCode.non_empty_group
    heartbeat(core, 2, "a", -1)
    assert consumer(core).groups["g"].state.value == "Empty"
    assert classic.delete_group("g", 3) == ErrorCode.none
    assert "g" not in consumer(core).groups


# --- pieces ------------------------------------------------------------------------------

def test_records_round_trip():
    tid = str(uuid.UUID(int=7))
    values = [
        (cr.Key(cr.GROUP_METADATA, "g"), cr.GroupMetadataValue(3, -5)),
        (cr.Key(cr.MEMBER_METADATA, "g", "m"), cr.MemberMetadataValue("i", None, "c", "/h", ("a", "b"), "x.*", 300, "range")),
        (cr.Key(cr.TARGET_ASSIGNMENT_METADATA, "g"), cr.TargetAssignmentMetadataValue(3)),
        (cr.Key(cr.TARGET_ASSIGNMENT_MEMBER, "g", "m"), cr.TargetAssignmentMemberValue({tid: frozenset({0, 2})})),
        (cr.Key(cr.CURRENT_MEMBER_ASSIGNMENT, "g", "m"),
         cr.CurrentMemberAssignmentValue(3, 2, 1, {tid: frozenset({0})}, {tid: frozenset({5})})),
        (cr.Key(cr.REGULAR_EXPRESSION, "g", "x.*"), cr.RegularExpressionValue(("xa",), 12, 99)),
    ]
    for key, value in values:
        assert cr.decode_key(cr.encode_key(key)) == key
        assert cr.decode_value(key.record_type, cr.encode_value(value)) == value
    with pytest.raises(rec.RecordFormatError):
        cr.decode_key(rec.encode_key(rec.GroupKey("g")))


def test_uniform_is_balanced_and_sticky():
    t = "t1"
    members = [MemberSpec(m, frozenset({t}), {}) for m in "abc"]
    first = uniform_assign(members, {t: 7})
    assert sorted(len(a.get(t, ())) for a in first.values()) == [2, 2, 3]
    members = [MemberSpec(m, frozenset({t}), first[m]) for m in "abc"] + [MemberSpec("d", frozenset({t}), {})]
    second = uniform_assign(members, {t: 7})
    assert sorted(len(a.get(t, ())) for a in second.values()) == [1, 2, 2, 2]
    moved = sum(len(first[m][t] - second[m].get(t, frozenset())) for m in "abc")
    assert moved == 1  # only what d needs moves
    assert set().union(*(a.get(t, frozenset()) for a in second.values())) == set(range(7))


def test_range_gives_co_partitioned_ranges():
    members = [MemberSpec(m, frozenset({"x", "y"}), {}) for m in "ab"]
    result = range_assign(members, {"x": 3, "y": 3})
    assert result["a"] == {"x": frozenset({0, 1}), "y": frozenset({0, 1})}
    assert result["b"] == {"x": frozenset({2}), "y": frozenset({2})}


def test_reconcile_revokes_before_assigning():
    current = CurrentAssignment(1, 0, STABLE, {"t": frozenset({0, 1, 2})}, {})
    nobody_else = lambda t, p: False  # noqa: E731
    step = reconcile(current, {"t": frozenset({0, 3})}, 2, {"t": frozenset({0, 1, 2})}, nobody_else)
    assert step.state == UNREVOKED_PARTITIONS and step.member_epoch == 1
    assert step.assigned == {"t": frozenset({0})} and step.pending_revocation == {"t": frozenset({1, 2})}
    done = reconcile(step, {"t": frozenset({0, 3})}, 2, {"t": frozenset({0})}, lambda t, p: p == 3)
    assert done.state == UNRELEASED_PARTITIONS and done.member_epoch == 2 and done.assigned == {"t": frozenset({0})}
    final = reconcile(done, {"t": frozenset({0, 3})}, 2, {"t": frozenset({0})}, nobody_else)
    assert final.state == STABLE and final.assigned == {"t": frozenset({0, 3})}


# --- group configs -------------------------------------------------------------------------

def test_group_configs_override_the_session_timeout_within_the_broker_bounds():
    from moldau.coordinator.consumer_config import ConsumerConfigError, ConsumerGroupSettings, validate_group_configs

    core = make_core(**{"group.consumer.max.session.timeout.ms": "90000"})
    settings = consumer(core).settings
    validate_group_configs(settings, {}, {"consumer.session.timeout.ms": "60000"})
    for bad in ({"consumer.session.timeout.ms": "1000"}, {"consumer.heartbeat.interval.ms": "50000"},
                {"consumer.session.timeout.ms": "x"}, {"no.such.config": "1"}):
        with pytest.raises(ConsumerConfigError):
            validate_group_configs(settings, {}, bad)
    committed(core).alter_configs(32, "g", {"consumer.session.timeout.ms": "60000"})
    Client(core, "a").beat(0)
    assert core.next_deadline_ms() <= consumer(core).next_deadline_ms() == 60_000
    with pytest.raises(ConsumerConfigError):
        ConsumerGroupSettings.from_properties({"group.consumer.session.timeout.ms": "1000"})
    with pytest.raises(ConsumerConfigError):
        ConsumerGroupSettings.from_properties({"group.consumer.assignors": "sticky"})


def test_an_empty_consumer_group_expires_with_its_offsets_after_the_retention_period():
    core = make_core(**{"offsets.retention.minutes": "1"})
    Client(core, "a").beat(0)
    classic = core.extensions["group_coordinator"]
    assert classic.commit_offsets("g", 1, "a", None, [OffsetCommit("t", 0, 5, -1, None)], 1) == [ErrorCode.none]
    heartbeat(core, 1_000, "a", -1)
    classic.expire_offsets(60_999)
    assert "g" in consumer(core).groups
    classic.expire_offsets(61_000)
    assert "g" not in consumer(core).groups
    assert classic.fetch_offsets("g", [("t", [0])], 61_001)[1][0][1][0][1] is None


def test_without_the_consumer_protocol_the_apis_are_not_advertised():
    from moldau.broker.api_versions import api_keys

    assert {68, 69} <= {k["api_key"] for k in api_keys(make_core())}
    core = make_core(**{"group.coordinator.rebalance.protocols": "classic"})
    assert not {68, 69} & {k["api_key"] for k in api_keys(core)}
    response = heartbeat(core, 0, "a", 0, rebalance_timeout_ms=1, subscribed_topic_names=("t",))
    assert response["error_code"] == ErrorCode.unsupported_version


@pytest.mark.parametrize("seed", range(20))
def test_random_joins_leaves_and_heartbeats_never_double_assign_and_converge(seed):
    """Members join, leave, die and heartbeat in a random order (some heartbeats say nothing
    about what they own): at no point do two members own a partition, and once the churn stops
    the group settles Stable with every partition owned and the load balanced."""
    import random

    rng = random.Random(seed)
    core = make_core(partitions=12)
    live: list[Client] = []
    now = 0
    for step in range(120):
        now += rng.randint(1, 400)
        action = rng.random()
        if action < 0.12 and len(live) < 6:
            live.append(Client(core, f"m{step}", assignor=rng.choice([None, "uniform", "range"])))
        elif action < 0.18 and live:
            leaving = live.pop(rng.randrange(len(live)))
            if leaving.epoch > 0:
                heartbeat(core, now, leaving.member_id, -1)
        elif live:
            client = rng.choice(live)
            if client.epoch > 0 and rng.random() < 0.3:
                response = heartbeat(core, now, client.member_id, client.epoch)  # "owned unchanged"
                if response["error_code"] == ErrorCode.none and response["assignment"] is not None:
                    client.owned = {str(tp["topic_id"]): frozenset(tp["partitions"])
                                    for tp in response["assignment"]["topic_partitions"]}
            else:
                client.beat(now)
        no_double_ownership(live)
        core.local_node.advance_to(now)
    for _ in range(12):
        now += 100
        for client in live:
            client.beat(now)
            no_double_ownership(live)
    if live:
        group = consumer(core).groups["g"]
        assert group.state.value == "Stable"
        sizes = sorted(len(c.partitions()) for c in live)
        assert sum(sizes) == 12 and sizes[-1] - sizes[0] <= (1 if group.preferred_assignor("uniform") == "uniform" else 12)


def test_an_epoch_older_than_the_previous_one_is_fenced():
    core = make_core()
    a = Client(core, "a")
    a.beat(0)
    Client(core, "b").beat(10)
    a.beat(20)
    a.beat(30)  # a: epoch 2, previous 1
    Client(core, "c").beat(40)
    converge([a], 50)  # a: epoch 3, previous 2
    assert a.epoch == 3
    response = heartbeat(core, 60, "a", 1, owned={})
    assert response["error_code"] == ErrorCode.fenced_member_epoch
    assert "smaller member epoch" in response["error_message"]
    assert heartbeat(core, 61, "a", 2, owned={})["error_code"] == ErrorCode.none  # previous epoch, subset


def test_group_max_size_and_an_empty_group_id():
    core = make_core(**{"group.consumer.max.size": "2"})
    Client(core, "a").beat(0)
    Client(core, "b").beat(1)
    response = Client(core, "c").beat(2)
    assert response["error_code"] == ErrorCode.group_max_size_reached
    assert set(consumer(core).groups["g"].members) == {"a", "b"}
    response = heartbeat(core, 3, "x", 0, group="", rebalance_timeout_ms=1, subscribed_topic_names=("t",))
    assert response["error_code"] == ErrorCode.invalid_request and response["error_message"] == "GroupId can't be empty."
