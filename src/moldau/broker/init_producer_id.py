"""InitProducerId (key 22), versions 0–5: a producer id and epoch for an idempotent or
transactional producer.

Without a transactional id Kafka always hands out a new producer id with epoch 0, ignoring the
id and epoch a v3+ client sends to bump its epoch (KIP-360) — a new id serves the same purpose.
Ids come from producer_ids.py (persisted blocks, never reused). With a transactional id the
request goes to the id's transaction coordinator (coordinator/transactions.py): a new epoch for
the id, fencing any older producer with it (an open transaction of the old one is aborted
first: CONCURRENT_TRANSACTIONS, and the client retries). Errors as Kafka: NOT_COORDINATOR,
INVALID_TRANSACTION_TIMEOUT (not in 1..transaction.max.timeout.ms), PRODUCER_FENCED (v3+:
an expected epoch that is no longer current), INVALID_REQUEST (an empty id, or only one of
producer id and epoch given).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.txn_reply import Reply
from moldau.security import acls as a


@apis.api(22, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    if request.transactional_id and not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, request.transactional_id):
        return _response(ErrorCode.transactional_id_authorization_failed)
    # An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    if not request.transactional_id and not (core.authorize(ctx, a.IDEMPOTENT_WRITE, a.CLUSTER, a.CLUSTER_NAME)
                                             or core.authorize_any(ctx, a.WRITE, a.TOPIC)):
        return _response(ErrorCode.cluster_authorization_failed)
    if request.transactional_id is None:
        try:
            producer_id = core.extensions["producer_ids"].next_producer_id()
        except OSError:  # the next id block cannot be recorded (a full disk): the client retries
            return _response(ErrorCode.coordinator_not_available)
        return _response(ErrorCode.none, producer_id, 0)
    expected = (getattr(request, "producer_id", -1), getattr(request, "producer_epoch", -1))
    if (expected[0] == -1) != (expected[1] == -1):
        return _response(ErrorCode.invalid_request)
    timeout_ms = int(request.transaction_timeout.total_seconds() * 1000)
    reply = Reply(core, ctx, _response(ErrorCode.request_timed_out), _response)
    core.extensions["txn_coordinator"].init_producer_id(
        request.transactional_id, timeout_ms, None if expected[0] == -1 else expected, ctx.now_ms, reply.respond)
    return reply.outcome()


def _response(error: ErrorCode, producer_id: int = -1, producer_epoch: int = -1) -> dict:
    return {"throttle_time": 0, "error_code": error, "producer_id": producer_id, "producer_epoch": producer_epoch,
            "ongoing_txn_producer_id": -1, "ongoing_txn_producer_epoch": -1}
