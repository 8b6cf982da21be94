"""ElectLeaders (key 43), versions 0–2: preferred or unclean leader election.

A partition's preferred leader is the first of its replicas. An election is needed when the
leader is not the preferred replica (preferred, type 0) or when the partition has no leader
(unclean, type 1). On a single node every partition is led by its only replica, so each named
partition answers ELECTION_NOT_NEEDED, as Kafka does; with `topic_partitions` null (all
partitions) the answer lists only partitions an election changed, which here is none. Unknown
topics and partitions get UNKNOWN_TOPIC_OR_PARTITION. Elections in a cluster will be controller
records (PartitionChangeRecord) like every other leadership change.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a

PREFERRED, UNCLEAN = 0, 1


@apis.api(43, 0, 2)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    election_type = getattr(request, "election_type", PREFERRED)  # v0 has no type: preferred
    if not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "replica_election_results": [
            {"topic": t.topic, "partition_result": [_result(i, ErrorCode.cluster_authorization_failed, None) for i in t.partitions]}
            for t in request.topic_partitions or ()]}
    if election_type not in (PREFERRED, UNCLEAN):
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "replica_election_results": []}
    results = []
    for topic in request.topic_partitions or ():
        partitions = [_elect(core, topic.topic, index, election_type) for index in topic.partitions]
        results.append({"topic": topic.topic, "partition_result": partitions})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "replica_election_results": results}


def _elect(core, topic: str, index: int, election_type: int) -> dict:
    described = core.image.topic(topic)
    image = described.partitions.get(index) if described is not None else None
    if image is None:
        return _result(index, ErrorCode.unknown_topic_or_partition, "this topic-partition does not exist")
    if election_type == PREFERRED:
        needed = not image.replicas or image.leader != image.replicas[0]
    else:
        needed = image.leader < 0
    if not needed:
        return _result(index, ErrorCode.election_not_needed, "the leader is already the one an election would choose")
    # Unreachable on one node (its only replica always leads); the replicated cluster will run
    # the election in the controller. Until then, say so rather than pretend.
    code = ErrorCode.preferred_leader_not_available if election_type == PREFERRED else ErrorCode.eligible_leaders_not_available
    return _result(index, code, "leader elections need the replicated cluster, which this broker is not part of")


def _result(index: int, code: ErrorCode, message: str) -> dict:
    return {"partition_id": index, "error_code": code, "error_message": message}
