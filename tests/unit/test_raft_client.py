"""RaftClient per state and per message, driven by hand (no network, no randomness left to
chance): requests are handed from outbox to handle_request and answers back to on_response."""

from __future__ import annotations

import random

import pytest
from kio.schema.describe_quorum.v0.request import DescribeQuorumRequest as DQ0
from kio.schema.describe_quorum.v0.request import PartitionData as DQ0P
from kio.schema.describe_quorum.v0.request import TopicData as DQ0T
from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest as DQ2
from kio.schema.describe_quorum.v2.request import PartitionData as DQ2P
from kio.schema.describe_quorum.v2.request import TopicData as DQ2T
from kio.schema.errors import ErrorCode

from moldau.log.memory_fs import MemoryFileSystem
from moldau.raft import NotLeaderError, RaftClient, quorum_state
from moldau.raft import messages as m
from moldau.raft.log import encode_leader_change

VOTERS = {1: ("h1", 9093), 2: ("h2", 9093), 3: ("h3", 9093)}
CONFIG = {"controller.quorum.election.timeout.ms": "1000", "controller.quorum.fetch.timeout.ms": "2000"}


class Cluster:
    """Clients on their own file systems; `exchange` delivers every queued request."""

    def __init__(self, ids=(1, 2, 3), voters=VOTERS, now_ms=0):
        self.now = now_ms
        self.voters = voters
        self.fs = {i: MemoryFileSystem() for i in ids}
        self.down: set[int] = set()
        self.cut: set[tuple[int, int]] = set()
        self.held: list = []
        self.clients = {i: self._make(i) for i in ids}

    def _make(self, node_id):
        return RaftClient(node_id, self.voters, self.fs[node_id], "/data", "cluster-a",
                          random.Random(node_id), self.now, CONFIG)

    def restart(self, node_id, crash="drop"):
        self.fs[node_id].crash(crash)
        self.clients[node_id] = self._make(node_id)

    def exchange(self, rounds=20):
        """Deliver requests and answers until quiet. A fetch the target holds is answered
        (expired) at the next `advance`, as a runtime does at the fetch's max wait."""
        for _ in range(rounds):
            sent = False
            for source in sorted(self.clients):
                client = self.clients[source]
                outbox, client.outbox = client.outbox, []
                for request in outbox:
                    sent = True
                    target = self.clients.get(request.destination)
                    if (target is None or request.destination in self.down or source in self.down
                            or (source, request.destination) in self.cut):
                        request.on_response(None, self.now)
                        continue
                    response = target.handle_request(request.api_key, request.api_version,
                                                     request.body, self.now)
                    if response is None:
                        self.held.append((source, target, request))
                    else:
                        request.on_response(response, self.now)
            if not sent:
                return

    def advance(self, to_ms):
        self.now = to_ms
        held, self.held = self.held, []
        for source, target, request in held:
            if target is not self.clients.get(request.destination) or {source, request.destination} & self.down:
                request.on_response(None, to_ms)
            else:
                request.on_response(target.handle_request(
                    request.api_key, request.api_version, request.body, to_ms, expired=True), to_ms)
        for node_id in sorted(self.clients):
            if node_id not in self.down:
                self.clients[node_id].run_deadlines(to_ms)

    def run(self, until_ms, step_ms=50):
        while self.now < until_ms:
            self.advance(self.now + step_ms)
            self.exchange()

    def leader(self):
        leaders = [c for n, c in self.clients.items() if c.is_leader and n not in self.down]
        assert len(leaders) <= 1
        return leaders[0] if leaders else None


def elect(cluster, until_ms=5000):
    cluster.run(until_ms)
    leader = cluster.leader()
    assert leader is not None, [c.state_name for c in cluster.clients.values()]
    return leader


def test_single_voter_elects_itself_at_once_and_commits_on_flush():
    fs = MemoryFileSystem()
    client = RaftClient(1, {1: ("h", 1)}, fs, "/data", "c", random.Random(0), 0)
    assert client.is_leader and client.epoch == 1 and client.epoch_start_offset == 0
    assert client.high_watermark == 1  # the LeaderChange record, flushed
    last = client.append([b"a", b"b"], 10)
    assert last == 2 and client.high_watermark == 1 and client.next_deadline_ms() == 10
    client.run_deadlines(10)
    assert client.high_watermark == 3
    assert client.read_committed(0, 10) == [(1, b"a"), (2, b"b")]
    state = quorum_state.read(fs, "/data/__cluster_metadata-0")
    assert (state.epoch, state.leader_id, state.voted_id, state.voters) == (1, 1, 1, (1,))


def test_three_voters_elect_replicate_and_commit():
    cluster = Cluster()
    leader = elect(cluster)
    followers = [c for c in cluster.clients.values() if c is not leader]
    assert all(f.state_name == "Follower" and f.leader_id == leader.node_id for f in followers)
    offset = leader.append([b"x"], cluster.now)
    cluster.run(cluster.now + 500)
    assert leader.high_watermark == offset + 1
    for client in cluster.clients.values():
        assert client.read_committed(0, 10) == [(offset, b"x")]
        assert client.epoch == leader.epoch


def test_follower_append_raises_not_leader():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    with pytest.raises(NotLeaderError):
        follower.append([b"x"], cluster.now)


def vote(client, candidate, epoch, last_epoch, last_offset, pre_vote=False, voter_id=-1, version=2):
    request = m.vote_request("cluster-a", voter_id, epoch, candidate, last_epoch, last_offset, pre_vote)
    response = client.handle_request(m.VOTE, version, request, 0)
    partition = m.response_partition(response)
    return ErrorCode(partition.error_code), partition.vote_granted


def test_a_vote_is_granted_once_per_epoch_and_persisted_first():
    cluster = Cluster()
    voter = cluster.clients[1]
    assert vote(voter, 2, 5, 0, 0) == (ErrorCode.none, True)
    state = quorum_state.read(cluster.fs[1], "/data/__cluster_metadata-0")
    assert (state.epoch, state.voted_id) == (5, 2)
    assert vote(voter, 3, 5, 0, 0) == (ErrorCode.none, False)  # already voted in epoch 5
    assert vote(voter, 2, 5, 0, 0) == (ErrorCode.none, True)  # the same candidate again
    cluster.restart(1)
    assert vote(cluster.clients[1], 3, 5, 0, 0) == (ErrorCode.none, False)  # survives a crash
    assert vote(cluster.clients[1], 3, 4, 0, 0)[0] == ErrorCode.fenced_leader_epoch


def test_vote_refused_to_a_stale_log():
    cluster = Cluster()
    leader = elect(cluster)
    leader.append([b"x"], cluster.now)
    cluster.run(cluster.now + 300)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    epoch = follower.epoch + 1
    assert vote(follower, leader.node_id, epoch, 0, 0) == (ErrorCode.none, False)
    follower2 = next(c for c in cluster.clients.values() if c not in (leader, follower))
    assert vote(follower2, follower.node_id, epoch, follower.log.last_fetched_epoch,
                follower.log_end_offset) == (ErrorCode.none, True)


def test_pre_vote_refused_while_the_leader_is_alive_and_does_not_bump_the_epoch():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    epoch = follower.epoch
    end = follower.log_end_offset
    assert vote(follower, 3 if follower.node_id != 3 else 1, epoch, follower.log.last_fetched_epoch,
                end, pre_vote=True) == (ErrorCode.none, False)
    assert follower.epoch == epoch and follower.state_name == "Follower"


def test_rejoining_node_does_not_disturb_a_stable_leader():
    cluster = Cluster()
    leader = elect(cluster)
    epoch = leader.epoch
    lonely = next(c.node_id for c in cluster.clients.values() if c is not leader)
    cluster.cut |= {(lonely, n) for n in VOTERS} | {(n, lonely) for n in VOTERS}
    cluster.run(cluster.now + 6000)  # it times out again and again (pre-votes go nowhere)
    assert cluster.clients[lonely].epoch == epoch  # pre-vote kept its epoch where it was
    cluster.cut.clear()
    cluster.run(cluster.now + 3000)
    assert cluster.leader() is leader and leader.epoch == epoch
    assert cluster.clients[lonely].leader_id == leader.node_id


def test_end_quorum_epoch_hands_over_at_once():
    cluster = Cluster()
    leader = elect(cluster)
    epoch = leader.epoch
    leader.resign(cluster.now)
    assert leader.state_name == "Resigned" and not leader.is_leader and leader.leader_id == -1
    cluster.exchange()
    cluster.run(cluster.now + 600)
    new = cluster.leader()
    assert new is not None and new is not leader and new.epoch > epoch


def test_leader_resigns_when_no_majority_fetches():
    cluster = Cluster()
    leader = elect(cluster)
    cluster.down |= {n for n in VOTERS if n != leader.node_id}
    cluster.run(cluster.now + 2900)  # 1.5 x fetch timeout (3000 ms) not yet passed
    assert leader.is_leader
    cluster.run(cluster.now + 200)
    assert leader.state_name == "Resigned"


def test_restarted_leader_resigns_its_epoch():
    cluster = Cluster()
    leader = elect(cluster)
    epoch, node_id = leader.epoch, leader.node_id
    cluster.restart(node_id)
    restarted = cluster.clients[node_id]
    assert restarted.state_name == "Resigned" and restarted.epoch == epoch
    cluster.run(cluster.now + 3000)
    assert cluster.leader() is not None and cluster.leader().epoch > epoch


def test_follower_truncates_a_divergent_uncommitted_tail():
    cluster = Cluster()
    leader = elect(cluster)
    old_epoch = leader.epoch
    others = [n for n in VOTERS if n != leader.node_id]
    cluster.down |= set(others)
    leader.append([b"lost-1", b"lost-2"], cluster.now)  # never replicated
    leader.run_deadlines(cluster.now)
    cluster.down = {leader.node_id}
    cluster.run(cluster.now + 4000)
    new = cluster.leader()
    assert new is not None and new.node_id in others and new.epoch > old_epoch
    new.append([b"kept"], cluster.now)
    cluster.down.clear()
    cluster.run(cluster.now + 4000)
    values = [v for _, v in cluster.clients[leader.node_id].read_committed(0, 100)]
    assert values == [b"kept"]
    assert cluster.clients[leader.node_id].log_end_offset == new.log_end_offset


def test_held_fetch_is_answered_when_something_changes():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    request = m.fetch_request("cluster-a", follower.node_id, leader.epoch, leader.log_end_offset,
                              leader.log.last_fetched_epoch, 500, 1 << 20)
    first = leader.handle_request(m.FETCH, 17, request, cluster.now)
    if first is not None:  # the first fetch of a high watermark is answered at once
        assert leader.handle_request(m.FETCH, 17, request, cluster.now) is None
    version = leader.version
    leader.append([b"x"], cluster.now)
    assert leader.version != version
    response = leader.handle_request(m.FETCH, 17, request, cluster.now)
    assert m.response_partition(response).records
    expired = leader.handle_request(m.FETCH, 17, m.fetch_request(
        "cluster-a", follower.node_id, leader.epoch, leader.log_end_offset,
        leader.log.last_fetched_epoch, 500, 1 << 20), cluster.now, expired=True)
    assert expired is not None


def test_fetch_errors():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)

    def fetch(target, epoch, cluster_id="cluster-a", last_epoch=0, offset=0):
        request = m.fetch_request(cluster_id, 3, epoch, offset, last_epoch, 0, 1 << 20)
        response = target.handle_request(m.FETCH, 17, request, cluster.now)
        if ErrorCode(response.error_code) != ErrorCode.none:
            return ErrorCode(response.error_code), None
        partition = m.response_partition(response)
        return ErrorCode(partition.error_code), partition.current_leader.leader_id

    assert fetch(leader, leader.epoch, "other") == (ErrorCode.inconsistent_cluster_id, None)
    assert fetch(leader, leader.epoch - 1)[0] == ErrorCode.fenced_leader_epoch
    assert fetch(leader, leader.epoch + 1)[0] == ErrorCode.unknown_leader_epoch
    assert fetch(follower, leader.epoch) == (ErrorCode.not_leader_or_follower, leader.node_id)
    assert fetch(leader, leader.epoch, last_epoch=leader.epoch + 1)[0] == ErrorCode.invalid_request


def test_inconsistent_cluster_id_and_voter_set():
    cluster = Cluster()
    voter = cluster.clients[1]
    request = m.vote_request("cluster-b", -1, 1, 2, 0, 0, False)
    assert ErrorCode(voter.handle_request(m.VOTE, 2, request, 0).error_code) == ErrorCode.inconsistent_cluster_id
    assert vote(voter, 9, 1, 0, 0)[0] == ErrorCode.inconsistent_voter_set  # 9 is no voter
    assert vote(voter, 2, 1, 0, 0, voter_id=3)[0] == ErrorCode.invalid_voter_key
    assert vote(voter, 2, 1, 0, 0, version=0) == (ErrorCode.none, True)  # older versions answered


def test_node_with_other_voters_fails_with_one_line():
    # Node 4 believes the voters are 1, 2 and 4; the quorum is 1, 2, 3.
    cluster = Cluster()
    elect(cluster)
    wrong = {1: VOTERS[1], 2: VOTERS[2], 4: ("h4", 9093)}
    fs = MemoryFileSystem()
    node = RaftClient(4, wrong, fs, "/data", "cluster-a", random.Random(4), cluster.now, CONFIG)
    cluster.clients[4] = node
    cluster.run(cluster.now + 4000)
    assert node.fatal_error is not None and "\n" not in node.fatal_error
    assert "controller.quorum.voters" in node.fatal_error
    assert all(c.fatal_error is None for n, c in cluster.clients.items() if n != 4)


def test_restart_with_changed_voters_is_refused():
    cluster = Cluster()
    elect(cluster)
    fs = cluster.fs[1]
    fs.crash("keep")
    other = {1: VOTERS[1], 2: VOTERS[2], 5: ("h5", 9093)}
    client = RaftClient(1, other, fs, "/data", "cluster-a", random.Random(1), cluster.now, CONFIG)
    assert client.fatal_error is not None and "quorum-state" in client.fatal_error
    assert client.next_deadline_ms() is None and client.outbox == []


def test_leader_change_with_other_voters_stops_the_follower():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    # A leader whose configuration names other voters writes them in its LeaderChange record.
    leader.log.log.truncate_to(leader.epoch_start_offset)
    from moldau.records import Record, build_batch
    batch = build_batch([Record(0, 0, b"\x00\x00\x00\x02", encode_leader_change(leader.node_id, [1, 2, 7], [1]))],
                        control=True, partition_leader_epoch=leader.epoch)
    leader.log.log.append_as_leader(batch, leader.epoch, 0)
    follower.log.truncate_to(leader.epoch_start_offset)
    cluster.run(cluster.now + 1000)
    assert follower.fatal_error is not None and "[1, 2, 7]" in follower.fatal_error


def test_describe_quorum_on_the_leader():
    cluster = Cluster(ids=(1, 2, 3, 4))  # 4 is an observer
    leader = elect(cluster)
    observer = cluster.clients[4]
    assert not observer.is_voter and observer.state_name == "Follower"
    leader.append([b"x"], cluster.now)
    cluster.run(cluster.now + 500)
    assert observer.read_committed(0, 10) == leader.read_committed(0, 10)
    request = DQ2(topics=(DQ2T(topic_name="__cluster_metadata", partitions=(DQ2P(partition_index=0),)),))
    response = leader.handle_request(m.DESCRIBE_QUORUM, 2, request, cluster.now)
    partition = m.response_partition(response)
    assert ErrorCode(partition.error_code) == ErrorCode.none
    assert (partition.leader_id, partition.leader_epoch, partition.high_watermark) == (
        leader.node_id, leader.epoch, leader.high_watermark)
    assert sorted(v.replica_id for v in partition.current_voters) == [1, 2, 3]
    assert [o.replica_id for o in partition.observers] == [4]
    assert all(v.log_end_offset == leader.log_end_offset and v.last_caught_up_timestamp > 0
               for v in partition.current_voters)
    assert sorted((n.node_id, n.listeners[0].name) for n in response.nodes) == [
        (1, "CONTROLLER"), (2, "CONTROLLER"), (3, "CONTROLLER")]
    follower = next(c for c in cluster.clients.values() if not c.is_leader)
    old = DQ0(topics=(DQ0T(topic_name="__cluster_metadata", partitions=(DQ0P(partition_index=0),)),))
    answer = m.response_partition(follower.handle_request(m.DESCRIBE_QUORUM, 0, old, cluster.now))
    assert ErrorCode(answer.error_code) == ErrorCode.not_leader_or_follower
    other = DQ0(topics=(DQ0T(topic_name="topic", partitions=(DQ0P(partition_index=0),)),))
    answer = m.response_partition(leader.handle_request(m.DESCRIBE_QUORUM, 0, other, cluster.now))
    assert ErrorCode(answer.error_code) == ErrorCode.unknown_topic_or_partition


def test_observer_never_votes_and_follows_a_new_leader():
    cluster = Cluster(ids=(1, 2, 3, 4))
    leader = elect(cluster)
    observer = cluster.clients[4]
    assert vote(observer, 1, observer.epoch + 1, 0, 0)[0] == ErrorCode.inconsistent_voter_set
    cluster.down.add(leader.node_id)
    cluster.run(cluster.now + 6000)
    new = cluster.leader()
    assert new is not None and new is not leader
    assert observer.leader_id == new.node_id and observer.epoch == new.epoch


def test_single_node_metadata_log_of_earlier_versions_is_adopted():
    """A data directory written before the quorum existed (controller/metadata_log.py wrote
    batches of leader epoch 0, with no quorum-state) becomes the single voter's log, all of it
    committed."""
    from moldau.log.config import LogConfig
    from moldau.log.partition_log import PartitionLog
    from moldau.records import Record, build_batch

    fs = MemoryFileSystem()
    old = PartitionLog.open(fs, "/data/__cluster_metadata-0", LogConfig(), 0)
    for value in (b"first", b"second"):
        old.append_as_leader(build_batch([Record(0, 5, None, value)]), 0, 5)
    old.close()
    client = RaftClient(1, {1: ("h", 1)}, fs, "/data", "c", random.Random(0), 10)
    assert client.is_leader and client.epoch == 1 and client.epoch_start_offset == 2
    assert client.read_committed(0, 10) == [(0, b"first"), (1, b"second")]


def test_older_request_versions_are_served():
    import datetime

    from kio.schema.begin_quorum_epoch.v0 import request as bqe0
    from kio.schema.end_quorum_epoch.v0 import request as eqe0
    from kio.schema.fetch.v13 import request as fetch13

    from moldau.raft.log import TOPIC_ID

    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    # Fetch v13: replica_id at the top level, topic by id.
    request = fetch13.FetchRequest(
        cluster_id="cluster-a", replica_id=follower.node_id, max_wait=datetime.timedelta(0), min_bytes=0,
        topics=(fetch13.FetchTopic(topic_id=TOPIC_ID, partitions=(fetch13.FetchPartition(
            partition=0, current_leader_epoch=leader.epoch, fetch_offset=0, last_fetched_epoch=0,
            partition_max_bytes=1 << 20),)),), forgotten_topics_data=())
    partition = m.response_partition(leader.handle_request(m.FETCH, 13, request, cluster.now))
    assert ErrorCode(partition.error_code) == ErrorCode.none and partition.records
    # BeginQuorumEpoch v0 and EndQuorumEpoch v0 (successors as plain ids).
    bqe = bqe0.BeginQuorumEpochRequest(cluster_id="cluster-a", topics=(bqe0.TopicData(
        topic_name="__cluster_metadata", partitions=(bqe0.PartitionData(
            partition_index=0, leader_id=leader.node_id, leader_epoch=leader.epoch),)),))
    answer = m.response_partition(follower.handle_request(m.BEGIN_QUORUM_EPOCH, 0, bqe, cluster.now))
    assert (ErrorCode(answer.error_code), answer.leader_id) == (ErrorCode.none, leader.node_id)
    eqe = eqe0.EndQuorumEpochRequest(cluster_id="cluster-a", topics=(eqe0.TopicData(
        topic_name="__cluster_metadata", partitions=(eqe0.PartitionData(
            partition_index=0, leader_id=leader.node_id, leader_epoch=leader.epoch,
            preferred_successors=(follower.node_id,)),)),))
    answer = m.response_partition(follower.handle_request(m.END_QUORUM_EPOCH, 0, eqe, cluster.now))
    assert ErrorCode(answer.error_code) == ErrorCode.none
    assert follower.state_name == "Prospective"  # first successor: no backoff at all
    unknown = bqe0.BeginQuorumEpochRequest(cluster_id="cluster-a", topics=(bqe0.TopicData(
        topic_name="other", partitions=(bqe0.PartitionData(partition_index=0, leader_id=1, leader_epoch=1),)),))
    response = follower.handle_request(m.BEGIN_QUORUM_EPOCH, 0, unknown, cluster.now)
    assert ErrorCode(response.error_code) == ErrorCode.invalid_request


def test_a_failing_disk_stops_the_node_with_one_line():
    cluster = Cluster()
    leader = elect(cluster)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for handle in list(leader.log.log.segments):
        handle.log.sync = broken  # the next fsync fails
    leader.append([b"x"], cluster.now)
    leader.run_deadlines(cluster.now)
    assert leader.fatal_error is not None and "No space left" in leader.fatal_error
    assert "\n" not in leader.fatal_error and not leader.is_leader


def test_one_node_of_another_cluster_stops_itself_not_the_others():
    cluster = Cluster()
    wrong = cluster.clients[3]
    wrong.cluster_id = "cluster-b"  # node 3 was set up for another cluster
    cluster.run(6000)
    assert wrong.fatal_error is not None and "INCONSISTENT_CLUSTER_ID" in wrong.fatal_error
    assert cluster.clients[1].fatal_error is None and cluster.clients[2].fatal_error is None
    assert cluster.leader() in (cluster.clients[1], cluster.clients[2])


def _answer_votes(client, granted, now, leader_id=-1):
    """Answer every Vote in the client's outbox; returns how many were answered."""
    outbox, client.outbox = client.outbox, []
    votes = [r for r in outbox if r.api_key == m.VOTE]
    for request in votes:
        partition = request.body.topics[0].partitions[0]
        request.on_response(m.election_response(m.VOTE, 2, ErrorCode.none, partition.replica_epoch,
                                                leader_id, None, vote_granted=granted), now)
    return len(votes)


def test_prospective_then_candidate_then_backoff_after_a_lost_election():
    fs = MemoryFileSystem()
    client = RaftClient(1, VOTERS, fs, "/data", "cluster-a", random.Random(3), 0, CONFIG)
    assert client.state_name == "Unattached" and client.epoch == 0
    client.run_deadlines(client.next_deadline_ms())
    assert client.state_name == "Prospective" and client.epoch == 0  # pre-vote keeps the epoch
    assert all(r.body.topics[0].partitions[0].pre_vote for r in client.outbox)
    now = client.next_deadline_ms() - 1
    assert _answer_votes(client, True, now) == 2
    assert client.state_name == "Candidate" and client.epoch == 1
    stored = quorum_state.read(fs, "/data/__cluster_metadata-0")
    assert (stored.epoch, stored.voted_id) == (1, 1)  # durable before the votes go out
    assert not any(r.body.topics[0].partitions[0].pre_vote for r in client.outbox)
    _answer_votes(client, False, now)
    if client.state_name == "Candidate":  # a random election backoff (0 or 100 ms at first)
        assert client.state.backoff_until_ms == now + 100 and client.outbox == []
        client.run_deadlines(now + 100)
    assert client.state_name == "Prospective" and client.epoch == 1  # retries with a pre-vote


def test_lost_pre_vote_returns_to_the_known_leader_without_an_epoch_bump():
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    epoch = follower.epoch
    cluster.down.add(follower.node_id)
    follower.run_deadlines(follower.state.fetch_deadline_ms)
    assert follower.state_name == "Prospective" and follower.leader_id == leader.node_id
    cluster.down.clear()
    cluster.exchange()  # the others still hear from the leader: they refuse the pre-vote
    assert follower.state_name == "Follower" and follower.epoch == epoch
    assert leader.is_leader and leader.epoch == epoch


def test_a_voter_stranded_in_a_higher_epoch_is_gathered_again():
    """(Found by simulation seed 9978.) A voter granted a vote to a candidate of a higher epoch
    that then vanished; the leader and the others, a majority, stay in the old epoch and refuse
    its pre-votes. The leader's periodic BeginQuorumEpoch learns the higher epoch and steps
    down, and the next election includes everyone."""
    cluster = Cluster()
    leader = elect(cluster)
    stranded = next(c for c in cluster.clients.values() if c is not leader)
    other = next(n for n in VOTERS if n not in (leader.node_id, stranded.node_id))
    assert vote(stranded, other, leader.epoch + 1, leader.log.last_fetched_epoch,
                leader.log_end_offset) == (ErrorCode.none, True)
    assert stranded.epoch == leader.epoch + 1 and stranded.leader_id == -1
    cluster.run(cluster.now + 6000)
    new = cluster.leader()
    assert new is not None and all(c.epoch == new.epoch and c.leader_id == new.node_id
                                   for c in cluster.clients.values())


def test_a_second_process_with_the_same_node_id_stops_with_one_line():
    import uuid

    cluster = Cluster()
    for node_id, client in cluster.clients.items():
        client.directory_id = uuid.UUID(int=node_id)
    leader = elect(cluster)
    taken = next(n for n in VOTERS if n != leader.node_id)
    duplicate = RaftClient(taken, VOTERS, MemoryFileSystem(), "/data", "cluster-a", random.Random(9),
                           cluster.now, CONFIG, directory_id=uuid.UUID(int=99))
    cluster.clients[99] = duplicate  # routed by key; it calls itself node `taken`
    cluster.run(cluster.now + 8000)
    assert duplicate.fatal_error is not None and f"node.id {taken}" in duplicate.fatal_error
    assert "\n" not in duplicate.fatal_error
    assert all(cluster.clients[n].fatal_error is None for n in VOTERS)
    assert cluster.leader() is leader


def test_a_node_restarted_on_a_wiped_disk_takes_its_id_back():
    import uuid

    cluster = Cluster()
    for node_id, client in cluster.clients.items():
        client.directory_id = uuid.UUID(int=node_id)
    leader = elect(cluster)
    wiped = next(n for n in VOTERS if n != leader.node_id)
    cluster.fs[wiped] = MemoryFileSystem()
    cluster.clients[wiped] = RaftClient(wiped, VOTERS, cluster.fs[wiped], "/data", "cluster-a",
                                        random.Random(5), cluster.now, CONFIG,
                                        directory_id=uuid.UUID(int=50))
    cluster.run(cluster.now + 6000)
    assert cluster.clients[wiped].fatal_error is None
    assert cluster.clients[wiped].log_end_offset == cluster.leader().log_end_offset


def test_retry_backoff_stays_well_below_the_fetch_timeout():
    """(Found by simulation seed 11417.) Failed fetches double the retry backoff; were it allowed
    to grow past the fetch timeout, a follower would start an election after a short outage
    even though the leader is fine again."""
    cluster = Cluster()
    leader = elect(cluster)
    follower = next(c for c in cluster.clients.values() if c is not leader)
    epoch, state = leader.epoch, follower.state
    start = cluster.now
    cluster.cut |= {(follower.node_id, leader.node_id)}
    cluster.run(start + 1500)  # many failed fetches, but less than the 2000 ms fetch timeout
    cluster.cut.clear()
    cluster.run(start + 3000)
    assert follower.state is state and follower.state.leader_alive  # it never left
    assert leader.is_leader and leader.epoch == epoch
