"""AddOffsetsToTxn (key 25), versions 0–4: a transaction will commit offsets of a group.

The coordinator adds the group's `__consumer_offsets` partition to the transaction, so the
commit or abort reaches it as a marker (Transactions V2 clients skip this call: the group
coordinator adds the partition when TxnOffsetCommit v5 arrives). Errors as AddPartitionsToTxn;
authorization as Kafka: WRITE on the transactional id, READ on the group.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.offsets_topic import TOPIC as OFFSETS_TOPIC
from moldau.coordinator.offsets_topic import CoordinatorError, ensure_topic
from moldau.coordinator.txn_reply import Reply
from moldau.security import acls as a


@apis.api(25, 0, 4)
def handle(core, ctx: apis.RequestContext, request):
    def response(error: ErrorCode) -> dict:
        return {"throttle_time": 0, "error_code": error}

    if not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, request.transactional_id):
        return response(ErrorCode.transactional_id_authorization_failed)
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return response(ErrorCode.group_authorization_failed)
    try:
        ensure_topic(core)  # the offsets partition must exist to be part of a transaction
    except CoordinatorError as error:
        return response(error.error_code)
    index = core.extensions["group_coordinator"].partition_of(request.group_id)
    reply = Reply(core, ctx, response(ErrorCode.request_timed_out), response)
    core.extensions["txn_coordinator"].add_partitions(
        request.transactional_id, request.producer_id, request.producer_epoch, {(OFFSETS_TOPIC, index)}, 0,
        ctx.now_ms, reply.respond)
    return reply.outcome()
