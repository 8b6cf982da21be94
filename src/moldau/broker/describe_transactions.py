"""DescribeTransactions (key 65), version 0: the state of transactional ids (kafka-transactions.sh
describe).

Asked of an id's coordinator (FindCoordinator with key type 1 finds it): per id its state
(Kafka's names: Empty, Ongoing, PrepareCommit, ...), producer id and epoch, timeout, the start
of its open transaction and the partitions in it. Errors per id, as Kafka: NOT_COORDINATOR,
TRANSACTIONAL_ID_NOT_FOUND, INVALID_REQUEST (an empty id), TRANSACTIONAL_ID_AUTHORIZATION_FAILED
without DESCRIBE on the id; partitions of topics the principal may not describe are left out.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(65, 0, 0)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    coordinator = core.extensions["txn_coordinator"]
    states = []
    for transactional_id in request.transactional_ids:
        if core.authorize(ctx, a.DESCRIBE, a.TRANSACTIONAL_ID, transactional_id):
            entry = coordinator.describe(transactional_id, ctx.now_ms)
            # only the partitions of topics the principal may describe (Kafka)
            entry["topics"] = [t for t in entry["topics"] if core.authorize(ctx, a.DESCRIBE, a.TOPIC, t["topic"])]
        else:
            entry = coordinator.describe("", ctx.now_ms)
            entry.update(transactional_id=transactional_id, error_code=ErrorCode.transactional_id_authorization_failed)
        entry["transaction_timeout"] = entry.pop("transaction_timeout_ms")
        entry["transaction_start_time"] = entry.pop("transaction_start_time_ms")
        states.append(entry)
    return {"throttle_time": 0, "transaction_states": states}
