"""A partition leader asks the transaction coordinator about a producer's partitions (KIP-890).

Theory of operation (Kafka's AddPartitionsToTxnManager). Before a transactional batch may open
a transaction in a partition, the leader checks with the producer's transaction coordinator:
older clients (Produce ≤ v11, TxnOffsetCommit ≤ v4) added the partition themselves, so the
leader only *verifies* it is in the open transaction; Transactions V2 clients (Produce v12,
TxnOffsetCommit v5) let the leader *add* it. A coordinator on this node answers at once
(or, for an add, once its write is replicated); another node is asked with one batched
AddPartitionsToTxn v5 request (`verify_only` per the operation) over the inter-node channel,
and a failed exchange counts as NETWORK_EXCEPTION for every partition.

`client_errors` turns the coordinator's answers into what the client expects on its Produce
(Kafka's mapping): PRODUCER_FENCED → INVALID_PRODUCER_EPOCH; TRANSACTION_ABORTABLE →
INVALID_TXN_STATE for clients that predate it (Produce ≤ v10, TxnOffsetCommit ≤ v3);
coordinator trouble (CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS,
COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR) → NOT_ENOUGH_REPLICAS, which every client retries.

An add (Transactions V2) that meets CONCURRENT_TRANSACTIONS — the producer's previous
transaction is still writing its markers, because EndTxn answers once the commit is decided and
a fast client's next Produce arrives before the markers are done — is asked again every
`add.partitions.to.txn.retry.backoff.ms` (20) until `add.partitions.to.txn.retry.backoff.max.ms`
(100, at most request.timeout.ms) have passed, as Kafka's leader does: the client would
otherwise hear NOT_ENOUGH_REPLICAS, and some clients (franz-go) answer that with a metadata
refresh that waits out their 5 s metadata.min.age before the batch is sent again.
"""

from __future__ import annotations

from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau.protocol.rpc import BROKER, OutboundRequest

ADD_PARTITIONS_TO_TXN = 24
BROKER_VERSION = 5  # the batched form with verify_only, Transactions V2 adds
VERIFY_CHANNEL = "txn-verify"  # its own connection, never behind a replica fetch the leader holds
Partition = tuple[str, int]
_RETRY_AS_NOT_ENOUGH_REPLICAS = frozenset({
    ErrorCode.concurrent_transactions, ErrorCode.coordinator_load_in_progress,
    ErrorCode.coordinator_not_available, ErrorCode.not_coordinator,
})


def verify(core: Any, transactional_id: str, producer_id: int, producer_epoch: int,
           partitions: list[Partition], add: bool, now_ms: int,
           done: Callable[[dict[Partition, ErrorCode]], None]) -> None:
    """`done({partition: error})` once the coordinator answered (NONE: in the transaction)."""
    if not add:
        _verify_once(core, transactional_id, producer_id, producer_epoch, partitions, False, now_ms, done)
        return
    config = core.config
    give_up_ms = now_ms + min(config.add_partitions_to_txn_retry_backoff_max_ms, config.request_timeout_ms)

    def answered(codes: dict[Partition, ErrorCode]) -> None:
        retry_at = core.now_ms + config.add_partitions_to_txn_retry_backoff_ms
        if ErrorCode.concurrent_transactions not in codes.values() or core.now_ms >= give_up_ms:
            done(codes)
            return
        _retries(core).schedule(retry_at, lambda at_ms: _verify_once(
            core, transactional_id, producer_id, producer_epoch, partitions, True, at_ms, answered))

    _verify_once(core, transactional_id, producer_id, producer_epoch, partitions, True, now_ms, answered)


class _Retries:
    """Adds to ask again at a given time (a timed part of the core: next_deadline_ms/run_deadlines)."""

    def __init__(self) -> None:
        self.due: list[tuple[int, int, Callable[[int], None]]] = []  # (at_ms, sequence, retry)
        self.sequence = 0

    def schedule(self, at_ms: int, retry: Callable[[int], None]) -> None:
        self.sequence += 1
        self.due.append((at_ms, self.sequence, retry))

    def next_deadline_ms(self) -> int | None:
        return min(self.due)[0] if self.due else None

    def tick(self, now_ms: int) -> None:
        """Nothing periodic: the retries run at their deadlines."""

    def run_deadlines(self, now_ms: int) -> None:
        ready = sorted(entry for entry in self.due if entry[0] <= now_ms)
        self.due = [entry for entry in self.due if entry[0] > now_ms]
        for _, _, retry in ready:
            retry(now_ms)


def _retries(core: Any) -> _Retries:
    retries = core.extensions.get("txn_verify_retries")
    if retries is None:
        retries = core.extensions["txn_verify_retries"] = _Retries()
    return retries


def _verify_once(core: Any, transactional_id: str, producer_id: int, producer_epoch: int,
                 partitions: list[Partition], add: bool, now_ms: int,
                 done: Callable[[dict[Partition, ErrorCode]], None]) -> None:
    coordinator = core.extensions["txn_coordinator"]
    node = coordinator.coordinator_of(transactional_id)
    if node < 0:
        done({p: ErrorCode.coordinator_not_available for p in partitions})
    elif node == core.node_id and add:
        coordinator.add_partitions(transactional_id, producer_id, producer_epoch, set(partitions), 2, now_ms,
                                   lambda code: done({p: code for p in partitions}))
    elif node == core.node_id:
        done(coordinator.verify_partitions(transactional_id, producer_id, producer_epoch, partitions, now_ms))
    else:
        _ask(core, node, transactional_id, producer_id, producer_epoch, partitions, add, done)


def _ask(core: Any, node: int, transactional_id: str, producer_id: int, producer_epoch: int,
         partitions: list[Partition], add: bool, done: Callable[[dict[Partition, ErrorCode]], None]) -> None:
    from kio.schema.add_partitions_to_txn.v5.request import (
        AddPartitionsToTxnRequest,
        AddPartitionsToTxnTopic,
        AddPartitionsToTxnTransaction,
    )

    by_topic: dict[str, list[int]] = {}
    for name, index in partitions:
        by_topic.setdefault(name, []).append(index)
    body = AddPartitionsToTxnRequest(transactions=(AddPartitionsToTxnTransaction(
        transactional_id=transactional_id, producer_id=producer_id, producer_epoch=producer_epoch,
        verify_only=not add,
        topics=tuple(AddPartitionsToTxnTopic(name=t, partitions=tuple(ids)) for t, ids in sorted(by_topic.items()))),))

    def on_response(response: Any, now_ms: int) -> None:
        done(_codes(response, transactional_id, partitions))

    core.send(OutboundRequest(destination=node, listener=BROKER, api_key=ADD_PARTITIONS_TO_TXN,
                              api_version=BROKER_VERSION, body=body, timeout_ms=core.config.request_timeout_ms,
                              on_response=on_response, channel=VERIFY_CHANNEL))


def _codes(response: Any, transactional_id: str, partitions: list[Partition]) -> dict[Partition, ErrorCode]:
    if response is None:
        return {p: ErrorCode.network_exception for p in partitions}
    top = ErrorCode(response.error_code)
    if top != ErrorCode.none:
        code = ErrorCode.invalid_txn_state if top == ErrorCode.cluster_authorization_failed else top
        return {p: code for p in partitions}
    codes = {p: ErrorCode.none for p in partitions}
    for result in response.results_by_transaction:
        if result.transactional_id != transactional_id:
            continue
        for topic in result.topic_results:
            for partition in topic.results_by_partition:
                codes[(topic.name, partition.partition_index)] = ErrorCode(partition.partition_error_code)
    return codes


def client_error(code: ErrorCode, knows_transaction_abortable: bool) -> ErrorCode:
    """What the producing client hears for a verification answer (see the module docstring)."""
    if code == ErrorCode.producer_fenced:
        return ErrorCode.invalid_producer_epoch
    if code == ErrorCode.transaction_abortable and not knows_transaction_abortable:
        return ErrorCode.invalid_txn_state
    if code in _RETRY_AS_NOT_ENOUGH_REPLICAS:
        return ErrorCode.not_enough_replicas
    return code
