"""The controller: turns admin requests into metadata records and commits them.

Theory of operation. Every change to the cluster's shape — a topic, its partitions, a config,
a broker registration — is validated here against the current metadata image, expressed as
metadata records, appended to the metadata log, and only then applied to the image; listeners
(the broker) react to the applied records. Nothing else mutates the image. With one node the
metadata log is a local log; in the cluster it is the Raft-replicated `__cluster_metadata`
log, and `commit` returns once the quorum has it.

Validation follows Kafka's errors: INVALID_TOPIC_EXCEPTION for bad names, TOPIC_ALREADY_EXISTS,
INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR (more replicas than brokers), INVALID_CONFIG.
Randomness (topic ids) comes from an injected source, so simulations replay.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from typing import Callable, Iterable, Protocol

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.controller import broker_configs
from moldau.controller import records as r
from moldau.controller.configs import (
    TYPE_BROKER,
    TYPE_TOPIC,
    ConfigError,
    validate_topic_configs,
)
from moldau.controller.image import MetadataImage, TopicImage
from moldau.records.batch import RecordsError

_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})

log = logging.getLogger("moldau.controller")


class ControllerError(Exception):
    def __init__(self, error_code: ErrorCode, message: str):
        super().__init__(message)
        self.error_code = error_code


class MetadataLog(Protocol):
    def append(self, records: list[r.MetadataRecord]) -> int: ...  # returns last offset
    def replay(self) -> Iterable[r.MetadataRecord]: ...


def validate_topic_name(name: str) -> None:
    if not name:
        raise ControllerError(ErrorCode.invalid_topic_exception, "Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise ControllerError(ErrorCode.invalid_topic_exception, "Topic name cannot be \".\" or \"..\"")
    if len(name) > limits.topic_name_chars_max:
        raise ControllerError(ErrorCode.invalid_topic_exception,
                              f"Topic name is illegal, it can't be longer than {limits.topic_name_chars_max} characters")
    if not _LEGAL_TOPIC.match(name):
        raise ControllerError(ErrorCode.invalid_topic_exception,
                              f"Topic name \"{name}\" is illegal, it contains a character other than "
                              "ASCII alphanumerics, '.', '_' and '-'")


class Controller:
    def __init__(
        self,
        image: MetadataImage,
        metadata_log: MetadataLog,
        node_id: int,
        new_uuid: Callable[[], uuid.UUID],
        defaults: "ControllerDefaults",
    ):
        self.image = image
        self.metadata_log = metadata_log
        self.node_id = node_id
        self.new_uuid = new_uuid
        self.defaults = defaults
        self.listeners: list[Callable[[r.MetadataRecord], None]] = []
        # Asked before partitions are created: why not (KAFKA_STORAGE_ERROR), or None. The
        # broker sets it to its free-space reserve check (broker/storage.py).
        self.refuse_new_partitions: Callable[[int], str | None] = lambda count: None

    # --- committing --------------------------------------------------------------------
    def replay(self) -> None:
        for record in self.metadata_log.replay():
            self._apply(record)

    def commit(self, records: list[r.MetadataRecord]) -> None:
        if not records:
            return
        try:
            self.image.offset = self.metadata_log.append(records)
        except (OSError, RecordsError) as error:  # nothing was applied: the change did not happen
            code = getattr(error, "error_code", ErrorCode.kafka_storage_error)
            raise ControllerError(code, f"the metadata log cannot be written: {error}") from error
        for record in records:
            if log.isEnabledFor(logging.INFO):
                log.info("%s", self._describe(record))
            self._apply(record)

    def _describe(self, record: r.MetadataRecord) -> str:
        """One line for the operator's log (`moldau server --log-level info`), in Kafka's words."""
        topic = self.image.topics_by_id.get(getattr(record, "topic_id", ""), None)
        name = topic.name if topic is not None else getattr(record, "name", "?")
        if isinstance(record, r.TopicRecord):
            return f"Created topic {record.name} with topic id {record.topic_id}"
        if isinstance(record, r.PartitionRecord):
            return (f"Created partition {name}-{record.partition}: replicas {list(record.replicas)}, "
                    f"ISR {list(record.isr)}, leader {record.leader}, leader epoch {record.leader_epoch}")
        if isinstance(record, r.PartitionChangeRecord):
            changes = ", ".join(f"{field} {value if not isinstance(value, tuple) else list(value)}"
                                for field, value in (("leader", record.leader), ("ISR", record.isr),
                                                     ("replicas", record.replicas)) if value is not None)
            return f"Changed partition {name}-{record.partition}: {changes or 'epoch only'}"
        if isinstance(record, r.RemoveTopicRecord):
            return f"Deleted topic {name} (topic id {record.topic_id})"
        if isinstance(record, r.ConfigRecord):
            kind = {2: "topic", 4: "broker"}.get(record.resource_type, f"resource type {record.resource_type}")
            target = f"{kind} {record.resource_name}" if record.resource_name else f"{kind} default"
            if record.value is None:
                return f"Removed config {record.name} of {target}"
            return f"Set config {record.name}={record.value} on {target}"
        if isinstance(record, r.RegisterBrokerRecord):
            return f"Registered broker {record.broker_id} at {record.host}:{record.port}"
        if isinstance(record, r.ClusterIdRecord):
            return f"Cluster id is {record.cluster_id}"
        return repr(record)

    def _apply(self, record: r.MetadataRecord) -> None:
        self.image.apply(record)
        for listener in self.listeners:
            listener(record)

    # --- brokers -----------------------------------------------------------------------
    def register_broker(self, host: str, port: int, cluster_id: str | None,
                        endpoints: tuple[tuple[str, str, int, str], ...] = ()) -> None:
        records: list[r.MetadataRecord] = []
        if not self.image.cluster_id:
            records.append(r.ClusterIdRecord(cluster_id or _cluster_id(self.new_uuid())))
        known = self.image.brokers.get(self.node_id)
        wanted = {name: (h, p) for name, h, p, _protocol in endpoints}
        if known is None or (known.host, known.port) != (host, port) or known.endpoints != wanted:
            records.append(r.RegisterBrokerRecord(self.node_id, host, port, endpoints=tuple(endpoints)))
        self.commit(records)

    # --- topics ------------------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        num_partitions: int = -1,
        replication_factor: int = -1,
        configs: dict[str, str | None] | None = None,
        assignments: dict[int, list[int]] | None = None,
        validate_only: bool = False,
    ) -> TopicImage | None:
        records = self.topic_records(name, num_partitions, replication_factor, configs or {}, assignments)
        if validate_only:
            return None
        self._admit_partitions(sum(isinstance(record, r.PartitionRecord) for record in records))
        self.commit(records)
        return self.image.topic(name)

    def _admit_partitions(self, count: int) -> None:
        reason = self.refuse_new_partitions(count)
        if reason is not None:
            raise ControllerError(ErrorCode.kafka_storage_error, reason)

    def topic_records(self, name, num_partitions, replication_factor, configs, assignments) -> list[r.MetadataRecord]:
        validate_topic_name(name)
        if self.image.topic(name) is not None:
            raise ControllerError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
        collision = self._colliding_topic(name)
        if collision:
            raise ControllerError(ErrorCode.invalid_topic_exception,
                                  f"Topic '{name}' collides with existing topic: {collision}")
        if assignments:
            replica_lists = [list(assignments[p]) for p in sorted(assignments)]
            if sorted(assignments) != list(range(len(assignments))):
                raise ControllerError(ErrorCode.invalid_replica_assignment, "Partitions must be numbered from 0")
        else:
            count = self.defaults.num_partitions if num_partitions == -1 else num_partitions
            factor = self.defaults.replication_factor if replication_factor == -1 else replication_factor
            replica_lists = self._assign(count, factor)
        try:
            checked = validate_topic_configs(configs)
        except ConfigError as error:
            raise ControllerError(error.error_code, str(error)) from None
        topic_id = str(self.new_uuid())
        records: list[r.MetadataRecord] = [r.TopicRecord(name, topic_id)]
        records += [r.ConfigRecord(TYPE_TOPIC, name, k, v) for k, v in checked.items() if v is not None]
        records += [self._partition_record(topic_id, p, replicas) for p, replicas in enumerate(replica_lists)]
        return records

    def _colliding_topic(self, name: str) -> str | None:
        # '.' and '_' collide in Kafka's metric names, so Kafka refuses such pairs.
        normalized = name.replace(".", "_")
        for other in self.image.topics_by_name:
            if other != name and other.replace(".", "_") == normalized:
                return other
        return None

    def _assign(self, count: int, factor: int, start: int = 0) -> list[list[int]]:
        if count <= 0 or count > limits.partitions_per_topic_max:
            raise ControllerError(ErrorCode.invalid_partitions, "Number of partitions must be larger than 0.")
        if factor <= 0:
            raise ControllerError(ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0.")
        brokers = sorted(self.image.brokers) or [self.node_id]
        if factor > len(brokers):
            raise ControllerError(ErrorCode.invalid_replication_factor,
                                  f"Unable to replicate the partition {factor} time(s): "
                                  f"The target replication factor of {factor} cannot be reached because "
                                  f"only {len(brokers)} broker(s) are registered.")
        return [[brokers[(p + i) % len(brokers)] for i in range(factor)] for p in range(start, start + count)]

    def _partition_record(self, topic_id: str, partition: int, replicas: list[int]) -> r.PartitionRecord:
        return r.PartitionRecord(topic_id, partition, tuple(replicas), tuple(replicas), replicas[0], 0, 0)

    def delete_topic(self, name: str) -> str:
        topic = self.image.topic(name)
        if topic is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition,
                                  "This server does not host this topic-partition.")
        if not self.defaults.delete_topic_enable:
            raise ControllerError(ErrorCode.topic_deletion_disabled, "Topic deletion is disabled.")
        self.commit([r.RemoveTopicRecord(topic.topic_id)])
        return topic.topic_id

    def create_partitions(self, name: str, total: int, assignments=None, validate_only=False) -> None:
        topic = self.image.topic(name)
        if topic is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if total <= current:
            raise ControllerError(ErrorCode.invalid_partitions,
                                  f"Topic currently has {current} partitions, which is higher than the "
                                  f"requested {total}." if total < current else
                                  f"Topic already has {current} partitions.")
        factor = len(topic.partitions[0].replicas)
        if assignments:
            if len(assignments) != total - current:
                raise ControllerError(ErrorCode.invalid_replica_assignment,
                                      f"Increasing the number of partitions by {total - current} but "
                                      f"{len(assignments)} assignments provided.")
            new_lists = [list(a) for a in assignments]
        else:
            new_lists = self._assign(total - current, factor, start=current)
        records = [self._partition_record(topic.topic_id, current + i, lst) for i, lst in enumerate(new_lists)]
        if not validate_only:
            self._admit_partitions(len(records))
            self.commit(records)

    def alter_configs(self, resource_type: int, name: str, changes: dict[str, str | None],
                      validate_only: bool = False) -> None:
        if resource_type == TYPE_TOPIC:
            if self.image.topic(name) is None:
                raise ControllerError(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist.")
            try:
                changes = validate_topic_configs(changes)
            except ConfigError as error:
                raise ControllerError(error.error_code, str(error)) from None
        elif resource_type == TYPE_BROKER:
            # A bad value must never reach the metadata log: every broker applies it to every
            # topic on replay, so it would break the broker now and on every later start.
            try:  # Kafka's rules of dynamic broker configs (broker_configs.py)
                changes = broker_configs.validate(changes, per_broker=name != "")
            except ConfigError as error:  # Kafka answers INVALID_REQUEST for broker configs
                raise ControllerError(ErrorCode.invalid_request, str(error)) from None
        records = [r.ConfigRecord(resource_type, name, k, v) for k, v in sorted(changes.items())]
        if not validate_only:
            self.commit(records)


class ControllerDefaults:
    def __init__(self, num_partitions: int = 1, replication_factor: int = 1, delete_topic_enable: bool = True):
        self.num_partitions = num_partitions
        self.replication_factor = replication_factor
        self.delete_topic_enable = delete_topic_enable


def _cluster_id(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")
