"""DeleteRecords (key 21), versions 0–2: move a partition's log start offset forward.

The offset must lie between the log start offset and the high watermark (-1 means the high
watermark), else OFFSET_OUT_OF_RANGE. Whole segments below the new start are deleted; reads
below it get OFFSET_OUT_OF_RANGE from then on. The response's low_watermark is the new log
start offset.

Refused as Kafka refuses them, before any offset check: internal topics (INVALID_TOPIC_EXCEPTION
— __consumer_offsets holds every group's committed offsets) and topics whose cleanup.policy
does not include `delete` (POLICY_VIOLATION: a compacted topic keeps the latest value per key).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.controller import INTERNAL_TOPICS
from moldau.replication.partition import PartitionError
from moldau.security import acls as a


@apis.api(21, 0, 2)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    topics = []
    for topic in request.topics:
        if not core.authorize(ctx, a.DELETE, a.TOPIC, topic.name):
            partitions = [{"partition_index": p.partition_index, "low_watermark": -1,
                           "error_code": ErrorCode.topic_authorization_failed} for p in topic.partitions]
        else:
            partitions = [_delete(core, topic.name, p) for p in topic.partitions]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _delete(core, name, requested) -> dict:
    result = {"partition_index": requested.partition_index, "low_watermark": -1, "error_code": ErrorCode.none}
    if name in INTERNAL_TOPICS:
        result["error_code"] = ErrorCode.invalid_topic_exception
        return result
    try:
        partition = core.leader_partition(name, requested.partition_index)
    except PartitionError as error:
        result["error_code"] = error.error_code
        return result
    if not partition.log.config.delete:
        result["error_code"] = ErrorCode.policy_violation
        return result
    offset = partition.high_watermark if requested.offset == -1 else requested.offset
    if offset < 0 or offset > partition.high_watermark:
        result["error_code"] = ErrorCode.offset_out_of_range
        return result
    if offset > partition.log_start_offset:
        partition.log.delete_records_before(offset)
    result["low_watermark"] = partition.log_start_offset
    return result
