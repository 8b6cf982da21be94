"""InitProducerId (key 22), versions 0–5: a producer id and epoch for an idempotent producer.

Without a transactional id Kafka always hands out a new producer id with epoch 0, ignoring the
id and epoch a v3+ client sends to bump its epoch (KIP-360) — a new id serves the same purpose.
Ids come from producer_ids.py (persisted blocks, never reused). Moldau has no transaction
coordinator, so a transactional id gets COORDINATOR_NOT_AVAILABLE (the answer FindCoordinator
gives for transactional ids too).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(22, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    if request.transactional_id and not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, request.transactional_id):
        return _response(ErrorCode.transactional_id_authorization_failed)
    # An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    if not request.transactional_id and not (core.authorize(ctx, a.IDEMPOTENT_WRITE, a.CLUSTER, a.CLUSTER_NAME)
                                             or core.authorize_any(ctx, a.WRITE, a.TOPIC)):
        return _response(ErrorCode.cluster_authorization_failed)
    if request.transactional_id:
        return _response(ErrorCode.coordinator_not_available)
    try:
        producer_id = core.extensions["producer_ids"].next_producer_id()
    except OSError:  # the next id block cannot be recorded (a full disk): the client retries
        return _response(ErrorCode.coordinator_not_available)
    return _response(ErrorCode.none, producer_id, 0)


def _response(error: ErrorCode, producer_id: int = -1, producer_epoch: int = -1) -> dict:
    return {"throttle_time": 0, "error_code": error, "producer_id": producer_id, "producer_epoch": producer_epoch,
            "ongoing_txn_producer_id": -1, "ongoing_txn_producer_epoch": -1}
