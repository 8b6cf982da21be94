"""DescribeTransactions (key 65), version 0: the state of transactional ids (kafka-transactions.sh
describe).

Asked of an id's coordinator (FindCoordinator with key type 1 finds it): per id its state
(Kafka's names: Empty, Ongoing, PrepareCommit, ...), producer id and epoch, timeout, the start
of its open transaction and the partitions in it. Errors per id, as Kafka: NOT_COORDINATOR,
TRANSACTIONAL_ID_NOT_FOUND, INVALID_REQUEST (an empty id).
"""

from __future__ import annotations

from moldau.broker import apis


@apis.api(65, 0, 0)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    coordinator = core.extensions["txn_coordinator"]
    states = []
    for transactional_id in request.transactional_ids:
        entry = coordinator.describe(transactional_id, ctx.now_ms)
        entry["transaction_timeout"] = entry.pop("transaction_timeout_ms")
        entry["transaction_start_time"] = entry.pop("transaction_start_time_ms")
        states.append(entry)
    return {"throttle_time": 0, "transaction_states": states}
