"""The metadata quorum: Kafka's KRaft protocol for the metadata log, sans I/O.

Theory of operation, as a diff from textbook Raft (the way Kafka's KafkaRaftClient explains
itself). Election is Raft's; replication is Kafka's.

- **Pull, not push.** Followers (and observers) send Fetch to the leader with their log end
  offset and the epoch of their last record; the leader answers with the records that follow,
  its high watermark and the current leader and epoch. There is no AppendEntries: a Fetch
  offset doubles as the acknowledgement of everything below it, which is why a follower fsyncs
  what it appended before it fetches again. A leader with nothing new holds a Fetch (up to
  500 ms, Kafka's MAX_FETCH_WAIT_MS) and answers when there are records or a new high
  watermark for that replica.
- **Divergence the Kafka way (KIP-595, as KIP-320 for partitions).** Instead of Raft's
  prevLogIndex/prevLogTerm check and one-step-back retries, the leader compares the follower's
  (fetch offset, last fetched epoch) with its own leader-epoch cache and answers
  `diverging_epoch` = (the largest epoch it has at or below the follower's, where it ends);
  the follower truncates there and fetches again. A truncation below the follower's high
  watermark is impossible in a correct quorum and stops the node (`fatal_error`).
- **BeginQuorumEpoch** replaces the empty AppendEntries heartbeat that announces a new
  leader: since followers pull, the leader tells every voter that it leads the epoch, at once
  and again every fetch timeout / 2 (as Kafka). A voter that meanwhile moved to a higher epoch
  without electing anyone answers with that epoch and the leader steps down, so a new
  election gathers everyone instead of leaving that voter stranded in an epoch of its own.
- **EndQuorumEpoch**: a leader that shuts down (`resign()`), fails check quorum, or restarts
  after leading tells the voters, most caught-up first; they start the next election after a
  backoff by their place in that list (0 ms for the first) instead of a full fetch timeout.
- **Check quorum**: a leader that has not received a Fetch from a majority of voters for
  1.5 x controller.quorum.fetch.timeout.ms resigns (Raft has no such step; without it a
  partitioned leader would keep accepting writes it can never commit).
- **Pre-vote (KIP-996)**: a node whose election timer (or fetch timer) expires first becomes
  Prospective and asks for pre-votes in its current epoch without bumping it; only a majority
  of pre-votes makes it a Candidate of epoch + 1. A voter refuses a pre-vote while it still
  fetches successfully from a live leader, so a node rejoining after a partition cannot force
  an election on a healthy quorum.
- **Commit rule**: the high watermark is the largest offset that a majority of voters have
  (the leader counts itself only after fsyncing), and it moves only once it passes the
  leader's `epoch_start_offset` — where the new leader wrote its LeaderChange control record.
  That record is the "entry of the current term" Raft requires before earlier entries count,
  and it names the voter set, which lets a misconfigured node notice.
- **Restart rules**: the quorum-state file (epoch, vote, leader; Kafka's JSON) is written
  durably before a vote is granted or an epoch acted on. A node that restarts as the leader of
  its stored epoch comes back Resigned: it may have lost unflushed records of that epoch and
  must never append in it again (so (offset, epoch) keeps naming one record).
- **Voters and observers**: the voter set is static (`controller.quorum.voters`); a node
  outside it is an observer (a broker-only node) that finds the leader by fetching from any
  voter and never votes. A node whose voter set differs from the quorum's stops with a
  one-line `fatal_error`: its quorum-state file was written with other voters, a majority of
  voters answered INCONSISTENT_VOTER_SET, the leader is not in its set, or the current
  leader's LeaderChange record names other voters. (If the misconfigured node itself becomes
  leader of a fresh quorum, it is the correctly configured followers that stop, each naming
  both voter sets; the operator sees the disagreement either way.) A node of another cluster
  (cluster id) stops the same way once a majority of the voters answered
  INCONSISTENT_CLUSTER_ID; one disagreeing peer is not enough, since it may be the wrong one.
- **One process per node.id**: when the caller passes the node's `directory_id` (Kafka's
  directory.id of its log directory), Vote and Fetch carry it and the leader serves each
  replica id to one directory at a time; a second process with the same node.id is refused
  and stops (`fatal_error`) after twice the fetch timeout, while a node restarted on a wiped
  disk gets its id back once the old process's fetches age out.
- **Not in this round**: snapshots (FetchSnapshot, log start offsets above 0) — the metadata
  log is never truncated from the front and is replayed whole; dynamic voter changes
  (KIP-853: AddRaftVoter/RemoveRaftVoter, kraft.version 1), where directory ids also
  name voters.

Modules: `client.py` (RaftClient: requests, responses, timers, transitions), `states.py`
(one class per election state), `log.py` (the metadata log), `quorum_state.py`,
`messages.py` (the RPCs as kio objects), `config.py` (Kafka's keys), `faults.py` (planted
bugs, for the simulation's tests only). The deterministic simulation is `tests/sim/`.
"""

from .client import NotLeaderError, RaftClient
from .config import QuorumConfig, parse_voters

__all__ = ["NotLeaderError", "QuorumConfig", "RaftClient", "parse_voters"]
