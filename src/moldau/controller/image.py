"""The metadata image: the cluster's shape as a node sees it, built only by replaying metadata
records (controller/records.py) in log order.

Nothing else mutates it. Every node keeps one image of the committed metadata log (what the
broker acts on); the active controller keeps a second one that also holds the records it has
appended and not yet seen committed (`copy()` makes it when the controller takes over).

Kafka's rules for applying records, kept here: a PartitionChangeRecord that carries a leader —
even the same one — starts a new leader epoch; every change bumps the partition epoch; a
broker registers fenced and is unfenced or fenced by later records; a re-registration replaces
the old registration (a new broker epoch).

Invariants: every partition belongs to a known topic; the leader is -1 or a member of the ISR;
ISR ⊆ replicas; leader epochs and partition epochs only grow.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from moldau.controller import records as r


@dataclass(frozen=True, slots=True)
class PartitionImage:
    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()
    leader_recovery_state: int = 0  # 1 while recovering from an unclean election

    @property
    def target_replicas(self) -> tuple[int, ...]:
        """The replicas once a reassignment under way completes."""
        return tuple(b for b in self.replicas if b not in self.removing_replicas)


@dataclass(slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: dict[int, PartitionImage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str  # the listener name
    host: str
    port: int
    security_protocol: str


@dataclass(frozen=True, slots=True)
class BrokerImage:
    broker_id: int
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    epoch: int = 0
    incarnation_id: str = ""
    fenced: bool = False
    in_controlled_shutdown: bool = False
    registered_offset: int = -1  # metadata log offset of the registration

    def listener_endpoint(self, listener: str | None = None) -> Endpoint | None:
        """The endpoint of `listener` (None: the first one); None when there is no such listener."""
        for endpoint in self.endpoints:
            if listener is None or endpoint.name == listener:
                return endpoint
        return None

    def endpoint(self, listener_name: str | None) -> tuple[str, int] | None:
        """(host, port) where a client of `listener_name` reaches this broker; None when the
        broker has no such listener (Kafka leaves it out of the answer)."""
        endpoint = self.listener_endpoint(listener_name)
        return (endpoint.host, endpoint.port) if endpoint is not None else None

    @property
    def host(self) -> str:
        endpoint = self.listener_endpoint()
        return endpoint.host if endpoint else ""

    @property
    def port(self) -> int:
        endpoint = self.listener_endpoint()
        return endpoint.port if endpoint else -1

    @property
    def eligible_leader(self) -> bool:
        """May lead partitions: alive and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown


class MetadataImage:
    def __init__(self) -> None:
        self.topics_by_name: dict[str, TopicImage] = {}
        self.topics_by_id: dict[str, TopicImage] = {}
        self.brokers: dict[int, BrokerImage] = {}
        # (resource_type, resource_name) -> {config name: value}
        self.configs: dict[tuple[int, str], dict[str, str]] = {}
        # topic id -> name of every deleted topic: listeners react to a RemoveTopicRecord
        # after it was applied, and the record carries only the id.
        self.removed_topic_names: dict[str, str] = {}
        self.next_producer_id = 0  # the first id of the next block the controller hands out
        self.features: dict[str, int] = {}
        self.acls: dict[str, r.AccessControlEntryRecord] = {}  # by id (canonical text)
        self.scram_credentials: dict[tuple[str, int], r.UserScramCredentialRecord] = {}
        # ((entity type, entity name or None), ...) -> {quota key: value}
        self.client_quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = {}
        self.offset = -1  # offset in the metadata log of the last applied record
        self.cluster_id = ""  # from meta.properties; not a record (as in Kafka)

    def copy(self) -> "MetadataImage":
        """An independent copy (records are immutable, so one level of dicts is copied)."""
        other = copy.copy(self)
        other.topics_by_name = {}
        other.topics_by_id = {}
        for name, topic in self.topics_by_name.items():
            clone = TopicImage(topic.name, topic.topic_id, dict(topic.partitions))
            other.topics_by_name[name] = clone
            other.topics_by_id[topic.topic_id] = clone
        other.brokers = dict(self.brokers)
        other.configs = {key: dict(values) for key, values in self.configs.items()}
        other.removed_topic_names = dict(self.removed_topic_names)
        other.features = dict(self.features)
        other.acls = dict(self.acls)
        other.scram_credentials = dict(self.scram_credentials)
        other.client_quotas = {key: dict(values) for key, values in self.client_quotas.items()}
        return other

    # --- queries -----------------------------------------------------------------------
    def topic(self, name: str) -> TopicImage | None:
        return self.topics_by_name.get(name)

    def resolve(self, name: str | None, topic_id: object | None) -> tuple[str | None, str | None]:
        """(name, topic id) of a topic a request names by either (Fetch and Produce v13+ use
        ids); the name is None when the id is unknown, the id None when the name is."""
        topic = self.topics_by_id.get(str(topic_id)) if name is None and topic_id is not None else self.topic(name)
        if topic is None:
            return name, (None if topic_id is None else str(topic_id))
        return topic.name, topic.topic_id

    def topic_configs(self, name: str) -> dict[str, str]:
        return self.configs.get((2, name), {})

    def alive_brokers(self) -> list[BrokerImage]:
        """Registered, unfenced brokers, by id (what Metadata lists)."""
        return [self.brokers[b] for b in sorted(self.brokers) if not self.brokers[b].fenced]

    def partition(self, topic_id: str, index: int) -> PartitionImage | None:
        topic = self.topics_by_id.get(topic_id)
        return None if topic is None else topic.partitions.get(index)

    # --- applying records ----------------------------------------------------------------
    def apply(self, record: r.MetadataRecord, offset: int = -1) -> None:
        handler = getattr(self, "_apply_" + type(record).__name__)
        handler(record, offset)
        if offset >= 0:
            self.offset = offset

    def _apply_TopicRecord(self, record: r.TopicRecord, offset: int) -> None:
        assert record.name not in self.topics_by_name, f"topic {record.name} replayed twice"
        topic = TopicImage(record.name, str(record.topic_id))
        self.topics_by_name[record.name] = topic
        self.topics_by_id[topic.topic_id] = topic

    def _apply_PartitionRecord(self, record: r.PartitionRecord, offset: int) -> None:
        topic = self.topics_by_id[str(record.topic_id)]
        topic.partitions[record.partition_id] = PartitionImage(
            topic.topic_id, record.partition_id, tuple(record.replicas), tuple(record.isr), record.leader,
            record.leader_epoch, record.partition_epoch, tuple(record.adding_replicas),
            tuple(record.removing_replicas), record.leader_recovery_state)

    def _apply_PartitionChangeRecord(self, record: r.PartitionChangeRecord, offset: int) -> None:
        topic = self.topics_by_id[str(record.topic_id)]
        old = topic.partitions[record.partition_id]
        new = replace(old, partition_epoch=old.partition_epoch + 1)
        if record.isr is not None:
            new = replace(new, isr=tuple(record.isr))
        if record.replicas is not None:
            new = replace(new, replicas=tuple(record.replicas))
        if record.adding_replicas is not None:
            new = replace(new, adding_replicas=tuple(record.adding_replicas))
        if record.removing_replicas is not None:
            new = replace(new, removing_replicas=tuple(record.removing_replicas))
        if record.leader != r.NO_LEADER_CHANGE:
            new = replace(new, leader=record.leader, leader_epoch=old.leader_epoch + 1)
        if record.leader_recovery_state != -1:
            new = replace(new, leader_recovery_state=record.leader_recovery_state)
        topic.partitions[record.partition_id] = new

    def _apply_RemoveTopicRecord(self, record: r.RemoveTopicRecord, offset: int) -> None:
        topic = self.topics_by_id.pop(str(record.topic_id))
        del self.topics_by_name[topic.name]
        self.configs.pop((2, topic.name), None)
        self.removed_topic_names[topic.topic_id] = topic.name

    def _apply_ConfigRecord(self, record: r.ConfigRecord, offset: int) -> None:
        key = (record.resource_type, record.resource_name)
        entries = self.configs.setdefault(key, {})
        if record.value is None:
            entries.pop(record.name, None)
            if not entries:
                del self.configs[key]
        else:
            entries[record.name] = record.value

    def _apply_RegisterBrokerRecord(self, record: r.RegisterBrokerRecord, offset: int) -> None:
        endpoints = tuple(Endpoint(e.name, e.host, e.port, r.SECURITY_PROTOCOL_NAMES.get(e.security_protocol, "PLAINTEXT"))
                          for e in record.end_points)
        self.brokers[record.broker_id] = BrokerImage(
            record.broker_id, endpoints, record.rack, record.broker_epoch, str(record.incarnation_id),
            record.fenced, record.in_controlled_shutdown, offset)

    def _apply_UnregisterBrokerRecord(self, record: r.UnregisterBrokerRecord, offset: int) -> None:
        self.brokers.pop(record.broker_id, None)

    def _apply_FenceBrokerRecord(self, record: r.FenceBrokerRecord, offset: int) -> None:
        self._change_broker(record.id, fenced=True)

    def _apply_UnfenceBrokerRecord(self, record: r.UnfenceBrokerRecord, offset: int) -> None:
        self._change_broker(record.id, fenced=False)

    def _apply_BrokerRegistrationChangeRecord(self, record: r.BrokerRegistrationChangeRecord, offset: int) -> None:
        if record.fenced:
            self._change_broker(record.broker_id, fenced=record.fenced > 0)
        if record.in_controlled_shutdown:
            self._change_broker(record.broker_id, in_controlled_shutdown=True)

    def _change_broker(self, broker_id: int, **changes: bool) -> None:
        broker = self.brokers.get(broker_id)
        if broker is not None:
            self.brokers[broker_id] = replace(broker, **changes)

    def _apply_ProducerIdsRecord(self, record: r.ProducerIdsRecord, offset: int) -> None:
        self.next_producer_id = record.next_producer_id

    def _apply_FeatureLevelRecord(self, record: r.FeatureLevelRecord, offset: int) -> None:
        self.features[record.name] = record.feature_level

    def _apply_NoOpRecord(self, record: r.NoOpRecord, offset: int) -> None:
        pass

    def _apply_AccessControlEntryRecord(self, record: r.AccessControlEntryRecord, offset: int) -> None:
        self.acls[str(record.id)] = record

    def _apply_RemoveAccessControlEntryRecord(self, record: r.RemoveAccessControlEntryRecord, offset: int) -> None:
        self.acls.pop(str(record.id), None)

    def _apply_UserScramCredentialRecord(self, record: r.UserScramCredentialRecord, offset: int) -> None:
        self.scram_credentials[(record.name, record.mechanism)] = record

    def _apply_RemoveUserScramCredentialRecord(self, record: r.RemoveUserScramCredentialRecord, offset: int) -> None:
        self.scram_credentials.pop((record.name, record.mechanism), None)

    def _apply_ClientQuotaRecord(self, record: r.ClientQuotaRecord, offset: int) -> None:
        entity = tuple((e.entity_type, e.entity_name) for e in record.entity)
        values = self.client_quotas.setdefault(entity, {})
        if record.remove:
            values.pop(record.key, None)
            if not values:
                del self.client_quotas[entity]
        else:
            values[record.key] = record.value
