"""EndTxn (key 26), versions 0–5: commit or abort a producer's transaction.

Answered by the transaction coordinator (coordinator/transactions.py) once PrepareCommit or
PrepareAbort is replicated; the markers are written to the partitions afterwards, as in Kafka.
v5 (Transactions V2, KIP-890) bumps the producer epoch with every commit or abort and returns
the new producer id and epoch. Errors as Kafka's TransactionCoordinator: NOT_COORDINATOR,
INVALID_PRODUCER_ID_MAPPING (unknown id or producer id), PRODUCER_FENCED (an old epoch),
CONCURRENT_TRANSACTIONS (the previous end is still being written), INVALID_TXN_STATE
(commit after abort, or nothing to commit); without WRITE on the transactional id
TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.txn_reply import Reply
from moldau.security import acls as a


@apis.api(26, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    def response(error: ErrorCode, producer_id: int = -1, producer_epoch: int = -1) -> dict:
        return {"throttle_time": 0, "error_code": error, "producer_id": producer_id, "producer_epoch": producer_epoch}

    if not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, request.transactional_id):
        return response(ErrorCode.transactional_id_authorization_failed)
    reply = Reply(core, ctx, response(ErrorCode.request_timed_out), response)
    client_version = 2 if ctx.version >= 5 else 0
    core.extensions["txn_coordinator"].end_txn(request.transactional_id, request.producer_id, request.producer_epoch,
                                               request.committed, client_version, ctx.now_ms, reply.respond)
    return reply.outcome()
