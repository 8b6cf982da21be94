"""DescribeProducers (key 61), version 0: the idempotent producers a partition's leader tracks.

Answered from the partition log's producer state (log/producer_state.py): per producer id its
epoch, the last sequence it wrote, the timestamp of its last batch, the coordinator epoch of
the last marker written for it (-1: none yet) and the first offset of its open transaction
in this partition (-1: none) — what `kafka-transactions.sh describe-producers` shows and
`find-hanging` / `abort` use. Errors per partition as Kafka: UNKNOWN_TOPIC_OR_PARTITION,
NOT_LEADER_OR_FOLLOWER.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.replication.partition import PartitionError
from moldau.security import acls as a


@apis.api(61, 0, 0)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    topics = []
    for topic in request.topics:
        if not core.authorize(ctx, a.READ, a.TOPIC, topic.name):
            partitions = [{"partition_index": index, "error_code": ErrorCode.topic_authorization_failed,
                           "error_message": None, "active_producers": []} for index in topic.partition_indexes]
        else:
            partitions = [_describe(core, topic.name, index) for index in topic.partition_indexes]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _describe(core, topic: str, index: int) -> dict:
    try:
        partition = core.leader_partition(topic, index)
    except PartitionError as error:
        return {"partition_index": index, "error_code": error.error_code, "error_message": None,
                "active_producers": []}
    producers = [
        {"producer_id": producer_id, "producer_epoch": entry.producer_epoch,
         "last_sequence": entry.last_sequence, "last_timestamp": entry.last_timestamp,
         "coordinator_epoch": entry.coordinator_epoch, "current_txn_start_offset": entry.current_txn_first_offset}
        for producer_id, entry in sorted(partition.log.producer_state.producers.items())
    ]
    return {"partition_index": index, "error_code": ErrorCode.none, "error_message": None,
            "active_producers": producers}
