"""TxnOffsetCommit (key 28), versions 0–5: commit a group's offsets inside a transaction.

The group coordinator (coordinator/txn_offsets.py) checks the group (v3+: generation,
member id, group.instance.id, as OffsetCommit: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
FENCED_INSTANCE_ID), has the transaction coordinator verify that the group's offsets
partition is in the producer's transaction (v5, Transactions V2: adds it), appends the offsets
as a transactional batch and answers once it is replicated. They become the group's committed
offsets when the transaction commits, and vanish if it aborts. Errors: NOT_COORDINATOR,
INVALID_PRODUCER_EPOCH (fenced), INVALID_TXN_STATE (≤v3) / TRANSACTION_ABORTABLE (the
partition is not in the transaction), UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE;
authorization as Kafka: WRITE on the transactional id, READ on the group and each topic.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.coordinator import OffsetCommit
from moldau.coordinator.txn_reply import Reply
from moldau.security import acls as a


@apis.api(28, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    commits = [OffsetCommit(topic.name, p.partition_index, p.committed_offset,
                            getattr(p, "committed_leader_epoch", -1), p.committed_metadata)
               for topic in request.topics for p in topic.partitions]

    def response(errors: list[ErrorCode]) -> dict:
        codes = iter(errors)
        return {"throttle_time": 0, "topics": [
            {"name": topic.name, "partitions": [{"partition_index": p.partition_index, "error_code": next(codes)}
                                                for p in topic.partitions]}
            for topic in request.topics]}

    denied = (ErrorCode.transactional_id_authorization_failed
              if not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, request.transactional_id)
              else ErrorCode.group_authorization_failed if not core.authorize(ctx, a.READ, a.GROUP, request.group_id)
              else None)
    if denied is not None:
        return response([denied] * len(commits))
    unreadable = {t.name for t in request.topics if not core.authorize(ctx, a.READ, a.TOPIC, t.name)}
    if unreadable:
        return response([ErrorCode.topic_authorization_failed if c.topic in unreadable
                         else ErrorCode.operation_not_attempted for c in commits])
    reply = Reply(core, ctx, response([ErrorCode.request_timed_out] * len(commits)), response)
    member = (getattr(request, "generation_id", -1), getattr(request, "member_id", ""),
              getattr(request, "group_instance_id", None))
    core.extensions["group_coordinator"].txn_offsets.commit(
        request.transactional_id, request.group_id, request.producer_id, request.producer_epoch, member, commits,
        ctx.version >= 5, ctx.version, ctx.now_ms, reply.respond)
    return reply.outcome()
