"""`__consumer_offsets`: which partition holds a group, creating the topic, writing and replaying.

Theory of operation. A group lives in partition `abs(java_hash(group_id)) % partitions` of the
compacted internal topic `__consumer_offsets` (Kafka's rule, so the same group maps to the same
partition number as on a Kafka cluster with as many partitions), and the broker leading that
partition is the group's coordinator. The topic is created lazily — on the first request that
needs a coordinator — with offsets.topic.num.partitions partitions, cleanup.policy=compact and
Kafka's 100 MiB segments.

Writes are one uncompressed batch per commit (all records of one OffsetCommit are atomic), with
producer id -1, appended as leader with acks=-1 semantics; the coordinator updates its memory
only after the append returned. Replay (`read_records`) walks a partition from its log start
offset to its log end offset and yields (key bytes, value bytes or None) for every record; the
coordinator folds them into groups (the last record per key wins, as after compaction).
"""

from __future__ import annotations

from typing import Any, Iterator

from kio.schema.errors import ErrorCode

from moldau.records import Record, RecordsError, build_batch, iterate_batches, iterate_records
from moldau.records.control import read_end_txn_marker

TOPIC = "__consumer_offsets"
SEGMENT_BYTES = 100 * 1024 * 1024  # Kafka's offsets.topic.segment.bytes
REPLICATION_FACTOR_MAX = 3  # Kafka's offsets.topic.replication.factor default
_READ_BYTES = 1024 * 1024  # replay reads this much of the log at a time


class CoordinatorError(Exception):
    def __init__(self, error_code: ErrorCode, message: str = ""):
        super().__init__(message or error_code.name)
        self.error_code = error_code


def java_string_hash(text: str) -> int:
    """Java's String.hashCode over UTF-16 code units, as a signed 32-bit int."""
    value = 0
    encoded = text.encode("utf-16-be")
    for i in range(0, len(encoded), 2):
        value = (31 * value + ((encoded[i] << 8) | encoded[i + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


def partition_for(group_id: str, partition_count: int) -> int:
    return (java_string_hash(group_id) & 0x7FFFFFFF) % partition_count


def ensure_topic(core: Any) -> Any:
    """The topic's image, creating the topic on first use."""
    topic = core.image.topic(TOPIC)
    if topic is not None:
        return topic
    brokers = max(1, len(core.image.brokers))
    configs = {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT_BYTES), "compression.type": "producer"}
    try:
        return core.controller.create_topic(TOPIC, core.config.offsets_topic_num_partitions,
                                            min(REPLICATION_FACTOR_MAX, brokers), configs)
    except Exception as error:  # ControllerError: clients retry on COORDINATOR_NOT_AVAILABLE
        if getattr(error, "error_code", None) is None:
            raise
        raise CoordinatorError(ErrorCode.coordinator_not_available, f"cannot create {TOPIC}: {error}") from error


def leader_partition(core: Any, index: int) -> Any:
    """This broker's Partition for `index` if it leads it; else the coordinator error."""
    partition = core.partition(TOPIC, index)
    if partition is None or not partition.is_leader:
        raise CoordinatorError(ErrorCode.not_coordinator)
    if partition.log.offline is not None:  # damaged on disk (log/faults.py): no group loads
        raise CoordinatorError(ErrorCode.coordinator_not_available, f"{TOPIC}-{index} is offline")
    return partition


def append(core: Any, partition: Any, records: list[tuple[bytes, bytes | None]], now_ms: int) -> int:
    """Append (key, value) records as one batch; return the first offset. Raises CoordinatorError
    with the error a group client understands (Kafka's mapping of append errors)."""
    batch = build_batch([Record(i, now_ms, key, value) for i, (key, value) in enumerate(records)], base_offset=0)
    try:
        info = partition.append(batch, -1, now_ms)
    except Exception as error:
        raise CoordinatorError(_coordinator_error(getattr(error, "error_code", None)), str(error)) from error
    core.partition_appended(partition.key, now_ms)
    return info.first_offset


def _coordinator_error(code: Any) -> ErrorCode:
    if code in (ErrorCode.unknown_topic_or_partition, ErrorCode.not_enough_replicas,
                ErrorCode.not_enough_replicas_after_append, ErrorCode.request_timed_out):
        return ErrorCode.coordinator_not_available
    if code in (ErrorCode.not_leader_or_follower, ErrorCode.kafka_storage_error):
        return ErrorCode.not_coordinator
    if code in (ErrorCode.message_too_large, ErrorCode.record_list_too_large, ErrorCode.invalid_fetch_size):
        return ErrorCode.invalid_commit_offset_size
    return ErrorCode.unknown_server_error


def read_records(partition: Any, open_transactions: dict | None = None) -> Iterator[tuple[bytes, bytes | None]]:
    """Every (key, value) of the partition from log start to log end, in offset order — except
    transactional offset commits (txn_offsets.py): a committed transaction's records come where
    its COMMIT marker is, an aborted one's never, and those of a transaction still open at the
    log end go into `open_transactions` (producer id -> records) instead. A damaged batch raises
    COORDINATOR_NOT_AVAILABLE (the log reports the damage itself)."""
    log = partition.log
    offset, end = log.log_start_offset, log.log_end_offset
    buffered: dict[int, list[tuple[bytes, bytes | None]]] = {}
    while offset < end:
        try:
            data = log.read(offset, _READ_BYTES, end, True).read_bytes()
        except RecordsError as error:
            raise CoordinatorError(ErrorCode.coordinator_not_available, str(error)) from error
        if not data:
            break
        for header, batch in iterate_batches(data):
            if header.next_offset <= offset:
                continue
            if header.is_control:
                marker = read_end_txn_marker(batch) if header.records_count else None
                committed = buffered.pop(header.producer_id, [])
                if marker is not None and marker.commit:
                    yield from committed
            else:
                records = [(r.key, r.value) for r in iterate_records(batch) if r.key is not None and r.offset >= offset]
                if header.is_transactional:
                    buffered.setdefault(header.producer_id, []).extend(records)
                else:
                    yield from records
            offset = max(offset, header.next_offset)
    if open_transactions is not None:
        open_transactions.update(buffered)
