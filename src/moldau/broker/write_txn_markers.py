"""WriteTxnMarkers (key 27), version 1 (Kafka 4.1 serves 1 only): end transactions in partitions.

A transaction coordinator asks a partition's leader to append a COMMIT or ABORT control batch
for a producer (records/control.py); `kafka-transactions.sh abort` sends the same request to
end a hanging transaction. Per partition, as Kafka: UNKNOWN_TOPIC_OR_PARTITION,
NOT_LEADER_OR_FOLLOWER, INVALID_PRODUCER_EPOCH (the producer has a newer epoch here),
TRANSACTION_COORDINATOR_FENCED (a newer coordinator already wrote for it); a producer this
partition does not know gets its marker all the same (it may have written nothing here).
The answer waits until every marker is replicated (acks=all). CLUSTER_ACTION on the
cluster is required (CLUSTER_AUTHORIZATION_FAILED per partition otherwise). A marker for a
`__consumer_offsets` partition also settles the producer's transactional offset commits there
(commit: they become the group's committed offsets; abort: they are dropped).

`write_marker` is the one path for markers, used both by this handler and by the local
transaction coordinator (coordinator/txn_markers.py) for the partitions this broker leads.
"""

from __future__ import annotations

from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.offsets_topic import TOPIC as OFFSETS_TOPIC
from moldau.coordinator.txn_reply import Reply
from moldau.records import RecordsError
from moldau.replication.partition import PartitionError
from moldau.security import acls as a


@apis.api(27, 1, 1)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # brokers and admins only
        return {"markers": [{"producer_id": m.producer_id, "topics": [
            {"name": t.name, "partitions": [{"partition_index": i, "error_code": ErrorCode.cluster_authorization_failed}
                                            for i in t.partition_indexes]} for t in m.topics]} for m in request.markers]}
    results: list[dict] = []
    waiting = [0]
    reply = Reply(core, ctx, {"markers": []})

    def settled() -> None:
        waiting[0] -= 1
        if waiting[0] == 0:
            reply.respond({"markers": results})

    for marker in request.markers:
        topics = []
        results.append({"producer_id": marker.producer_id, "topics": topics})
        for topic in marker.topics:
            partitions: list[dict] = []
            topics.append({"name": topic.name, "partitions": partitions})
            for index in topic.partition_indexes:
                entry = {"partition_index": index, "error_code": ErrorCode.none}
                partitions.append(entry)
                waiting[0] += 1
                write_marker(core, topic.name, index, marker.producer_id, marker.producer_epoch,
                             marker.coordinator_epoch, marker.transaction_result, ctx.now_ms,
                             _recorder(entry, settled))
    waiting[0] += 1
    settled()  # every marker may have been answered already
    return reply.outcome()


def _recorder(entry: dict, settled: Callable[[], None]) -> Callable[[ErrorCode], None]:
    def record(code: ErrorCode) -> None:
        entry["error_code"] = code
        settled()
    return record


def write_marker(core: Any, topic: str, index: int, producer_id: int, producer_epoch: int,
                 coordinator_epoch: int, commit: bool, now_ms: int, done: Callable[[ErrorCode], None]) -> None:
    """Append the marker as leader; `done(error)` once it is replicated (or failed)."""
    try:
        partition = core.leader_partition(topic, index)
        info = partition.append_end_txn_marker(producer_id, producer_epoch, coordinator_epoch, commit, now_ms)
    except (PartitionError, RecordsError) as error:
        done(error.error_code)
        return
    core.partition_appended(partition.key, now_ms)

    def replicated(code: ErrorCode) -> None:
        if code == ErrorCode.none and topic == OFFSETS_TOPIC:
            groups = core.extensions.get("group_coordinator")
            txn_offsets = getattr(groups, "txn_offsets", None)
            if txn_offsets is not None:
                txn_offsets.complete(index, producer_id, commit)
        done(code)

    core.after_replicated(partition, info.last_offset, replicated)
