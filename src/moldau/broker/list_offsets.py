"""ListOffsets (key 2), versions 1–10: find offsets by timestamp.

Special timestamps, as Kafka: -2 earliest (log start offset), -1 latest (the high watermark,
or with isolation_level read_committed the last stable offset: below it no transaction is
open), -3 the record with the largest timestamp (v7+), -4 earliest local (v8+; there is no
tiered storage, so the log start offset). A timestamp ≥ 0 gives the first offset whose
timestamp is at or after it, or offset -1 when there is none below the high watermark
(read_committed: the last stable offset).

A leader elected a moment ago may not know the high watermark yet: the followers learn it from
the leader's Fetch answers, so the old leader's last acknowledged writes can lie above the high
watermark the new one starts with, until its followers fetch from it. Until the high watermark
reaches where this leader's epoch began, a consumer asking for the latest offset (or for a
timestamp found only above the high watermark) hears OFFSET_NOT_AVAILABLE, which clients retry,
instead of an end offset below records already acknowledged (Kafka's rule, for consumers:
replica_id -1).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.replication.partition import PartitionError
from moldau.security import acls as a

EARLIEST, LATEST, MAX_TIMESTAMP, EARLIEST_LOCAL, EARLIEST_PENDING_UPLOAD = -2, -1, -3, -4, -5
READ_COMMITTED = 1  # isolation_level (v2+)


@apis.api(2, 1, 10)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    topics = []
    for topic in request.topics:
        if not core.authorize(ctx, a.DESCRIBE, a.TOPIC, topic.name):
            partitions = [{"partition_index": p.partition_index, "error_code": ErrorCode.topic_authorization_failed,
                           "timestamp": -1, "offset": -1, "leader_epoch": -1} for p in topic.partitions]
        else:
            consumer = getattr(request, "replica_id", -1) == -1
            partitions = [_lookup(core, topic.name, p, getattr(request, "isolation_level", 0), consumer)
                          for p in topic.partitions]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _lookup(core, name: str, request_partition, isolation_level: int, consumer: bool = True) -> dict:
    result = {"partition_index": request_partition.partition_index, "error_code": ErrorCode.none,
              "timestamp": -1, "offset": -1, "leader_epoch": -1}
    try:
        partition = core.leader_partition(name, request_partition.partition_index,
                                          getattr(request_partition, "current_leader_epoch", -1))
    except PartitionError as error:
        result["error_code"] = error.error_code
        return result
    timestamp = request_partition.timestamp
    log = partition.log
    # read_committed sees up to the last stable offset, read_uncommitted up to the high watermark
    visible_end = partition.last_stable_offset if isolation_level == READ_COMMITTED else partition.high_watermark
    lagging = consumer and partition.leader_epoch_start_offset > partition.high_watermark
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        offset = partition.log_start_offset
    elif timestamp == LATEST:
        if lagging:
            result["error_code"] = ErrorCode.offset_not_available
            return result
        offset = visible_end
        result["leader_epoch"] = partition.leader_epoch
    elif timestamp == MAX_TIMESTAMP:
        found = log.max_timestamp_offset()
        if found is None:
            return result
        offset, result["timestamp"] = found
    elif timestamp == EARLIEST_PENDING_UPLOAD:
        return result
    elif timestamp < 0:
        result["error_code"] = ErrorCode.invalid_request
        return result
    else:
        found = log.offset_for_timestamp(timestamp)
        if found is None or found[0] >= visible_end:
            if lagging:
                result["error_code"] = ErrorCode.offset_not_available
            return result
        offset, result["timestamp"] = found
    result["offset"] = offset
    if result["leader_epoch"] < 0:
        result["leader_epoch"] = log.leader_epoch_cache.epoch_for_offset(offset)
    return result
