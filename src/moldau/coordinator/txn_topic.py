"""`__transaction_state`: which partition holds a transactional id, creating the topic, replay.

Theory of operation. A transactional id lives in partition `abs(java_hash(id)) % partitions`
of the compacted internal topic `__transaction_state` — Kafka's rule, with Java's Math.abs
(Utils.abs), so an id maps to the same partition number as on a Kafka cluster with as many
partitions — and the broker leading that partition is the id's transaction coordinator. The
topic is created lazily, by the first FindCoordinator for a transactional id (as Kafka
does), with transaction.state.log.num.partitions partitions (50),
transaction.state.log.replication.factor replicas (3, fewer when the cluster has fewer
brokers), min.insync.replicas transaction.state.log.min.isr (2, capped at the replica count),
cleanup.policy=compact, no compression, unclean leader election off, 100 MiB segments.

Each write is one uncompressed batch holding one record (key: the transactional id; value:
its new metadata, or null for an expired id) appended as leader with acks=-1 semantics; the
coordinator changes its memory only once the record is replicated (BrokerCore.after_replicated).
Replay (`read_records`) walks a partition from log start to log end; the last record per key
wins, as after compaction.
"""

from __future__ import annotations

from typing import Any, Iterator

from kio.schema.errors import ErrorCode

from moldau.coordinator.offsets_topic import CoordinatorError, java_string_hash
from moldau.records import Record, build_batch

TOPIC = "__transaction_state"
SEGMENT_BYTES = 100 * 1024 * 1024  # Kafka's transaction.state.log.segment.bytes


def partition_for(transactional_id: str, partition_count: int) -> int:
    """Kafka's Utils.abs(transactionalId.hashCode) % partitions (abs maps MIN_VALUE to 0)."""
    value = java_string_hash(transactional_id)
    return (0 if value == -(1 << 31) else abs(value)) % partition_count


def ensure_topic(core: Any) -> Any:
    """The topic's image, creating the topic on first use."""
    topic = core.image.topic(TOPIC)
    if topic is not None:
        return topic
    config = core.config
    brokers = max(1, len(core.image.brokers))
    replicas = min(config.transaction_state_log_replication_factor, brokers)
    configs = {"cleanup.policy": "compact", "compression.type": "uncompressed",
               "segment.bytes": str(SEGMENT_BYTES), "unclean.leader.election.enable": "false",
               "min.insync.replicas": str(min(config.transaction_state_log_min_isr, replicas))}
    try:
        return core.controller.create_topic(TOPIC, config.transaction_state_log_num_partitions, replicas, configs)
    except Exception as error:  # ControllerError: clients retry on COORDINATOR_NOT_AVAILABLE
        if getattr(error, "error_code", None) is None:
            raise
        raise CoordinatorError(ErrorCode.coordinator_not_available, f"cannot create {TOPIC}: {error}") from error


def append(core: Any, partition: Any, key: bytes, value: bytes | None, now_ms: int) -> int:
    """Append one record as leader; its offset. Raises CoordinatorError with the error the
    transaction coordinator answers for a failed write (Kafka's mapping)."""
    batch = build_batch([Record(0, now_ms, key, value)], base_offset=0)
    try:
        info = partition.append(batch, -1, now_ms)
    except Exception as error:
        raise CoordinatorError(append_error(getattr(error, "error_code", None)), str(error)) from error
    core.partition_appended(partition.key, now_ms)
    return info.last_offset


def append_error(code: Any) -> ErrorCode:
    """What a client hears when a __transaction_state write fails (TransactionStateManager)."""
    if code in (ErrorCode.unknown_topic_or_partition, ErrorCode.not_enough_replicas,
                ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out):
        return ErrorCode.coordinator_not_available
    if code in (ErrorCode.not_leader_or_follower, ErrorCode.kafka_storage_error):
        return ErrorCode.not_coordinator
    return ErrorCode.unknown_server_error


def read_records(partition: Any) -> Iterator[tuple[bytes, bytes | None]]:
    """Every (key, value) of the partition from log start to log end, in offset order."""
    for record in partition.log.records():
        if record.key is not None:
            yield record.key, record.value
