"""The election states, one class per state as in Kafka's KafkaRaftClient.

Theory of operation
-------------------
A node is always in exactly one state of one epoch. The state holds what that state needs
(timers as absolute deadlines in ms, votes collected, replica progress) and answers two
questions for the client: `can_grant_vote(...)` and `deadline_ms()` (its own timer). All
transitions are made by the client (client.py), which persists the epoch, leader and vote
(quorum_state.py) before it enters a new state. The transitions (KIP-595 with KIP-996's
pre-vote, as Kafka 4.1):

    Unattached  -> Prospective (election timeout), Follower (leader found), Unattached (epoch)
    Prospective -> Candidate (majority of pre-votes), Follower/Unattached (lost or timed out:
                   back to the leader it knew, if any), Unattached/Follower (higher epoch)
    Candidate   -> Leader (majority of votes), Prospective (after the backoff that follows a
                   lost or timed-out election), Unattached/Follower (higher epoch)
    Leader      -> Resigned (check quorum failed, or asked to resign), Unattached/Follower
                   (higher epoch)
    Follower    -> Prospective (fetch timeout), Unattached/Follower (higher epoch)
    Resigned    -> Unattached of the next epoch (election timeout), Unattached/Follower

Observers (nodes outside the voter set) are only ever Unattached or Follower.

Vote rules (Kafka's `unattachedOrProspectiveCanGrantVote` and the per-state overrides):
a pre-vote is granted when the candidate's log is at least as up to date as ours and we do
not currently hear from a leader (a Follower that has fetched from a live leader refuses, so
a node that rejoins after a partition cannot disturb a stable leader); a real vote is granted
at most once per epoch, never when a leader of the epoch is known, and only to an up-to-date
log. Leaders and Resigned leaders grant nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from moldau import limits

from . import faults
from .config import CHECK_QUORUM_TIMEOUT_FACTOR


def _vote_as_unattached(leader_id: int, voted_id: int, candidate_id: int, log_up_to_date: bool,
                        pre_vote: bool) -> bool:
    if faults.active("vote-without-log-check"):
        log_up_to_date = True
    if pre_vote:
        return log_up_to_date
    if voted_id >= 0:
        return voted_id == candidate_id
    if leader_id >= 0:
        return False
    return log_up_to_date


class EpochState:
    name = "?"

    def __init__(self, epoch: int, leader_id: int = -1, voted_id: int = -1) -> None:
        self.epoch = epoch
        self.leader_id = leader_id
        self.voted_id = voted_id

    def can_grant_vote(self, candidate_id: int, log_up_to_date: bool, pre_vote: bool,
                       now_ms: int) -> bool:
        return False

    def deadline_ms(self) -> int | None:
        return None

    def __repr__(self) -> str:
        return f"{self.name}(epoch={self.epoch}, leader={self.leader_id}, voted={self.voted_id})"


class UnattachedState(EpochState):
    """An epoch whose leader is not known (yet); observers wait here for one."""

    name = "Unattached"

    def __init__(self, epoch: int, election_deadline_ms: int | None, leader_id: int = -1,
                 voted_id: int = -1) -> None:
        super().__init__(epoch, leader_id, voted_id)
        self.election_deadline_ms = election_deadline_ms  # None: an observer never elects

    def can_grant_vote(self, candidate_id: int, log_up_to_date: bool, pre_vote: bool,
                       now_ms: int) -> bool:
        return _vote_as_unattached(self.leader_id, self.voted_id, candidate_id, log_up_to_date,
                                   pre_vote)

    def deadline_ms(self) -> int | None:
        return self.election_deadline_ms


class _Election:
    """Votes collected by a Prospective (pre-votes) or a Candidate, itself included."""

    def __init__(self, local_id: int, voters: list[int]) -> None:
        self.voters = sorted(voters)
        self.granted = {local_id}
        self.rejected: set[int] = set()
        self.majority = len(self.voters) // 2 + 1

    def record(self, voter_id: int, granted: bool) -> None:
        if voter_id in self.voters and voter_id not in self.granted | self.rejected:
            (self.granted if granted else self.rejected).add(voter_id)

    @property
    def won(self) -> bool:
        return len(self.granted) >= self.majority

    @property
    def lost(self) -> bool:
        return len(self.voters) - len(self.rejected) < self.majority

    def unrecorded(self) -> list[int]:
        return [v for v in self.voters if v not in self.granted and v not in self.rejected]


class ProspectiveState(EpochState):
    """KIP-996 pre-vote: ask whether we could win before bumping the epoch."""

    name = "Prospective"

    def __init__(self, epoch: int, local_id: int, voters: list[int], election_deadline_ms: int,
                 retries: int, leader_id: int = -1, voted_id: int = -1) -> None:
        super().__init__(epoch, leader_id, voted_id)
        self.election = _Election(local_id, voters)
        self.election_deadline_ms = election_deadline_ms
        self.retries = retries

    def can_grant_vote(self, candidate_id: int, log_up_to_date: bool, pre_vote: bool,
                       now_ms: int) -> bool:
        return _vote_as_unattached(self.leader_id, self.voted_id, candidate_id, log_up_to_date,
                                   pre_vote)

    def deadline_ms(self) -> int | None:
        return self.election_deadline_ms


class CandidateState(EpochState):
    name = "Candidate"

    def __init__(self, epoch: int, local_id: int, voters: list[int], election_deadline_ms: int,
                 retries: int) -> None:
        super().__init__(epoch, -1, local_id)
        self.election = _Election(local_id, voters)
        self.election_deadline_ms = election_deadline_ms
        self.retries = retries
        self.backoff_until_ms: int | None = None  # set once the election is lost/timed out

    def can_grant_vote(self, candidate_id: int, log_up_to_date: bool, pre_vote: bool,
                       now_ms: int) -> bool:
        # Our own vote went to ourselves; a pre-vote only asks whether the log is current.
        if faults.active("vote-without-log-check"):
            log_up_to_date = True
        return pre_vote and log_up_to_date

    def deadline_ms(self) -> int | None:
        return self.backoff_until_ms if self.backoff_until_ms is not None else self.election_deadline_ms


class FollowerState(EpochState):
    name = "Follower"

    def __init__(self, epoch: int, leader_id: int, fetch_deadline_ms: int, voted_id: int = -1) -> None:
        super().__init__(epoch, leader_id, voted_id)
        self.fetch_deadline_ms = fetch_deadline_ms
        # True once a fetch from the leader succeeded and until the leader said it resigned:
        # while it holds, pre-votes are refused (the leader is alive).
        self.leader_alive = False
        # An observer whose leader went silent asks the voters in turn for the current one.
        self.searching = False

    def can_grant_vote(self, candidate_id: int, log_up_to_date: bool, pre_vote: bool,
                       now_ms: int) -> bool:
        if faults.active("vote-without-log-check"):
            log_up_to_date = True
        return pre_vote and log_up_to_date and not self.leader_alive

    def deadline_ms(self) -> int | None:
        return self.fetch_deadline_ms


@dataclass(slots=True)
class ReplicaState:
    """What the leader knows of one replica (voter or observer), for the high watermark,
    check quorum and DescribeQuorum."""

    replica_id: int
    end_offset: int = -1  # the replica's log end offset (its last fetch offset); -1 unknown
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    leader_end_at_last_fetch: int = -1
    acknowledged: bool = False  # fetched from us or answered BeginQuorumEpoch
    high_watermark_sent: int | None = None  # the high watermark of our last answer to it

    def update(self, fetch_offset: int, leader_end_offset: int, now_ms: int) -> None:
        # Kafka's rule: caught up now if the fetch reaches the leader's end; caught up as of
        # the previous fetch if it reaches what the leader's end was then.
        if fetch_offset >= leader_end_offset:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif self.leader_end_at_last_fetch > 0 and fetch_offset >= self.leader_end_at_last_fetch:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.leader_end_at_last_fetch = leader_end_offset
        self.last_fetch_ms = max(self.last_fetch_ms, now_ms)
        self.end_offset = fetch_offset
        self.acknowledged = True


class LeaderState(EpochState):
    name = "Leader"

    def __init__(self, epoch: int, local_id: int, voters: list[int], epoch_start_offset: int,
                 granting: list[int], fetch_timeout_ms: int, now_ms: int) -> None:
        super().__init__(epoch, local_id, local_id)
        self.local_id = local_id
        self.epoch_start_offset = epoch_start_offset
        self.granting = sorted(granting)
        self.voter_states = {v: ReplicaState(v) for v in sorted(voters)}
        self.voter_states[local_id].acknowledged = True
        self.observer_states: dict[int, ReplicaState] = {}
        self.high_watermark: int | None = None
        self.check_quorum_timeout_ms = int(fetch_timeout_ms * CHECK_QUORUM_TIMEOUT_FACTOR)
        self.check_quorum_deadline_ms = now_ms + self.check_quorum_timeout_ms
        self.fetched_voters: set[int] = set()
        # Kafka's leader repeats BeginQuorumEpoch to every other voter each fetch timeout / 2
        # (the first round at once): a voter that moved to a higher epoch without electing
        # anyone answers with that epoch, and the leader steps down so a new election can
        # gather everyone, instead of leaving that voter stranded.
        self.begin_quorum_interval_ms = max(1, fetch_timeout_ms // 2)
        self.begin_quorum_deadline_ms = now_ms
        # replica id -> (directory id, last fetch ms) of the process that fetches as it.
        self.directories: dict[int, tuple[uuid.UUID, int]] = {}
        self.fetch_timeout_ms = fetch_timeout_ms

    def deadline_ms(self) -> int | None:
        if len(self.voter_states) == 1:
            return None
        return min(self.check_quorum_deadline_ms, self.begin_quorum_deadline_ms)

    def update_local(self, flushed_end_offset: int, now_ms: int) -> bool:
        """The leader's own flushed end offset moved; True if the high watermark moved."""
        local = self.voter_states[self.local_id]
        local.end_offset = flushed_end_offset
        local.last_fetch_ms = local.last_caught_up_ms = now_ms
        return self._maybe_update_high_watermark()

    def update_replica(self, replica_id: int, fetch_offset: int, leader_end_offset: int,
                       now_ms: int) -> bool:
        """A replica fetched from `fetch_offset`; True if the high watermark moved."""
        state = self.voter_states.get(replica_id)
        if state is None:
            state = self.observer_states.get(replica_id)
            if state is None:
                if len(self.observer_states) >= limits.raft_observers_max:
                    return False
                state = self.observer_states[replica_id] = ReplicaState(replica_id)
        state.update(fetch_offset, leader_end_offset, now_ms)
        if replica_id not in self.voter_states:
            return False
        self._note_fetch(replica_id, now_ms)
        return self._maybe_update_high_watermark()

    def _note_fetch(self, replica_id: int, now_ms: int) -> None:
        # Check quorum: a majority (the leader counts itself) fetched within the timeout.
        self.fetched_voters.add(replica_id)
        if len(self.fetched_voters) + 1 >= len(self.voter_states) // 2 + 1:
            self.fetched_voters.clear()
            self.check_quorum_deadline_ms = now_ms + self.check_quorum_timeout_ms

    def _maybe_update_high_watermark(self) -> bool:
        offsets = sorted((s.end_offset for s in self.voter_states.values()), reverse=True)
        candidate = offsets[len(offsets) // 2]
        if faults.active("commit-without-majority"):
            candidate = self.voter_states[self.local_id].end_offset
        # Raft's rule: nothing is committed until an entry of this epoch (the LeaderChange
        # record at epoch_start_offset) is, which makes the new high watermark at least as
        # large as any a previous leader exposed.
        if candidate > self.epoch_start_offset and (
                self.high_watermark is None or candidate > self.high_watermark):
            self.high_watermark = candidate
            return True
        return False

    def claim_replica_id(self, replica_id: int, directory_id: uuid.UUID | None, now_ms: int) -> bool:
        """Two processes fetching as one replica id (a duplicate node.id) would vote twice and
        count twice. The process whose log directory fetched first keeps the id while it keeps
        fetching; another directory may take it over only after a fetch timeout of silence
        (the first process is gone, e.g. restarted on a wiped disk)."""
        if directory_id is None:
            return True
        owner = self.directories.get(replica_id)
        if owner is not None and owner[0] != directory_id and now_ms - owner[1] < self.fetch_timeout_ms:
            return False
        if owner is not None or len(self.directories) < limits.raft_observers_max:
            self.directories[replica_id] = (directory_id, now_ms)
        return True

    def voters_by_fetch_offset(self) -> list[int]:
        """Other voters, most caught up first: the preferred successors when we resign."""
        others = [s for v, s in self.voter_states.items() if v != self.local_id]
        return [s.replica_id for s in sorted(others, key=lambda s: (-s.end_offset, s.replica_id))]

    def expire_observers(self, now_ms: int, session_ms: int) -> None:
        for replica_id in sorted(self.observer_states):
            if now_ms - self.observer_states[replica_id].last_fetch_ms >= session_ms:
                del self.observer_states[replica_id]


class ResignedState(EpochState):
    """A leader that gave up its epoch (shutdown, check quorum, or restart after leading):
    it tells the voters with EndQuorumEpoch and waits for the next election."""

    name = "Resigned"

    def __init__(self, epoch: int, local_id: int, voters: list[int], election_deadline_ms: int,
                 preferred_successors: list[int]) -> None:
        super().__init__(epoch, local_id, local_id)
        self.election_deadline_ms = election_deadline_ms
        self.preferred_successors = preferred_successors
        self.unacknowledged = [v for v in sorted(voters) if v != local_id]

    def deadline_ms(self) -> int | None:
        return self.election_deadline_ms

