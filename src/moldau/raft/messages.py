"""Kafka's quorum RPCs as kio objects: the requests this node sends, the responses it builds.

Theory of operation
-------------------
Requests go out in Kafka 4.1's versions (`VERSIONS`): Vote v2 (with KIP-996's pre_vote),
BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v17 (the metadata topic named by its id,
Kafka's `Uuid.METADATA_TOPIC_ID`). Responses are described once as plain dicts with Kafka's
field names and built for the version the request came in (`protocol.build` drops what a
version lacks), so older versions (Vote v0-v1, BeginQuorumEpoch v0, EndQuorumEpoch v0,
DescribeQuorum v0-v1, Fetch v13-v16) are answered too. Every response names the sender's
view of the epoch and leader; when the leader is known, its CONTROLLER endpoint rides along
in `node_endpoints` (v1+/v2+/v16+) as Kafka does.

Readers (`partition_of`, `fields_of`) hide the few per-version differences of the requests
(v0 Fetch carries `replica_id` at the top, v15+ inside `replica_state`; EndQuorumEpoch v0 names
successors as ids, v1 as `preferred_candidates`).
"""

from __future__ import annotations

import datetime
import sys
import uuid
from typing import Any

from kio.schema.begin_quorum_epoch.v1 import request as bqe
from kio.schema.end_quorum_epoch.v1 import request as eqe
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v17 import request as fetch
from kio.schema.vote.v2 import request as vote

from moldau.protocol.build import build
from moldau.protocol.codec import response_schema

from .log import PARTITION, TOPIC, TOPIC_ID

FETCH = 1
VOTE = 52
BEGIN_QUORUM_EPOCH = 53
END_QUORUM_EPOCH = 54
DESCRIBE_QUORUM = 55
# The versions this node sends, and the ranges it answers.
VERSIONS = {VOTE: 2, BEGIN_QUORUM_EPOCH: 1, END_QUORUM_EPOCH: 1, FETCH: 17}
SERVED = {VOTE: (0, 2), BEGIN_QUORUM_EPOCH: (0, 1), END_QUORUM_EPOCH: (0, 1),
          DESCRIBE_QUORUM: (0, 2), FETCH: (13, 17)}

Endpoint = tuple[str, int]
_NO_THROTTLE = datetime.timedelta(0)


# --- requests we send ---------------------------------------------------------------------------
def vote_request(cluster_id: str, voter_id: int, epoch: int, candidate_id: int,
                 last_epoch: int, last_offset: int, pre_vote: bool,
                 directory_id: uuid.UUID | None = None) -> vote.VoteRequest:
    partition = vote.PartitionData(
        partition_index=PARTITION, replica_epoch=epoch, replica_id=candidate_id,
        replica_directory_id=directory_id, voter_directory_id=None, last_offset_epoch=last_epoch,
        last_offset=last_offset, pre_vote=pre_vote)
    return vote.VoteRequest(cluster_id=cluster_id, voter_id=voter_id, topics=(
        vote.TopicData(topic_name=TOPIC, partitions=(partition,)),))


def begin_quorum_epoch_request(cluster_id: str, voter_id: int, epoch: int, leader_id: int,
                               listener: str, endpoint: Endpoint) -> bqe.BeginQuorumEpochRequest:
    partition = bqe.PartitionData(partition_index=PARTITION, voter_directory_id=None,
                                  leader_id=leader_id, leader_epoch=epoch)
    return bqe.BeginQuorumEpochRequest(
        cluster_id=cluster_id, voter_id=voter_id,
        topics=(bqe.TopicData(topic_name=TOPIC, partitions=(partition,)),),
        leader_endpoints=(bqe.LeaderEndpoint(name=listener, host=endpoint[0], port=endpoint[1]),))


def end_quorum_epoch_request(cluster_id: str, epoch: int, leader_id: int, successors: list[int],
                             listener: str, endpoint: Endpoint) -> eqe.EndQuorumEpochRequest:
    partition = eqe.PartitionData(
        partition_index=PARTITION, leader_id=leader_id, leader_epoch=epoch,
        preferred_candidates=tuple(eqe.ReplicaInfo(candidate_id=s, candidate_directory_id=None)
                                   for s in successors))
    return eqe.EndQuorumEpochRequest(
        cluster_id=cluster_id, topics=(eqe.TopicData(topic_name=TOPIC, partitions=(partition,)),),
        leader_endpoints=(eqe.LeaderEndpoint(name=listener, host=endpoint[0], port=endpoint[1]),))


def fetch_request(cluster_id: str, replica_id: int, epoch: int, fetch_offset: int,
                  last_fetched_epoch: int, max_wait_ms: int, max_bytes: int,
                  directory_id: uuid.UUID | None = None) -> fetch.FetchRequest:
    partition = fetch.FetchPartition(
        partition=PARTITION, current_leader_epoch=epoch, fetch_offset=fetch_offset,
        last_fetched_epoch=last_fetched_epoch, log_start_offset=-1, partition_max_bytes=max_bytes,
        replica_directory_id=directory_id)
    return fetch.FetchRequest(
        cluster_id=cluster_id, replica_state=fetch.ReplicaState(replica_id=replica_id),
        max_wait=datetime.timedelta(milliseconds=max_wait_ms), min_bytes=0, max_bytes=max_bytes,
        topics=(fetch.FetchTopic(topic_id=TOPIC_ID, partitions=(partition,)),),
        forgotten_topics_data=())


# --- reading requests ---------------------------------------------------------------------------
def partition_of(request: Any) -> Any | None:
    """The one partition of a single-partition quorum request for __cluster_metadata-0."""
    topics = request.topics
    if len(topics) != 1 or len(topics[0].partitions) != 1:
        return None
    topic = topics[0]
    if getattr(topic, "topic_id", None) is not None:
        if topic.topic_id != TOPIC_ID:
            return None
    elif getattr(topic, "topic_name", getattr(topic, "topic", None)) != TOPIC:
        return None
    partition = topic.partitions[0]
    index = getattr(partition, "partition_index", getattr(partition, "partition", None))
    return partition if index == PARTITION else None


def fetch_replica_id(request: Any) -> int:
    state = getattr(request, "replica_state", None)
    return int(state.replica_id) if state is not None else int(getattr(request, "replica_id", -1))


def preferred_successors(partition: Any) -> list[int]:
    candidates = getattr(partition, "preferred_candidates", None)
    if candidates is not None:
        return [int(c.candidate_id) for c in candidates]
    return [int(s) for s in getattr(partition, "preferred_successors", ())]


def max_wait_ms(request: Any) -> int:
    wait = request.max_wait
    return int(wait.total_seconds() * 1000) if isinstance(wait, datetime.timedelta) else int(wait)


# --- responses we build -------------------------------------------------------------------------
def _endpoints(leader_id: int, endpoint: Endpoint | None) -> list[dict]:
    if leader_id < 0 or endpoint is None:
        return []
    return [{"node_id": leader_id, "host": endpoint[0], "port": endpoint[1]}]


def election_response(api_key: int, version: int, error: ErrorCode, epoch: int,
                      leader_id: int, endpoint: Endpoint | None,
                      top_error: ErrorCode = ErrorCode.none, vote_granted: bool = False) -> Any:
    """A Vote, BeginQuorumEpoch or EndQuorumEpoch response (they share their shape)."""
    partition = {"partition_index": PARTITION, "error_code": error, "leader_id": leader_id,
                 "leader_epoch": epoch, "vote_granted": vote_granted}
    return build(response_schema(api_key, version), {
        "error_code": top_error,
        "topics": [{"topic_name": TOPIC, "partitions": [partition]}],
        "node_endpoints": _endpoints(leader_id, endpoint),
    })


def top_level_error(api_key: int, version: int, error: ErrorCode) -> Any:
    """A response that carries only a top-level error (INCONSISTENT_CLUSTER_ID, ...)."""
    data: dict[str, Any] = {"error_code": error, "topics": [], "responses": [],
                            "throttle_time": 0, "session_id": 0, "error_message": None,
                            "nodes": []}
    return build(response_schema(api_key, version), data)


def fetch_response(version: int, error: ErrorCode, epoch: int, leader_id: int,
                   endpoint: Endpoint | None, high_watermark: int = -1, records: bytes = b"",
                   diverging: tuple[int, int] | None = None) -> Any:
    """A Fetch response, v13-v17 (the versions the metadata partition is fetched with).
    Built directly from the version's kio classes: this is the quorum's steady-state path."""
    cls = response_schema(FETCH, version)
    schema = sys.modules[cls.__module__]
    epoch_end = (schema.EpochEndOffset(epoch=diverging[0], end_offset=diverging[1])
                 if diverging else schema.EpochEndOffset())
    partition = schema.PartitionData(
        partition_index=PARTITION, error_code=error, high_watermark=high_watermark,
        last_stable_offset=high_watermark, log_start_offset=0, diverging_epoch=epoch_end,
        current_leader=schema.LeaderIdAndEpoch(leader_id=leader_id, leader_epoch=epoch),
        snapshot_id=schema.SnapshotId(), aborted_transactions=None, preferred_read_replica=-1,
        records=records)
    topic = schema.FetchableTopicResponse(topic_id=TOPIC_ID, partitions=(partition,))
    extra: dict[str, Any] = {}
    if version >= 16:
        extra["node_endpoints"] = tuple(schema.NodeEndpoint(**e) for e in _endpoints(leader_id, endpoint))
    return cls(throttle_time=_NO_THROTTLE, error_code=ErrorCode.none, session_id=0,
               responses=(topic,), **extra)


def describe_quorum_response(version: int, error: ErrorCode, leader_id: int = -1, epoch: int = -1,
                             high_watermark: int = -1, voters: list[dict] | None = None,
                             observers: list[dict] | None = None,
                             nodes: list[dict] | None = None) -> Any:
    partition = {"partition_index": PARTITION, "error_code": error, "error_message": None,
                 "leader_id": leader_id, "leader_epoch": epoch, "high_watermark": high_watermark,
                 "current_voters": voters or [], "observers": observers or []}
    return build(response_schema(DESCRIBE_QUORUM, version), {
        "error_code": ErrorCode.none, "error_message": None,
        "topics": [{"topic_name": TOPIC, "partitions": [partition]}],
        "nodes": nodes or [],
    })


# --- reading responses --------------------------------------------------------------------------
def response_partition(response: Any) -> Any | None:
    """The one partition of a quorum response, or None when it has none (a top-level error)."""
    topics = getattr(response, "topics", None)
    if topics is None:
        topics = getattr(response, "responses", ())
    if len(topics) != 1 or len(topics[0].partitions) != 1:
        return None
    return topics[0].partitions[0]
