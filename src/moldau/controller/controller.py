"""The controller: turns admin requests, broker registrations and heartbeats into metadata
records, and commits them through the metadata log.

Theory of operation. Only the active controller writes. It is the Raft leader of the metadata
quorum, active once every record before its own epoch is committed and applied (so it starts
from the whole committed state). While active it keeps its own image: a copy of the committed
image taken at activation, to which each record is applied the moment it is appended — so the
next request is validated against everything already decided, committed or not. The caller
answers the request once the metadata log's high watermark passes the last record written
(`written_offset`); if leadership is lost first, the records may or may not commit, and the
request is answered NOT_CONTROLLER so the client retries (as in Kafka). Losing leadership drops
the controller's image; the next activation copies the committed one again.

What it decides (Kafka's QuorumController, kept small):
- topics: creation (name rules, replica placement over unfenced brokers, configs), deletion,
  partition growth, configs — topics.py-style validation below;
- brokers (brokers.py): registration with a broker epoch, heartbeats, fencing when a session
  expires, unfencing once caught up, controlled shutdown;
- partitions (partitions.py): leader elections and ISR changes as PartitionChangeRecords, on
  fencing, AlterPartition from leaders, ElectLeaders, reassignments, the periodic preferred
  leader rebalance;
- producer id blocks (AllocateProducerIds).
Validation follows Kafka's errors. Randomness (topic ids, incarnation checks, placement) comes
from injected sources, so simulations replay.
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.controller import partitions as pc
from moldau.controller import broker_configs
from moldau.controller import features
from moldau.controller import records as r
from moldau.controller.brokers import BrokerControl
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
PRODUCER_ID_BLOCK_SIZE = 1000  # Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE

log = logging.getLogger("moldau.controller")


class ControllerError(Exception):
    def __init__(self, error_code: ErrorCode, message: str):
        super().__init__(message)
        self.error_code = error_code

    def __reduce__(self):  # picklable (a simulation's worker process returns it)
        return type(self), (self.error_code, str(self))


class MetadataLog(Protocol):
    """What the controller needs of the metadata log (raft.RaftClient provides it)."""

    log_end_offset: int

    def append(self, values: list[bytes], now_ms: int) -> int: ...  # last offset; raises if not leader


@dataclass
class ControllerConfig:
    num_partitions: int = 1
    replication_factor: int = 1
    delete_topic_enable: bool = True
    broker_session_timeout_ms: int = 9_000
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_ms: int = 300_000
    leader_imbalance_per_broker_percentage: int = 10


ControllerDefaults = ControllerConfig  # the name the single-node code used


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
    def __init__(self, node_id: int, metadata_log: MetadataLog, new_uuid: Callable[[], uuid.UUID],
                 config: ControllerConfig, rng: random.Random | None = None):
        self.node_id = node_id
        self.metadata_log = metadata_log
        self.new_uuid = new_uuid
        self.config = config
        self.rng = rng or random.Random(0)
        self.active = False
        self.image = MetadataImage()  # the controller's own view; meaningful while active
        self.written_offset = -1  # offset of the last record this controller appended
        self.brokers = BrokerControl(self)
        self._next_rebalance_ms = 0
        # Asked before partitions are created: why not (KAFKA_STORAGE_ERROR), or None. The
        # broker sets it to its free-space reserve check (broker/storage.py).
        self.refuse_new_partitions: Callable[[int], str | None] = lambda count: None

    # --- activation and writing --------------------------------------------------------
    def activate(self, committed: MetadataImage, now_ms: int) -> None:
        self.image = committed.copy()
        self.active = True
        self.written_offset = committed.offset
        self.brokers.activate(now_ms)
        self._next_rebalance_ms = now_ms + self.config.leader_imbalance_check_interval_ms
        log.info("Node %d is now the active controller", self.node_id)
        missing = {name: level for name, level in features.BOOTSTRAP_LEVELS.items() if name not in self.image.features}
        if missing:  # a new cluster (or one from before feature flags): Kafka 4.1's levels
            self.write([r.FeatureLevelRecord(name=name, feature_level=level) for name, level in sorted(missing.items())],
                       now_ms)

    def deactivate(self) -> None:
        if self.active:
            log.info("Node %d is no longer the active controller", self.node_id)
        self.active = False
        self.image = MetadataImage()
        self.brokers.deactivate()

    def write(self, records: list[r.MetadataRecord], now_ms: int) -> int:
        """Append the records as one batch (atomically), apply them to the controller's
        image, and return the last offset. Raises NOT_CONTROLLER when this node cannot write."""
        if not records:
            return self.written_offset
        if not self.active:
            raise ControllerError(ErrorCode.not_controller, "This node is not the active controller.")
        base = self.metadata_log.log_end_offset
        try:
            last = self.metadata_log.append([r.encode(record) for record in records], now_ms)
        except OSError as error:  # a full or failing disk: nothing was applied, the change did not happen
            raise ControllerError(ErrorCode.kafka_storage_error, f"the metadata log cannot be written: {error}") from None
        except Exception as error:
            if getattr(error, "error_code", None) == ErrorCode.kafka_storage_error:
                raise ControllerError(ErrorCode.kafka_storage_error,
                                      f"the metadata log cannot be written: {error}") from None
            if getattr(error, "error_code", None) is not None or type(error).__name__ == "NotLeaderError":
                raise ControllerError(ErrorCode.not_controller, f"cannot write the metadata log: {error}") from None
            raise
        first = last - len(records) + 1
        assert first >= base, "metadata records are appended at the log end"
        for offset, record in enumerate(records, start=first):
            self.image.apply(record, offset)
        self.written_offset = last
        return last

    def require_active(self) -> None:
        if not self.active:
            raise ControllerError(ErrorCode.not_controller, "This node is not the active controller.")

    def next_offset(self) -> int:
        """The offset the next record written will get (broker epochs are offsets, as in Kafka)."""
        return self.metadata_log.log_end_offset

    # --- timers -------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        if not self.active:
            return None
        deadlines = [d for d in (self.brokers.next_deadline_ms(), self._rebalance_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def _rebalance_deadline(self) -> int | None:
        return self._next_rebalance_ms if self.config.auto_leader_rebalance_enable else None

    def run_deadlines(self, now_ms: int) -> None:
        if not self.active:
            return
        try:
            self.brokers.expire_sessions(now_ms)
            if self.config.auto_leader_rebalance_enable and now_ms >= self._next_rebalance_ms:
                self._next_rebalance_ms = now_ms + self.config.leader_imbalance_check_interval_ms
                self.rebalance_leaders(now_ms)
        except ControllerError as error:
            # The quorum's leadership went in this same pass of the node's timers (the metadata
            # log refused the write; nothing was applied): the node deactivates this controller
            # right after, and the next active one fences or rebalances in its place.
            if error.error_code != ErrorCode.not_controller:
                raise

    # --- topics ------------------------------------------------------------------------
    def create_topic(self, name: str, num_partitions: int = -1, replication_factor: int = -1,
                     configs: dict[str, str | None] | None = None, assignments: dict[int, list[int]] | None = None,
                     validate_only: bool = False, now_ms: int = 0) -> TopicImage | None:
        self.require_active()
        records = self.topic_records(name, num_partitions, replication_factor, configs or {}, assignments)
        if validate_only:
            return None
        self._admit_partitions(sum(isinstance(record, r.PartitionRecord) for record in records))
        self.write(records, now_ms)
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
            if sorted(assignments) != list(range(len(assignments))):
                raise ControllerError(ErrorCode.invalid_replica_assignment, "Partitions must be numbered from 0")
            replica_lists = [self._check_assignment(assignments[p]) for p in sorted(assignments)]
        else:
            count = self.config.num_partitions if num_partitions == -1 else num_partitions
            factor = self.config.replication_factor if replication_factor == -1 else replication_factor
            replica_lists = self._assign(count, factor)
        try:
            checked = validate_topic_configs(configs)
        except ConfigError as error:
            raise ControllerError(error.error_code, str(error)) from None
        topic_id = self.new_uuid()
        records: list[r.MetadataRecord] = [r.TopicRecord(name=name, topic_id=topic_id)]
        records += [r.ConfigRecord(resource_type=TYPE_TOPIC, resource_name=name, name=k, value=v)
                    for k, v in checked.items() if v is not None]
        records += [self._partition_record(topic_id, p, replicas) for p, replicas in enumerate(replica_lists)]
        return records

    def _colliding_topic(self, name: str) -> str | None:
        # '.' and '_' collide in Kafka's metric names, so Kafka refuses such pairs.
        normalized = name.replace(".", "_")
        for other in sorted(self.image.topics_by_name):
            if other != name and other.replace(".", "_") == normalized:
                return other
        return None

    def _check_assignment(self, replicas: list[int]) -> list[int]:
        if not replicas:
            raise ControllerError(ErrorCode.invalid_replica_assignment, "The manual partition assignment includes an empty replica list.")
        if len(set(replicas)) != len(replicas):
            raise ControllerError(ErrorCode.invalid_replica_assignment,
                                  f"The manual partition assignment includes duplicate replicas: {replicas}")
        for broker in replicas:
            if broker not in self.image.brokers:
                raise ControllerError(ErrorCode.invalid_replica_assignment,
                                      f"The manual partition assignment includes broker {broker}, but no such broker is registered.")
        return list(replicas)

    def _assign(self, count: int, factor: int, start: int | None = None) -> list[list[int]]:
        """Replica lists for `count` new partitions, as Kafka's StripedReplicaPlacer: striped
        from a random start so that leaders and followers spread evenly; unfenced brokers first,
        fenced (registered, not alive) ones only when the unfenced are too few, and the leader
        (first replica) always an unfenced one."""
        if count <= 0 or count > limits.partitions_per_topic_max:
            raise ControllerError(ErrorCode.invalid_partitions, "Number of partitions must be larger than 0.")
        if factor <= 0:
            raise ControllerError(ErrorCode.invalid_replication_factor, "Replication factor must be larger than 0.")
        unfenced = [b.broker_id for b in self.image.alive_brokers()]
        fenced = [b for b in sorted(self.image.brokers) if b not in unfenced]
        if factor > len(unfenced) + len(fenced):
            raise ControllerError(ErrorCode.invalid_replication_factor,
                                  f"Unable to replicate the partition {factor} time(s): "
                                  f"The target replication factor of {factor} cannot be reached because "
                                  f"only {len(unfenced) + len(fenced)} broker(s) are registered.")
        if not unfenced:
            raise ControllerError(ErrorCode.invalid_replication_factor,
                                  "Unable to replicate the partition: all brokers are currently fenced.")
        first = self.rng.randrange(len(unfenced)) if start is None else start
        lists = []
        for p in range(count):
            shift = (first + p) % len(unfenced)
            alive = unfenced[shift:] + unfenced[:shift]
            lists.append((alive + fenced[p % max(1, len(fenced)):] + fenced[:p % max(1, len(fenced))])[:factor])
        return lists

    def _partition_record(self, topic_id: uuid.UUID, partition: int, replicas: list[int]) -> r.PartitionRecord:
        acceptable = pc.acceptable_leader(self.image.brokers)
        isr = tuple(b for b in replicas if acceptable(b)) or tuple(replicas)
        leader = next((b for b in replicas if acceptable(b)), -1)
        return r.PartitionRecord(partition_id=partition, topic_id=topic_id, replicas=tuple(replicas), isr=isr,
                                 leader=leader, leader_epoch=0, partition_epoch=0)

    def delete_topic(self, name: str, now_ms: int = 0) -> str:
        self.require_active()
        topic = self.image.topic(name)
        if topic is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition,
                                  "This server does not host this topic-partition.")
        if not self.config.delete_topic_enable:
            raise ControllerError(ErrorCode.topic_deletion_disabled, "Topic deletion is disabled.")
        self.write([r.RemoveTopicRecord(topic_id=uuid.UUID(topic.topic_id))], now_ms)
        return topic.topic_id

    def create_partitions(self, name: str, total: int, assignments=None, validate_only=False, now_ms: int = 0) -> None:
        self.require_active()
        topic = self.image.topic(name)
        if topic is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
        current = len(topic.partitions)
        if total <= current:
            raise ControllerError(ErrorCode.invalid_partitions,
                                  f"Topic currently has {current} partitions, which is higher than the "
                                  f"requested {total}." if total < current else
                                  f"Topic already has {current} partitions.")
        if total > limits.partitions_per_topic_max:
            raise ControllerError(ErrorCode.invalid_partitions,
                                  f"Topic {name} cannot have more than {limits.partitions_per_topic_max} partitions.")
        factor = len(topic.partitions[0].replicas)
        if assignments:
            if len(assignments) != total - current:
                raise ControllerError(ErrorCode.invalid_replica_assignment,
                                      f"Increasing the number of partitions by {total - current} but "
                                      f"{len(assignments)} assignments provided.")
            new_lists = [self._check_assignment(list(a)) for a in assignments]
        else:
            new_lists = self._assign(total - current, factor)
        topic_id = uuid.UUID(topic.topic_id)
        records = [self._partition_record(topic_id, current + i, lst) for i, lst in enumerate(new_lists)]
        if not validate_only:
            self._admit_partitions(len(records))
            self.write(records, now_ms)

    def alter_configs(self, resource_type: int, name: str, changes: dict[str, str | None],
                      validate_only: bool = False, now_ms: int = 0) -> None:
        self.require_active()
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
        records = [r.ConfigRecord(resource_type=resource_type, resource_name=name, name=k, value=v)
                   for k, v in sorted(changes.items())]
        if not validate_only:
            self.write(records, now_ms)

    # --- partitions: AlterPartition, elections, reassignments ------------------------------
    def topic_partition(self, topic_name: str | None, topic_id: str | None, index: int):
        """(topic image, partition image) or raises UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID."""
        topic = self.image.topics_by_id.get(topic_id) if topic_id else self.image.topic(topic_name or "")
        if topic is None:
            code = ErrorCode.unknown_topic_id if topic_id else ErrorCode.unknown_topic_or_partition
            raise ControllerError(code, "This server does not host this topic.")
        part = topic.partitions.get(index)
        if part is None:
            raise ControllerError(ErrorCode.unknown_topic_or_partition, "This server does not host this topic-partition.")
        return topic, part

    def unclean_allowed(self, topic_name: str) -> bool:
        value = self.image.topic_configs(topic_name).get("unclean.leader.election.enable")
        if value is None:
            value = self.image.configs.get((TYPE_BROKER, ""), {}).get("unclean.leader.election.enable", "false")
        return value == "true"

    def alter_partition(self, broker_id: int, broker_epoch: int, topic_name: str | None, topic_id: str | None,
                        index: int, leader_epoch: int, partition_epoch: int, new_isr: list[tuple[int, int]],
                        recovery_state: int, now_ms: int) -> object:
        """A leader's ISR change (Kafka's AlterPartition); returns the partition image after
        the change (written, not yet committed). Raises ControllerError with Kafka's code."""
        self.require_active()
        self.brokers.check_epoch(broker_id, broker_epoch)
        _topic, part = self.topic_partition(topic_name, topic_id, index)
        if part.leader != broker_id:
            raise ControllerError(ErrorCode.not_leader_or_follower, f"Broker {broker_id} does not lead this partition.")
        if leader_epoch != part.leader_epoch:
            raise ControllerError(ErrorCode.fenced_leader_epoch if leader_epoch < part.leader_epoch
                                  else ErrorCode.invalid_update_version, "Stale leader epoch.")
        if partition_epoch != part.partition_epoch:
            raise ControllerError(ErrorCode.invalid_update_version, "Stale partition epoch.")
        isr = tuple(b for b, _ in new_isr)
        self._check_new_isr(part, isr, new_isr)
        if recovery_state == 1 and part.leader_recovery_state == 0:
            raise ControllerError(ErrorCode.invalid_request, "A recovered partition cannot go back to recovering.")
        change = pc.change_partition(part, pc.acceptable_leader(self.image.brokers), isr=isr,
                                     recovery_state=recovery_state)
        if change is not None:
            self.write([change], now_ms)
        return self.image.partition(part.topic_id, index)

    def _check_new_isr(self, part, isr: tuple[int, ...], with_epochs: list[tuple[int, int]]) -> None:
        if part.leader not in isr:
            raise ControllerError(ErrorCode.invalid_request, "The leader must stay in the ISR.")
        for broker_id, epoch in with_epochs:
            broker = self.image.brokers.get(broker_id)
            if broker_id not in part.replicas:
                raise ControllerError(ErrorCode.invalid_request, f"Broker {broker_id} is not a replica.")
            if broker_id in part.isr:
                continue  # members already in the ISR may stay whatever their state
            if broker is None or broker.fenced or broker.in_controlled_shutdown or (epoch >= 0 and epoch != broker.epoch):
                raise ControllerError(ErrorCode.ineligible_replica,
                                      f"Broker {broker_id} is not eligible to join the ISR (fenced, shutting down or a stale epoch).")

    def elect_leaders(self, topic_name: str, index: int, election: str, now_ms: int) -> ErrorCode:
        """ElectLeaders for one partition (PREFERRED or UNCLEAN); returns the partition's code."""
        self.require_active()
        _topic, part = self.topic_partition(topic_name, None, index)
        acceptable = pc.acceptable_leader(self.image.brokers)
        if election == pc.PREFERRED:
            if part.replicas and part.leader == part.replicas[0]:
                return ErrorCode.election_not_needed
            if not part.replicas or part.replicas[0] not in part.isr or not acceptable(part.replicas[0]):
                return ErrorCode.preferred_leader_not_available
        elif part.leader >= 0:
            return ErrorCode.election_not_needed
        change = pc.change_partition(part, acceptable, election=election)
        if change is None or change.leader in (r.NO_LEADER_CHANGE, r.NO_LEADER):
            return ErrorCode.preferred_leader_not_available if election == pc.PREFERRED else ErrorCode.eligible_leaders_not_available
        self.write([change], now_ms)
        return ErrorCode.none

    def rebalance_leaders(self, now_ms: int) -> None:
        """Kafka's auto leader rebalance: preferred leaders take their partitions back."""
        acceptable = pc.acceptable_leader(self.image.brokers)
        parts = pc.imbalanced_partitions(self.image, acceptable, self.config.leader_imbalance_per_broker_percentage)
        changes = [c for c in (pc.change_partition(p, acceptable, election=pc.PREFERRED) for p in parts) if c is not None]
        if changes:
            log.info("Moving leadership of %d partition(s) back to their preferred leaders", len(changes))
            self.write(changes, now_ms)

    def reassign(self, topic_name: str, index: int, target: list[int] | None, now_ms: int) -> None:
        """Start (target) or cancel (None) a reassignment of one partition."""
        self.require_active()
        _topic, part = self.topic_partition(topic_name, None, index)
        acceptable = pc.acceptable_leader(self.image.brokers)
        if target is None:
            if not part.adding_replicas and not part.removing_replicas:
                raise ControllerError(ErrorCode.no_reassignment_in_progress, "No reassignment is in progress for this partition.")
            original = tuple(b for b in part.replicas if b not in part.adding_replicas)
            isr = tuple(b for b in part.isr if b in original) or (original[0],)
            change = pc.change_partition(part, acceptable, replicas=original, isr=isr, adding=(), removing=())
        else:
            self._check_reassignment_target(part, target)
            base = tuple(b for b in part.replicas if b not in part.adding_replicas)
            target_t = tuple(target)
            merged = target_t + tuple(b for b in base if b not in target_t)
            adding = tuple(b for b in target_t if b not in base)
            removing = tuple(b for b in base if b not in target_t)
            if not adding and not removing and not part.adding_replicas and not part.removing_replicas:
                return  # already there
            change = pc.change_partition(part, acceptable, replicas=merged, adding=adding, removing=removing)
            if change is not None and not adding:  # only removals: complete at once
                change = self._complete_removal(part, change, target_t, acceptable)
        if change is not None:
            self.write([change], now_ms)

    def _check_reassignment_target(self, part, target: list[int]) -> None:
        if not target or len(set(target)) != len(target):
            raise ControllerError(ErrorCode.invalid_replica_assignment, f"Invalid replica list {target}.")
        for broker in target:
            if broker not in self.image.brokers:
                raise ControllerError(ErrorCode.invalid_replica_assignment,
                                      f"The proposed assignment contains non-existent brokerID {broker}.")

    def _complete_removal(self, part, change, target, acceptable):
        """A reassignment that only removes replicas finishes in its first record."""
        isr = tuple(b for b in part.isr if b in target)
        if not isr:
            raise ControllerError(ErrorCode.invalid_replica_assignment,
                                  "The proposed assignment would leave no in-sync replica.")
        return pc.change_partition(part, acceptable, replicas=target, isr=isr, adding=(), removing=())

    # --- producer ids --------------------------------------------------------------------
    def allocate_producer_ids(self, broker_id: int, broker_epoch: int, now_ms: int) -> tuple[int, int]:
        """(first id, count) of a new block for the broker; the block is in the log first."""
        self.require_active()
        self.brokers.check_epoch(broker_id, broker_epoch)
        start = self.image.next_producer_id
        if start + PRODUCER_ID_BLOCK_SIZE > (1 << 63) - 1:
            raise ControllerError(ErrorCode.unknown_server_error, "Producer ids are exhausted.")
        self.write([r.ProducerIdsRecord(broker_id=broker_id, broker_epoch=broker_epoch,
                                        next_producer_id=start + PRODUCER_ID_BLOCK_SIZE)], now_ms)
        return start, PRODUCER_ID_BLOCK_SIZE


def describe_record(image: MetadataImage, record: r.MetadataRecord) -> str:
    """One line for the operator's log (`moldau server --log-level info`), in Kafka's words."""
    topic = image.topics_by_id.get(str(getattr(record, "topic_id", "")))
    name = topic.name if topic is not None else getattr(record, "name", "?")
    if isinstance(record, r.TopicRecord):
        return f"Created topic {record.name} with topic id {record.topic_id}"
    if isinstance(record, r.PartitionRecord):
        return (f"Created partition {name}-{record.partition_id}: replicas {list(record.replicas)}, "
                f"ISR {list(record.isr)}, leader {record.leader}, leader epoch {record.leader_epoch}")
    if isinstance(record, r.PartitionChangeRecord):
        changes = [f"leader {record.leader}" if record.leader != r.NO_LEADER_CHANGE else ""]
        changes += [f"{label} {list(value)}" for label, value in (("ISR", record.isr), ("replicas", record.replicas),
                    ("adding", record.adding_replicas), ("removing", record.removing_replicas)) if value is not None]
        return f"Changed partition {name}-{record.partition_id}: {', '.join(c for c in changes if c) or 'epoch only'}"
    if isinstance(record, r.RemoveTopicRecord):
        return f"Deleted topic {name} (topic id {record.topic_id})"
    if isinstance(record, r.ConfigRecord):
        kind = {2: "topic", 4: "broker"}.get(record.resource_type, f"resource type {record.resource_type}")
        target = f"{kind} {record.resource_name}" if record.resource_name else f"{kind} default"
        if record.value is None:
            return f"Removed config {record.name} of {target}"
        return f"Set config {record.name}={record.value} on {target}"
    if isinstance(record, r.RegisterBrokerRecord):
        where = ", ".join(f"{e.name}://{e.host}:{e.port}" for e in record.end_points)
        return f"Registered broker {record.broker_id} (epoch {record.broker_epoch}) at {where}"
    if isinstance(record, r.BrokerRegistrationChangeRecord):
        state = {1: "fenced", -1: "unfenced"}.get(record.fenced, "")
        if record.in_controlled_shutdown:
            state = (state + ", " if state else "") + "in controlled shutdown"
        return f"Broker {record.broker_id} is {state or 'unchanged'}"
    if isinstance(record, r.ProducerIdsRecord):
        return f"Producer ids up to {record.next_producer_id - 1} handed to broker {record.broker_id}"
    return type(record).__name__
