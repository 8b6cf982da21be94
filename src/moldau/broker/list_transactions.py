"""ListTransactions (key 66), versions 0–2: the transactional ids this broker coordinates
(kafka-transactions.sh list; the admin client asks every broker and merges the answers).

Filters, as Kafka: state names (a name Kafka does not know comes back in
`unknown_state_filters`), producer ids, v1 `duration_filter` (only transactions started more
than that many ms ago), v2 `transactional_id_pattern` (a regular expression the whole id must
match; a bad one is INVALID_REGULAR_EXPRESSION). Ids that are expiring (Dead) are not listed,
nor those the principal may not DESCRIBE.
"""

from __future__ import annotations

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(66, 0, 2)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    error, unknown, found = core.extensions["txn_coordinator"].list_transactions(
        list(request.state_filters), list(request.producer_id_filters), getattr(request, "duration_filter", -1),
        getattr(request, "transactional_id_pattern", None), ctx.now_ms)
    states = [{"transactional_id": meta.transactional_id, "producer_id": meta.producer_id,
               "transaction_state": meta.state.kafka_name} for meta in found
              if core.authorize(ctx, a.DESCRIBE, a.TRANSACTIONAL_ID, meta.transactional_id)]
    return {"throttle_time": 0, "error_code": error, "unknown_state_filters": unknown, "transaction_states": states}
