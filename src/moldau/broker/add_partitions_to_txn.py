"""AddPartitionsToTxn (key 24), versions 0–5: partitions join a producer's transaction.

v0–3 come from transactional producers (Transactions V1): the coordinator adds the partitions
to the open transaction (writing it Ongoing) before the producer writes to them. v4+ is the
batched broker-to-coordinator form of KIP-890: one entry per transactional id, each either
`verify_only` (is the partition already in the transaction? — a partition leader checking a
Produce or TxnOffsetCommit of an older client) or an add (v5, Transactions V2: Produce v12 /
TxnOffsetCommit v5 add their partition through the leader). Per partition, as Kafka: a
partition that does not exist is UNKNOWN_TOPIC_OR_PARTITION and the others of the request
OPERATION_NOT_ATTEMPTED; otherwise every partition gets the coordinator's answer
(NOT_COORDINATOR, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, ...;
a verified partition not in the transaction: TRANSACTION_ABORTABLE). Authorization as Kafka:
v0–3 WRITE on the transactional id and on each topic, v4+ CLUSTER_ACTION.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.txn_reply import Reply
from moldau.security import acls as a


@apis.api(24, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["txn_coordinator"]
    if ctx.version < 4:
        return _client_request(core, ctx, coordinator, request)
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # the broker-to-broker form
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "results_by_transaction": []}
    results: list[dict] = []
    waiting = [1]
    reply = Reply(core, ctx, {"throttle_time": 0, "error_code": ErrorCode.request_timed_out,
                              "results_by_transaction": []})

    def settled() -> None:
        waiting[0] -= 1
        if waiting[0] == 0:
            reply.respond({"throttle_time": 0, "error_code": ErrorCode.none, "results_by_transaction": results})

    for transaction in request.transactions:
        partitions = [(t.name, p) for t in transaction.topics for p in t.partitions]
        entry = {"transactional_id": transaction.transactional_id, "topic_results": []}
        results.append(entry)
        if transaction.verify_only:
            errors = coordinator.verify_partitions(transaction.transactional_id, transaction.producer_id,
                                                   transaction.producer_epoch, partitions, ctx.now_ms)
            entry["topic_results"] = topic_results(errors)
            continue
        waiting[0] += 1
        _add(core, coordinator, transaction.transactional_id, transaction.producer_id, transaction.producer_epoch,
             partitions, 2 if ctx.version >= 5 else 0, ctx.now_ms, entry, settled)
    settled()
    return reply.outcome()


def _add(core, coordinator, transactional_id: str, producer_id: int, producer_epoch: int,
         partitions: list[tuple[str, int]], client_version: int, now_ms: int, entry: dict, settled) -> None:
    unknown = [p for p in partitions if not _exists(core, p)]
    if unknown:
        errors = {p: ErrorCode.unknown_topic_or_partition if p in unknown else ErrorCode.operation_not_attempted
                  for p in partitions}
        entry["topic_results"] = topic_results(errors)
        settled()
        return

    def done(error: ErrorCode) -> None:
        entry["topic_results"] = topic_results({p: error for p in partitions})
        settled()
    coordinator.add_partitions(transactional_id, producer_id, producer_epoch, set(partitions), client_version,
                               now_ms, done)


def _client_request(core, ctx: apis.RequestContext, coordinator, request) -> Any:
    partitions = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
    denied = _denied(core, ctx, request.v3_and_below_transactional_id, partitions)
    if denied is not None:
        return {"throttle_time": 0, "results_by_topic_v3_and_below": topic_results(denied)}
    holder: dict = {}

    def response(*_: Any) -> dict:
        return {"throttle_time": 0, "results_by_topic_v3_and_below": holder["topic_results"]}

    reply = Reply(core, ctx, {"throttle_time": 0, "results_by_topic_v3_and_below": topic_results(
        {p: ErrorCode.request_timed_out for p in partitions})}, response)
    _add(core, coordinator, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
         request.v3_and_below_producer_epoch, partitions, 0, ctx.now_ms, holder, reply.respond)
    return reply.outcome()


def _denied(core, ctx, transactional_id: str, partitions: list[tuple[str, int]]) -> dict | None:
    """Kafka's checks: WRITE on the transactional id, then on each topic (the partitions of the
    others are OPERATION_NOT_ATTEMPTED)."""
    if not core.authorize(ctx, a.WRITE, a.TRANSACTIONAL_ID, transactional_id):
        return {p: ErrorCode.transactional_id_authorization_failed for p in partitions}
    unwritable = {name for name, _ in partitions if not core.authorize(ctx, a.WRITE, a.TOPIC, name)}
    if not unwritable:
        return None
    return {p: ErrorCode.topic_authorization_failed if p[0] in unwritable else ErrorCode.operation_not_attempted
            for p in partitions}


def _exists(core, partition: tuple[str, int]) -> bool:
    topic = core.image.topic(partition[0])
    return topic is not None and partition[1] in topic.partitions


def topic_results(errors: dict[tuple[str, int], ErrorCode]) -> list[dict]:
    by_topic: dict[str, list[dict]] = {}
    for (name, index), code in errors.items():
        by_topic.setdefault(name, []).append({"partition_index": index, "partition_error_code": code})
    return [{"name": name, "results_by_partition": results} for name, results in by_topic.items()]
