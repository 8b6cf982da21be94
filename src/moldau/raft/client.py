"""`RaftClient`: one node's side of the metadata quorum, sans I/O.

Theory of operation
-------------------
The client owns the node's election state (states.py), its metadata log (log.py) and its
quorum-state file (quorum_state.py). It is driven from outside, synchronously:

- `handle_request(api_key, version, request, now_ms)` answers the quorum RPCs of other nodes
  (Vote, BeginQuorumEpoch, EndQuorumEpoch, DescribeQuorum, and Fetch of the metadata
  partition) with kio response objects of the request's version. A Fetch with nothing to
  return yet gets None: the caller holds it (up to the request's max_wait), calls again when
  `version` changes, and at the deadline calls with `expired=True` to get an answer anyway.
- Requests to other nodes are appended to `outbox` as `OutboundRequest`s (listener
  CONTROLLER); the caller sends them and calls their `on_response(response | None, now_ms)`.
  At most one request is in flight per destination; a failed one backs off (retry.backoff,
  doubling per failure up to an eighth of the fetch timeout); a late answer to a superseded
  request is ignored.
- Timers are absolute deadlines: `next_deadline_ms()` is the earliest, `run_deadlines(now)`
  runs what is due (`tick(now)` does the same, cheaply, when nothing is).
- `append(values, now_ms)` (leader only) writes one batch at once and leaves its fsync to the
  next call into the client (`next_deadline_ms()` is then `now`): appends made in one pass of
  the caller's loop share one fsync, as Kafka's linger does. The leader counts itself toward
  the high watermark only after that fsync.

Every call ends by re-evaluating the state (`_poll`): timers that expired, requests the state
needs sent, the flush. `version` is bumped whenever the log end offset, the high watermark,
the leader, the epoch or the state changes, which is what held Fetches wait for.

Durability order: the quorum-state file is written (atomically, fsynced) before a vote is
granted, a candidacy starts, a new epoch's leader is followed, or leadership is taken; log
records are fsynced before they count (the leader's own, before it counts itself; a
follower's, before its next Fetch announces the new offset).

Errors a peer causes are answered with Kafka's codes; conditions that mean this node cannot
take part safely (its controller.quorum.voters differs from the quorum's, another cluster id,
a leader asking to truncate committed records) set `fatal_error` to one line and the client
stops acting (the runtime prints it and exits).
"""

from __future__ import annotations

import logging
import random
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from kio.schema.errors import ErrorCode

from moldau.log.fs import FileSystem
from moldau.log.partition_log import LogError
from moldau.protocol.rpc import CONTROLLER, RAFT_CHANNEL, OutboundRequest

from . import faults
from . import messages as m
from . import quorum_state
from .config import BATCH_BYTES_MAX, ELECTION_BACKOFF_BASE_MS, QuorumConfig
from .log import RaftLog, RaftLogError
from .quorum_state import ElectionState, QuorumStateError
from .states import (
    CandidateState,
    EpochState,
    FollowerState,
    LeaderState,
    ProspectiveState,
    ResignedState,
    UnattachedState,
)

log = logging.getLogger(__name__)

# Kafka's LeaderState.OBSERVER_SESSION_TIMEOUT_MS: an observer silent this long is forgotten.
OBSERVER_SESSION_MS = 300_000
# Cap of the per-destination retry backoff after consecutive failures (and at most an eighth of
# the fetch timeout, see _request_failed).
_RETRY_BACKOFF_MAX_MS = 1000


class NotLeaderError(Exception):
    """append() on a node that is not the leader."""


@dataclass(slots=True)
class _Connection:
    inflight: int | None = None  # id of the request in flight
    deadline_ms: int = 0  # when that request counts as failed if no answer came
    backoff_until_ms: int = 0
    failures: int = 0


class RaftClient:
    def __init__(self, node_id: int, voters: dict[int, tuple[str, int]], fs: FileSystem,
                 data_dir: str, cluster_id: str, rng: random.Random, now_ms: int,
                 config: dict[str, str] | None = None,
                 directory_id: uuid.UUID | None = None) -> None:
        if not voters:
            raise ValueError("controller.quorum.voters is empty")
        self.node_id = node_id
        # The stable id of this node's metadata log directory (Kafka's directory.id), sent in
        # Vote and Fetch so that a leader can tell two processes of one node.id apart.
        self.directory_id = directory_id
        self.voters = dict(sorted(voters.items()))
        self.cluster_id = cluster_id
        self.config = QuorumConfig.from_kafka_configs(config or {})
        self.fs = fs
        self._rng = rng
        self.log = RaftLog(fs, data_dir, now_ms, self.config.segment_bytes)
        self.outbox: list[OutboundRequest] = []
        self.version = 0
        self.fatal_error: str | None = None
        self._high_watermark = 0
        self._now_ms = now_ms
        self._connections: dict[int, _Connection] = {}
        self._request_seq = 0
        self._fetch_inflight: int | None = None
        self._next_bootstrap = 0
        self._flush_due_ms: int | None = None
        self._disagreements: dict[str, set[int]] = {}
        self._refused_since_ms: int | None = None  # the leader refuses our node.id since then
        self._closed = False
        self._state: EpochState = self._initial_state(now_ms)
        self._signature = self._current_signature()
        self._poll(now_ms)

    # --- the public view ----------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return isinstance(self._state, LeaderState) and self.fatal_error is None

    @property
    def leader_id(self) -> int:
        """The leader of the current epoch as this node knows it; -1 when unknown (a resigned
        leader reports -1: it no longer serves)."""
        return -1 if isinstance(self._state, ResignedState) else self._state.leader_id

    @property
    def epoch(self) -> int:
        return self._state.epoch

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @property
    def log_end_offset(self) -> int:
        return self.log.end_offset

    @property
    def epoch_start_offset(self) -> int:
        state = self._state
        return state.epoch_start_offset if isinstance(state, LeaderState) else -1

    @property
    def state_name(self) -> str:
        return self._state.name

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def state(self) -> EpochState:
        return self._state

    # --- driving ------------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        deadline = self.next_deadline_ms()
        if deadline is not None and deadline <= now_ms:
            self.run_deadlines(now_ms)

    def next_deadline_ms(self) -> int | None:
        if self._stopped():
            return None
        deadlines = [self._state.deadline_ms(), self._flush_due_ms]
        for conn in self._connections.values():
            if conn.inflight is not None:
                deadlines.append(conn.deadline_ms)
            elif conn.backoff_until_ms > self._now_ms:
                deadlines.append(conn.backoff_until_ms)
        due = [d for d in deadlines if d is not None]
        return min(due) if due else None

    def run_deadlines(self, now_ms: int) -> None:
        for _ in range(8):  # a transition may make another deadline due at once
            self._poll(now_ms)
            deadline = self.next_deadline_ms()
            if deadline is None or deadline > now_ms:
                break
        self.log.log.maybe_flush(now_ms)  # closes segment files retired by truncation

    def append(self, values: list[bytes], now_ms: int) -> int:
        """Append one batch of records as the leader; returns its last offset. The records are
        committed once `high_watermark` passes that offset in this same epoch."""
        if not self.is_leader:
            raise NotLeaderError(f"node {self.node_id} is not the leader (leader {self.leader_id})")
        if not values or sum(len(v) + 24 for v in values) > BATCH_BYTES_MAX - 100:
            raise ValueError(f"a metadata batch holds 1 to {BATCH_BYTES_MAX} bytes of records")
        self._advance(now_ms)
        end = self.log.end_offset
        try:
            _, last = self.log.append_leader(values, self._state.epoch, now_ms)
        except (OSError, LogError) as error:
            # A write the log undid (a full disk) only fails this append; the controller refuses
            # the change and the node goes on. Anything half-written stops the node.
            if self.log.end_offset != end:
                self._fail(f"node {self.node_id}: the metadata log in {self.log.directory} cannot be "
                           f"written ({type(error).__name__}: {error})")
            raise
        if self._flush_due_ms is None:
            self._flush_due_ms = now_ms
        self._note_changes()
        return last

    def read_committed(self, start_offset: int, max_records: int) -> list[tuple[int, bytes]]:
        """Data records (offset, value) at or after `start_offset`, below the high watermark."""
        return self.log.read_committed(start_offset, max_records, self._high_watermark)

    def resign(self, now_ms: int) -> None:
        """Graceful shutdown of a leader: hand the epoch over (EndQuorumEpoch) at once."""
        self._advance(now_ms)
        if isinstance(self._state, LeaderState):
            self._resign(self._state.voters_by_fetch_offset(), now_ms)
            self._poll(now_ms)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.log.flush()
            self.log.close()

    # --- requests from other nodes ------------------------------------------------------------
    def handle_request(self, api_key: int, api_version: int, request: Any, now_ms: int,
                       expired: bool = False) -> Any:
        self._advance(now_ms)
        if self._stopped():
            return m.top_level_error(api_key, api_version, ErrorCode.broker_not_available)
        handler = self._handlers().get(api_key)
        if handler is None:
            raise ValueError(f"the Raft client does not serve api key {api_key}")
        if api_key != m.DESCRIBE_QUORUM and not self._cluster_id_matches(request.cluster_id):
            return m.top_level_error(api_key, api_version, ErrorCode.inconsistent_cluster_id)
        with self._storage():
            response = handler(api_version, request, now_ms, expired)
        if self._stopped():
            return m.top_level_error(api_key, api_version, ErrorCode.kafka_storage_error)
        self._poll(now_ms)
        return response

    def _handlers(self) -> dict[int, Callable[[int, Any, int, bool], Any]]:
        return {m.VOTE: self._on_vote, m.BEGIN_QUORUM_EPOCH: self._on_begin_quorum_epoch,
                m.END_QUORUM_EPOCH: self._on_end_quorum_epoch, m.FETCH: self._on_fetch,
                m.DESCRIBE_QUORUM: self._on_describe_quorum}

    def _cluster_id_matches(self, cluster_id: str | None) -> bool:
        # Kafka does not enforce the cluster id when the request carries none.
        return cluster_id is None or cluster_id == self.cluster_id

    def _election_response(self, api_key: int, version: int, error: ErrorCode,
                           granted: bool = False) -> Any:
        state = self._state
        return m.election_response(api_key, version, error, state.epoch, state.leader_id,
                                   self.voters.get(state.leader_id), vote_granted=granted)

    def _on_vote(self, version: int, request: Any, now_ms: int, expired: bool) -> Any:
        p = m.partition_of(request)
        if p is None:
            return m.top_level_error(m.VOTE, version, ErrorCode.invalid_request)
        candidate, epoch, pre_vote = int(p.replica_id), int(p.replica_epoch), bool(getattr(p, "pre_vote", False))
        if (p.last_offset < 0 or p.last_offset_epoch < 0 or p.last_offset_epoch > epoch
                or (p.last_offset_epoch == epoch and not pre_vote) or candidate < 0):
            return self._election_response(m.VOTE, version, ErrorCode.invalid_request)
        if getattr(request, "voter_id", -1) not in (-1, self.node_id):
            return self._election_response(m.VOTE, version, ErrorCode.invalid_voter_key)
        if not self.is_voter or candidate not in self.voters:
            return self._election_response(m.VOTE, version, ErrorCode.inconsistent_voter_set)
        if epoch < self.epoch:
            return self._election_response(m.VOTE, version, ErrorCode.fenced_leader_epoch)
        if epoch > self.epoch and not pre_vote:
            self._become_unattached(epoch, now_ms)
        ours = (self.log.last_fetched_epoch, self.log.end_offset)
        up_to_date = (int(p.last_offset_epoch), int(p.last_offset)) >= ours
        granted = self._state.can_grant_vote(candidate, up_to_date, pre_vote, now_ms)
        if granted and not pre_vote and self._state.voted_id < 0:
            self._record_vote(candidate, now_ms)
        log.debug("node %d: %s from %d in epoch %d %s", self.node_id,
                  "pre-vote" if pre_vote else "vote", candidate, epoch, "granted" if granted else "refused")
        return self._election_response(m.VOTE, version, ErrorCode.none, granted)

    def _on_begin_quorum_epoch(self, version: int, request: Any, now_ms: int, expired: bool) -> Any:
        p = m.partition_of(request)
        if p is None:
            return m.top_level_error(m.BEGIN_QUORUM_EPOCH, version, ErrorCode.invalid_request)
        leader, epoch = int(p.leader_id), int(p.leader_epoch)
        if getattr(request, "voter_id", -1) not in (-1, self.node_id):
            return self._election_response(m.BEGIN_QUORUM_EPOCH, version, ErrorCode.invalid_voter_key)
        if not self.is_voter or leader not in self.voters:
            return self._election_response(m.BEGIN_QUORUM_EPOCH, version,
                                           ErrorCode.inconsistent_voter_set)
        if epoch < self.epoch:
            return self._election_response(m.BEGIN_QUORUM_EPOCH, version, ErrorCode.fenced_leader_epoch)
        self._maybe_transition(leader, epoch, now_ms)
        return self._election_response(m.BEGIN_QUORUM_EPOCH, version, ErrorCode.none)

    def _on_end_quorum_epoch(self, version: int, request: Any, now_ms: int, expired: bool) -> Any:
        p = m.partition_of(request)
        if p is None:
            return m.top_level_error(m.END_QUORUM_EPOCH, version, ErrorCode.invalid_request)
        leader, epoch = int(p.leader_id), int(p.leader_epoch)
        if not self.is_voter or leader not in self.voters:
            return self._election_response(m.END_QUORUM_EPOCH, version,
                                           ErrorCode.inconsistent_voter_set)
        if epoch < self.epoch:
            return self._election_response(m.END_QUORUM_EPOCH, version, ErrorCode.fenced_leader_epoch)
        self._maybe_transition(leader, epoch, now_ms)
        state = self._state
        if isinstance(state, FollowerState) and state.leader_id == leader:
            # The leader is going: the most caught-up successors stand first.
            state.fetch_deadline_ms = now_ms + self._end_epoch_backoff(m.preferred_successors(p))
            state.leader_alive = False
        return self._election_response(m.END_QUORUM_EPOCH, version, ErrorCode.none)

    def _end_epoch_backoff(self, successors: list[int]) -> int:
        """Kafka's strict exponential backoff by our place among the preferred successors."""
        maximum = self.config.election_backoff_max_ms
        position = successors.index(self.node_id) if self.node_id in successors else len(successors)
        if position == 0:
            return 0
        if position >= len(successors):
            return maximum
        return min(maximum, (maximum >> (len(successors) - 1)) << (position - 1))

    def _on_fetch(self, version: int, request: Any, now_ms: int, expired: bool) -> Any:
        p = m.partition_of(request)
        if p is None:
            return m.top_level_error(m.FETCH, version, ErrorCode.invalid_request)
        replica, wait_ms = m.fetch_replica_id(request), m.max_wait_ms(request)
        if (wait_ms < 0 or p.fetch_offset < 0 or p.last_fetched_epoch < 0
                or p.last_fetched_epoch > p.current_leader_epoch or replica == self.node_id):
            return self._fetch_error(version, ErrorCode.invalid_request)
        error = self._leader_only_error(int(p.current_leader_epoch))
        if error is not None:
            return self._fetch_error(version, error)
        state = self._state
        assert isinstance(state, LeaderState)
        if replica >= 0 and not state.claim_replica_id(replica, getattr(p, "replica_directory_id", None), now_ms):
            return self._fetch_error(version, ErrorCode.duplicate_broker_registration)
        fetch_offset = int(p.fetch_offset)
        diverging = self.log.validate_offset_and_epoch(fetch_offset, int(p.last_fetched_epoch))
        records = b""
        if diverging is None:
            if fetch_offset > self.log.end_offset:
                return self._fetch_error(version, ErrorCode.offset_out_of_range)
            if replica >= 0 and state.update_replica(replica, fetch_offset, self.log.end_offset, now_ms):
                self._leader_high_watermark_moved(state)
            if fetch_offset < self.log.end_offset:
                records = self.log.read(fetch_offset, max(1, min(int(p.partition_max_bytes), BATCH_BYTES_MAX)))
        high_watermark = -1 if state.high_watermark is None else state.high_watermark
        replica_state = state.voter_states.get(replica) or state.observer_states.get(replica)
        if (not records and diverging is None and wait_ms > 0 and not expired
                and (replica_state is None or replica_state.high_watermark_sent == high_watermark)):
            return None  # nothing new for it: the caller holds the fetch
        if replica_state is not None:
            replica_state.high_watermark_sent = high_watermark
        return m.fetch_response(version, ErrorCode.none, state.epoch, self.node_id,
                                self.voters.get(self.node_id), high_watermark, records, diverging)

    def _fetch_error(self, version: int, error: ErrorCode) -> Any:
        state = self._state
        leader = -1 if isinstance(state, ResignedState) else state.leader_id
        return m.fetch_response(version, error, state.epoch, leader, self.voters.get(leader))

    def _leader_only_error(self, epoch: int) -> ErrorCode | None:
        if epoch < self.epoch:
            return ErrorCode.fenced_leader_epoch
        if epoch > self.epoch:
            return ErrorCode.unknown_leader_epoch
        if not isinstance(self._state, LeaderState):
            return ErrorCode.not_leader_or_follower
        return None

    def _on_describe_quorum(self, version: int, request: Any, now_ms: int, expired: bool) -> Any:
        if m.partition_of(request) is None:
            return m.describe_quorum_response(version, ErrorCode.unknown_topic_or_partition)
        state = self._state
        if not isinstance(state, LeaderState):
            return m.describe_quorum_response(version, ErrorCode.not_leader_or_follower)
        state.expire_observers(now_ms, OBSERVER_SESSION_MS)

        def describe(replica_id: int, s: Any) -> dict:
            local = replica_id == self.node_id
            directory = self.directory_id if local else state.directories.get(replica_id, (None, 0))[0]
            return {"replica_id": replica_id, "replica_directory_id": directory,
                    "log_end_offset": s.end_offset,
                    "last_fetch_timestamp": now_ms if local else s.last_fetch_ms,
                    "last_caught_up_timestamp": now_ms if local else s.last_caught_up_ms}

        listener = self.config.listener_name
        nodes = [{"node_id": v, "listeners": [{"name": listener, "host": h, "port": p}]}
                 for v, (h, p) in self.voters.items()]
        return m.describe_quorum_response(
            version, ErrorCode.none, self.node_id, state.epoch,
            -1 if state.high_watermark is None else state.high_watermark,
            [describe(v, s) for v, s in sorted(state.voter_states.items())],
            [describe(o, s) for o, s in sorted(state.observer_states.items())], nodes)

    # --- responses to our requests ------------------------------------------------------------
    def _send(self, destination: int, api_key: int, body: Any, now_ms: int) -> None:
        self._request_seq += 1
        request_id = self._request_seq
        timeout_ms = self.config.request_timeout_ms
        conn = self._connections.setdefault(destination, _Connection())
        conn.inflight, conn.deadline_ms = request_id, now_ms + timeout_ms + 1
        if api_key == m.FETCH:
            self._fetch_inflight = request_id
        state = self._state

        def on_response(response: Any, at_ms: int) -> None:
            self._on_response(destination, request_id, api_key, body, state, response, at_ms)

        self.outbox.append(OutboundRequest(destination, CONTROLLER, api_key, m.VERSIONS[api_key],
                                           body, timeout_ms, on_response, channel=RAFT_CHANNEL))

    def _on_response(self, source: int, request_id: int, api_key: int, body: Any,
                     state: EpochState, response: Any, now_ms: int) -> None:
        if self._stopped():
            return
        self._advance(now_ms)
        conn = self._connections.get(source)
        if conn is None or conn.inflight != request_id:
            return  # superseded: timed out, or the state changed since it was sent
        conn.inflight = None
        if self._fetch_inflight == request_id:
            self._fetch_inflight = None
        ok = False
        with self._storage():
            ok = response is not None and self._handle_response(source, api_key, body, state, response, now_ms)
        if ok:
            conn.failures = 0
        else:
            self._request_failed(conn, now_ms)
        self._poll(now_ms)

    def _request_failed(self, conn: _Connection, now_ms: int) -> None:
        # Doubling from retry.backoff.ms, but capped well below the fetch timeout: a follower
        # backing off past its fetch timeout would start an election against a live leader.
        conn.failures += 1
        backoff = self.config.retry_backoff_ms << min(conn.failures - 1, 10)
        cap = min(_RETRY_BACKOFF_MAX_MS, max(self.config.retry_backoff_ms, self.config.fetch_timeout_ms // 8))
        conn.backoff_until_ms = now_ms + max(1, min(backoff, cap))

    def _handle_response(self, source: int, api_key: int, body: Any, state: EpochState,
                         response: Any, now_ms: int) -> bool:
        top = ErrorCode(response.error_code)
        if top != ErrorCode.none:
            return self._on_error(source, top)
        p = m.response_partition(response)
        if p is None:
            return False
        if api_key == m.FETCH:
            error, leader, epoch = ErrorCode(p.error_code), p.current_leader.leader_id, p.current_leader.leader_epoch
        else:
            error, leader, epoch = ErrorCode(p.error_code), p.leader_id, p.leader_epoch
        handled = self._handle_common(source, error, int(leader), int(epoch), now_ms)
        if handled is not None:
            return handled
        if error == ErrorCode.duplicate_broker_registration:
            self._refused_by_leader(source, now_ms)
        if error != ErrorCode.none:
            return False
        if state is not self._state:
            return True  # an answer for a state we left: nothing more to learn from it
        if api_key == m.VOTE:
            assert isinstance(state, (ProspectiveState, CandidateState))
            state.election.record(source, bool(p.vote_granted))
        elif api_key == m.BEGIN_QUORUM_EPOCH and isinstance(state, LeaderState):
            state.voter_states[source].acknowledged = True
        elif api_key == m.END_QUORUM_EPOCH and isinstance(state, ResignedState):
            state.unacknowledged = [v for v in state.unacknowledged if v != source]
        elif api_key == m.FETCH and isinstance(state, FollowerState):
            return self._on_fetch_response(source, body, state, p, now_ms)
        return True

    def _on_error(self, source: int, error: ErrorCode) -> bool:
        if error == ErrorCode.inconsistent_cluster_id:
            self._disagreement(source, "INCONSISTENT_CLUSTER_ID",
                               f"cluster id {self.cluster_id!r} is not the quorum's")
        elif error == ErrorCode.inconsistent_voter_set:
            self._disagreement(source, "INCONSISTENT_VOTER_SET", f"controller.quorum.voters "
                               f"{sorted(self.voters)} is not the quorum's voter set")
        return False

    def _handle_common(self, source: int, error: ErrorCode, leader_id: int, epoch: int,
                       now_ms: int) -> bool | None:
        """Kafka's maybeHandleCommonResponse: learn epochs and leaders from any answer.
        True/False: handled (success or back off); None: go on with the specific handler."""
        if error in (ErrorCode.inconsistent_cluster_id, ErrorCode.inconsistent_voter_set):
            return self._on_error(source, error)
        if epoch < self.epoch or error == ErrorCode.unknown_leader_epoch:
            return True
        if epoch > self.epoch or error in (ErrorCode.fenced_leader_epoch, ErrorCode.not_leader_or_follower):
            before = self._state
            self._maybe_transition(leader_id, epoch, now_ms)
            if self._state is before and isinstance(before, FollowerState) and source == before.leader_id:
                before.leader_alive = False  # our leader says it no longer leads
            return self._state is not before
        if leader_id >= 0 and self._state.leader_id < 0:
            self._maybe_transition(leader_id, epoch, now_ms)
            return None if error == ErrorCode.none else True
        if error == ErrorCode.broker_not_available:
            return False
        return None

    def _on_fetch_response(self, source: int, body: Any, state: FollowerState, p: Any,
                           now_ms: int) -> bool:
        fetch_offset = body.topics[0].partitions[0].fetch_offset
        if source != state.leader_id or fetch_offset != self.log.end_offset:
            return True  # not from our leader, or our log moved since it was asked
        diverging = p.diverging_epoch
        if diverging.epoch >= 0 or diverging.end_offset >= 0:
            self._truncate(int(diverging.epoch), int(diverging.end_offset))
        elif p.records:
            if not self._append_fetched(bytes(p.records), state, now_ms):
                return False
        if diverging.epoch < 0 and p.high_watermark >= 0:
            self._set_high_watermark(min(int(p.high_watermark), self.log.end_offset))
        state.fetch_deadline_ms = now_ms + self.config.fetch_timeout_ms
        state.leader_alive = True
        state.searching = False
        self._refused_since_ms = None
        return True

    def _truncate(self, epoch: int, end_offset: int) -> None:
        offset = self.log.truncation_offset(epoch, end_offset)
        if offset < self._high_watermark:
            self._fail(f"node {self.node_id}: the leader's diverging epoch {epoch} (end offset "
                       f"{end_offset}) would truncate the metadata log to {offset}, below the high "
                       f"watermark {self._high_watermark}")
            return
        self.log.truncate_to(offset)
        log.info("node %d: truncated the metadata log to %d (leader %d, epoch %d)",
                 self.node_id, offset, self._state.leader_id, self.epoch)

    def _append_fetched(self, records: bytes, state: FollowerState, now_ms: int) -> bool:
        try:
            changes = self.log.append_follower(records, state.epoch, now_ms)
        except RaftLogError as error:
            log.warning("node %d: fetch from %d not appended: %s", self.node_id, state.leader_id, error)
            return False
        if not faults.active("skip-follower-flush"):
            self.log.flush()  # before the next Fetch announces the new offset to the leader
        ours = sorted(self.voters)
        for epoch, leader_id, voters in changes:
            if epoch == state.epoch and voters != ours:
                self._fail(f"node {self.node_id}: controller.quorum.voters names voters {ours}, but "
                           f"leader {leader_id} of epoch {epoch} runs with voters {voters}; every node "
                           "must have the same controller.quorum.voters")
        return True

    def _refused_by_leader(self, leader_id: int, now_ms: int) -> None:
        """The leader serves our node.id to another process (another log directory). A
        restarted node on a wiped disk is refused only until the old process's fetches age
        out; refused for twice the fetch timeout, the other process is alive: we stop."""
        if self._refused_since_ms is None:
            self._refused_since_ms = now_ms
        elif now_ms - self._refused_since_ms >= 2 * self.config.fetch_timeout_ms:
            self._fail(f"node {self.node_id}: another process with node.id {self.node_id} is "
                       f"replicating from leader {leader_id}; every node needs its own node.id")

    def _disagreement(self, source: int, error: str, problem: str) -> None:
        """A voter says our configuration is not the quorum's. One disagreeing node may itself
        be the misconfigured one; a majority of the voters disagreeing with us means we are."""
        sources = self._disagreements.setdefault(error, set())
        sources.add(source)
        others = len([v for v in self.voters if v != self.node_id])
        if len(sources) >= min(len(self.voters) // 2 + 1, max(others, 1)):
            self._fail(f"node {self.node_id}: {problem} (nodes {sorted(sources)} answered {error})")

    # --- the state machine --------------------------------------------------------------------
    def _poll(self, now_ms: int) -> None:
        self._advance(now_ms)
        if self._stopped():
            self._note_changes()
            return
        with self._storage():
            for _ in range(8):  # a single voter goes Unattached -> ... -> Leader in one pass
                before = self._state
                self._poll_state(now_ms)
                if self._state is before or self._stopped():
                    break
            self._maybe_flush(now_ms)
            if not self._stopped():
                self._expire_requests(now_ms)
                self._send_requests(now_ms)
        self._note_changes()

    def _poll_state(self, now_ms: int) -> None:
        state = self._state
        if isinstance(state, LeaderState):
            if state.deadline_ms() is not None and now_ms >= state.check_quorum_deadline_ms:
                log.warning("node %d: no majority fetched for %d ms in epoch %d; resigning",
                            self.node_id, state.check_quorum_timeout_ms, state.epoch)
                self._resign(state.voters_by_fetch_offset(), now_ms)
        elif isinstance(state, CandidateState):
            self._poll_candidate(state, now_ms)
        elif isinstance(state, ProspectiveState):
            if state.election.won:
                self._become_candidate(now_ms, state.retries)
            elif state.election.lost or now_ms >= state.election_deadline_ms:
                if state.leader_id >= 0:
                    self._become_follower(state.epoch, state.leader_id, now_ms, state.voted_id)
                else:
                    deadline = None if state.election.lost else now_ms
                    self._become_unattached(state.epoch, now_ms, voted_id=state.voted_id, deadline_ms=deadline)
        elif isinstance(state, FollowerState):
            if now_ms >= state.fetch_deadline_ms:
                if self.is_voter:
                    self._become_prospective(now_ms, 1)
                else:
                    state.fetch_deadline_ms = now_ms + self.config.fetch_timeout_ms
                    state.searching = True  # look for the leader through the voters
        elif isinstance(state, UnattachedState):
            if state.election_deadline_ms is not None and now_ms >= state.election_deadline_ms:
                self._become_prospective(now_ms, 1)
        elif isinstance(state, ResignedState):
            if now_ms >= state.election_deadline_ms:
                self._become_unattached(state.epoch + 1, now_ms, deadline_ms=now_ms)

    def _poll_candidate(self, state: CandidateState, now_ms: int) -> None:
        if state.election.won:
            self._become_leader(state, now_ms)
            return
        if state.backoff_until_ms is None and (state.election.lost or now_ms >= state.election_deadline_ms):
            state.backoff_until_ms = now_ms + self._election_backoff(state.retries)
        if state.backoff_until_ms is not None and now_ms >= state.backoff_until_ms:
            self._become_prospective(now_ms, state.retries + 1)

    def _send_requests(self, now_ms: int) -> None:
        state = self._state
        if isinstance(state, LeaderState):
            if now_ms >= state.begin_quorum_deadline_ms:
                state.begin_quorum_deadline_ms = now_ms + state.begin_quorum_interval_ms
                for voter in self._ready([v for v in state.voter_states if v != self.node_id], now_ms):
                    self._send(voter, m.BEGIN_QUORUM_EPOCH, m.begin_quorum_epoch_request(
                        self.cluster_id, voter, state.epoch, self.node_id, self.config.listener_name,
                        self.voters[self.node_id]), now_ms)
        elif isinstance(state, (ProspectiveState, CandidateState)):
            if isinstance(state, CandidateState) and state.backoff_until_ms is not None:
                return
            pre_vote = isinstance(state, ProspectiveState)
            for voter in self._ready(state.election.unrecorded(), now_ms):
                self._send(voter, m.VOTE, m.vote_request(
                    self.cluster_id, voter, state.epoch, self.node_id, self.log.last_fetched_epoch,
                    self.log.end_offset, pre_vote, self.directory_id), now_ms)
        elif isinstance(state, ResignedState):
            for voter in self._ready(state.unacknowledged, now_ms):
                self._send(voter, m.END_QUORUM_EPOCH, m.end_quorum_epoch_request(
                    self.cluster_id, state.epoch, self.node_id, state.preferred_successors,
                    self.config.listener_name, self.voters[self.node_id]), now_ms)
        elif self._fetch_inflight is None:
            self._maybe_fetch(state, now_ms)

    def _maybe_fetch(self, state: EpochState, now_ms: int) -> None:
        """Followers fetch from the leader; observers that know no (live) leader ask the
        voters in turn (a voter that is not the leader answers with the leader it knows)."""
        if isinstance(state, FollowerState) and not state.searching:
            target = [state.leader_id]
        elif not self.is_voter:
            self._next_bootstrap = (self._next_bootstrap + 1) % len(self.voters)
            target = [sorted(self.voters)[self._next_bootstrap]]
        else:
            return
        for destination in self._ready(target, now_ms):
            self._send(destination, m.FETCH, m.fetch_request(
                self.cluster_id, self.node_id, state.epoch, self.log.end_offset,
                self.log.last_fetched_epoch, self.config.fetch_max_wait_ms, BATCH_BYTES_MAX,
                self.directory_id), now_ms)

    def _ready(self, destinations: list[int], now_ms: int) -> list[int]:
        ready = []
        for destination in destinations:
            conn = self._connections.get(destination)
            if conn is None or (conn.inflight is None and now_ms >= conn.backoff_until_ms):
                ready.append(destination)
        return ready

    def _expire_requests(self, now_ms: int) -> None:
        """A request with no answer by its deadline counts as failed (the caller should have
        said so with on_response(None); this keeps us going if it did not)."""
        for destination in sorted(self._connections):
            conn = self._connections[destination]
            if conn.inflight is not None and now_ms >= conn.deadline_ms:
                if self._fetch_inflight == conn.inflight:
                    self._fetch_inflight = None
                conn.inflight = None
                self._request_failed(conn, now_ms)

    def _maybe_flush(self, now_ms: int) -> None:
        state = self._state
        if not isinstance(state, LeaderState):
            self._flush_due_ms = None
            return
        if self._flush_due_ms is not None:
            self.log.flush()
            self._flush_due_ms = None
        if state.update_local(self.log.flushed_offset, now_ms):
            self._leader_high_watermark_moved(state)

    def _leader_high_watermark_moved(self, state: LeaderState) -> None:
        assert state.high_watermark is not None
        self._set_high_watermark(state.high_watermark)

    def _set_high_watermark(self, offset: int) -> None:
        # A node's view of the committed prefix only grows (a new leader's first high
        # watermark lies past its epoch start, hence past anything committed before).
        if offset > self._high_watermark:
            self._high_watermark = offset

    # --- transitions --------------------------------------------------------------------------
    def _initial_state(self, now_ms: int) -> EpochState:
        """Kafka's QuorumState.initialize: resume what the quorum-state file says."""
        try:
            stored = quorum_state.read(self.fs, self.log.directory)
        except QuorumStateError as error:
            self._fail(f"node {self.node_id}: {error}")
            return UnattachedState(0, None)
        if stored is None:
            stored = ElectionState(0, voters=tuple(self.voters))
        if stored.voters and list(stored.voters) != sorted(self.voters):
            self._fail(f"node {self.node_id}: controller.quorum.voters names voters {sorted(self.voters)}, "
                       f"but {quorum_state.path(self.log.directory)} was written with voters "
                       f"{list(stored.voters)}; fix controller.quorum.voters (or wipe the metadata log)")
            return UnattachedState(stored.epoch, None)
        state = self._resume(stored, now_ms)
        self._persist(state)
        return state

    def _resume(self, stored: ElectionState, now_ms: int) -> EpochState:
        if stored.epoch < self.log.last_fetched_epoch:
            return UnattachedState(self.log.last_fetched_epoch, self._unattached_deadline(now_ms))
        if stored.leader_id == self.node_id and self.is_voter:
            # A leader that restarts may have lost unflushed records of its epoch: it must
            # never lead (append in) that epoch again, so it resigns it.
            return ResignedState(stored.epoch, self.node_id, list(self.voters),
                                 self._election_deadline(now_ms), [])
        if stored.voted_id == self.node_id and self.is_voter:
            return CandidateState(stored.epoch, self.node_id, list(self.voters),
                                  self._election_deadline(now_ms), 1)
        if stored.leader_id >= 0 and stored.leader_id in self.voters:
            return FollowerState(stored.epoch, stored.leader_id,
                                 now_ms + self.config.fetch_timeout_ms, stored.voted_id)
        return UnattachedState(stored.epoch, self._unattached_deadline(now_ms), voted_id=stored.voted_id)

    def _persist(self, state: EpochState) -> None:
        quorum_state.write(self.fs, self.log.directory, ElectionState(
            state.epoch, state.leader_id, state.voted_id, tuple(self.voters)))

    def _enter(self, state: EpochState, durable: bool) -> None:
        if durable:
            self._persist(state)
        log.info("node %d: %r -> %r", self.node_id, self._state, state)
        self._state = state
        self._connections.clear()  # answers to the old state's requests are stale
        self._fetch_inflight = None

    def _maybe_transition(self, leader_id: int, epoch: int, now_ms: int) -> None:
        """Act on an epoch and leader learned from a request or a response."""
        state = self._state
        if leader_id == self.node_id or (epoch == state.epoch and leader_id >= 0
                                         and state.leader_id >= 0 and leader_id != state.leader_id):
            return  # inconsistent with what we know (a stale message): ignore it
        if leader_id >= 0 and leader_id not in self.voters:
            self._fail(f"node {self.node_id}: the quorum's leader is node {leader_id}, which is not "
                       f"in this node's controller.quorum.voters {sorted(self.voters)}")
            return
        if epoch > state.epoch:
            if leader_id >= 0:
                self._become_follower(epoch, leader_id, now_ms)
            else:
                self._become_unattached(epoch, now_ms)
        elif epoch == state.epoch and leader_id >= 0 and state.leader_id < 0:
            self._become_follower(epoch, leader_id, now_ms, state.voted_id)

    def _become_unattached(self, epoch: int, now_ms: int, leader_id: int = -1, voted_id: int = -1,
                           deadline_ms: int | None = None) -> None:
        if deadline_ms is None or not self.is_voter:
            deadline_ms = self._unattached_deadline(now_ms)
        self._enter(UnattachedState(epoch, deadline_ms, leader_id, voted_id), durable=True)

    def _become_follower(self, epoch: int, leader_id: int, now_ms: int, voted_id: int = -1) -> None:
        self._enter(FollowerState(epoch, leader_id, now_ms + self.config.fetch_timeout_ms, voted_id),
                    durable=True)

    def _become_prospective(self, now_ms: int, retries: int) -> None:
        state = self._state
        self._enter(ProspectiveState(state.epoch, self.node_id, list(self.voters),
                                     self._election_deadline(now_ms), retries,
                                     state.leader_id, state.voted_id), durable=False)

    def _record_vote(self, candidate: int, now_ms: int) -> None:
        """Grant our one vote of this epoch: durable before the answer leaves."""
        state = self._state
        if isinstance(state, ProspectiveState):
            self._enter(ProspectiveState(state.epoch, self.node_id, list(self.voters),
                                         self._election_deadline(now_ms), state.retries,
                                         state.leader_id, candidate), durable=True)
        else:
            self._enter(UnattachedState(state.epoch, self._election_deadline(now_ms),
                                        state.leader_id, candidate), durable=True)

    def _become_candidate(self, now_ms: int, retries: int) -> None:
        self._enter(CandidateState(self.epoch + 1, self.node_id, list(self.voters),
                                   self._election_deadline(now_ms), retries), durable=True)

    def _become_leader(self, candidate: CandidateState, now_ms: int) -> None:
        epoch_start = self.log.end_offset
        state = LeaderState(candidate.epoch, self.node_id, list(self.voters), epoch_start,
                            sorted(candidate.election.granted), self.config.fetch_timeout_ms,
                            now_ms)
        self._enter(state, durable=True)
        self.log.append_leader_change(state.epoch, self.node_id, list(self.voters), state.granting, now_ms)
        self._flush_due_ms = now_ms
        log.info("node %d: leader of epoch %d from offset %d", self.node_id, state.epoch, epoch_start)

    def _resign(self, successors: list[int], now_ms: int) -> None:
        state = self._state
        self._enter(ResignedState(state.epoch, self.node_id, list(self.voters),
                                  self._election_deadline(now_ms), successors), durable=False)

    # --- helpers ------------------------------------------------------------------------------
    def _election_deadline(self, now_ms: int) -> int:
        if len(self.voters) == 1 and self.is_voter:
            return now_ms  # the only voter elects itself at once
        timeout = self.config.election_timeout_ms
        return now_ms + (timeout + self._rng.randrange(timeout) if timeout > 0 else 0)

    def _unattached_deadline(self, now_ms: int) -> int | None:
        return self._election_deadline(now_ms) if self.is_voter else None

    def _election_backoff(self, retries: int) -> int:
        """Kafka's binary exponential election backoff."""
        spread = self._rng.randrange(2 << min(20, max(retries, 1) - 1))
        return min(ELECTION_BACKOFF_BASE_MS * spread, self.config.election_backoff_max_ms)

    def _advance(self, now_ms: int) -> None:
        if now_ms > self._now_ms:
            self._now_ms = now_ms

    @contextmanager
    def _storage(self, reraise: bool = False) -> Iterator[None]:
        """A metadata log or quorum-state that cannot be written stops the node (as Kafka
        stops on a failed metadata log directory)."""
        try:
            yield
        except (OSError, LogError) as error:
            self._fail(f"node {self.node_id}: the metadata log in {self.log.directory} cannot be "
                       f"written ({type(error).__name__}: {error})")
            if reraise:
                raise

    def _stopped(self) -> bool:
        return self._closed or self.fatal_error is not None

    def _fail(self, message: str) -> None:
        if self.fatal_error is None:
            self.fatal_error = message
            log.error("%s", message)

    def _current_signature(self) -> tuple:
        return (self.log.end_offset, self._high_watermark, self._state.leader_id, self._state.epoch,
                self._state.name, self.fatal_error)

    def _note_changes(self) -> None:
        signature = self._current_signature()
        if signature != self._signature:
            self._signature = signature
            self.version += 1
