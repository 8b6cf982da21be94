"""OffsetForLeaderEpoch (key 23), versions 2–4 (Kafka 4's floor is 2).

For a requested leader epoch, the largest epoch ≤ it that this log knows and the offset where
that epoch ended (the start of the next epoch, or the log end offset for the current one).
Consumers use it to validate their position after a leader change (KIP-320), followers to
find where to truncate (KIP-101/279). Unknown epochs give (-1, -1), as Kafka.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.replication.partition import PartitionError
from moldau.security import acls as a


@apis.api(23, 2, 4)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    topics = []
    # Followers (replica id ≥ 0) need CLUSTER_ACTION, consumers DESCRIBE on the topic.
    follower = getattr(request, "replica_id", -1) >= 0
    cluster_ok = follower and core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME)
    for topic in request.topics:
        if not (cluster_ok if follower else core.authorize(ctx, a.DESCRIBE, a.TOPIC, topic.topic)):
            partitions = [{"error_code": ErrorCode.topic_authorization_failed, "partition": p.partition,
                           "leader_epoch": -1, "end_offset": -1} for p in topic.partitions]
        else:
            partitions = [_end_offset(core, topic.topic, p) for p in topic.partitions]
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _end_offset(core, name, requested) -> dict:
    result = {"error_code": ErrorCode.none, "partition": requested.partition, "leader_epoch": -1, "end_offset": -1}
    try:
        partition = core.leader_partition(name, requested.partition, requested.current_leader_epoch)
    except PartitionError as error:
        result["error_code"] = error.error_code
        return result
    epoch, end_offset = partition.log.end_offset_for_epoch(requested.leader_epoch)
    result["leader_epoch"], result["end_offset"] = epoch, end_offset
    return result
