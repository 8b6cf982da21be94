"""The metadata image: the cluster's shape as every broker sees it, built only by replaying
metadata records (controller/records.py) in log order.

Nothing else mutates it. The controller decides which records to write; the broker reacts to
the image (creating and deleting partition logs, becoming leader). With a single node the
controller and the broker share one image; in the cluster each broker replays the replicated
metadata log into its own.

Invariants: every partition belongs to a known topic; leader ∈ isr ⊆ replicas (or leader is
-1 when no replica is eligible); leader_epoch only grows.
"""

from __future__ import annotations

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


@dataclass(slots=True)
class TopicImage:
    name: str
    topic_id: str
    partitions: dict[int, PartitionImage] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BrokerImage:
    broker_id: int
    host: str
    port: int
    rack: str | None
    # listener name -> (host, port) of every advertised listener
    endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)

    def endpoint(self, listener_name: str | None) -> tuple[str, int] | None:
        """Where a client of `listener_name` reaches this broker; None when the broker has no
        such listener (Kafka leaves it out of the answer). A broker registered before
        endpoints were recorded has only its host and port."""
        if not self.endpoints or listener_name is None:
            return self.host, self.port
        return self.endpoints.get(listener_name)


class MetadataImage:
    def __init__(self) -> None:
        self.cluster_id: str = ""
        self.topics_by_name: dict[str, TopicImage] = {}
        self.topics_by_id: dict[str, TopicImage] = {}
        self.brokers: dict[int, BrokerImage] = {}
        # (resource_type, resource_name) -> {config name: value}
        self.configs: dict[tuple[int, str], dict[str, str]] = {}
        # topic id -> name of every deleted topic: listeners react to a RemoveTopicRecord
        # after it was applied, and the record carries only the id.
        self.removed_topic_names: dict[str, str] = {}
        # Security (security/): SCRAM credentials by (user, mechanism), ACLs by id, client
        # quotas by entity ((type, name), ...) -> {quota key: value}.
        self.scram_credentials: dict[tuple[str, int], r.UserScramCredentialRecord] = {}
        self.acls: dict[str, r.AccessControlEntryRecord] = {}
        self.client_quotas: dict[tuple[tuple[str, str | None], ...], dict[str, float]] = {}
        self.offset = -1  # offset in the metadata log of the last applied record

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

    def apply(self, record: r.MetadataRecord) -> None:
        handler = getattr(self, "_apply_" + type(record).__name__)
        handler(record)

    def _apply_ClusterIdRecord(self, record: r.ClusterIdRecord) -> None:
        self.cluster_id = record.cluster_id

    def _apply_TopicRecord(self, record: r.TopicRecord) -> None:
        assert record.name not in self.topics_by_name, f"topic {record.name} replayed twice"
        topic = TopicImage(record.name, record.topic_id)
        self.topics_by_name[record.name] = topic
        self.topics_by_id[record.topic_id] = topic

    def _apply_PartitionRecord(self, record: r.PartitionRecord) -> None:
        topic = self.topics_by_id[record.topic_id]
        topic.partitions[record.partition] = PartitionImage(
            record.topic_id,
            record.partition,
            tuple(record.replicas),
            tuple(record.isr),
            record.leader,
            record.leader_epoch,
            record.partition_epoch,
        )

    def _apply_PartitionChangeRecord(self, record: r.PartitionChangeRecord) -> None:
        topic = self.topics_by_id[record.topic_id]
        old = topic.partitions[record.partition]
        new = replace(old, partition_epoch=old.partition_epoch + 1)
        if record.isr is not None:
            new = replace(new, isr=tuple(record.isr))
        if record.replicas is not None:
            new = replace(new, replicas=tuple(record.replicas))
        if record.leader is not None and record.leader != old.leader:
            new = replace(new, leader=record.leader, leader_epoch=old.leader_epoch + 1)
        topic.partitions[record.partition] = new

    def _apply_RemoveTopicRecord(self, record: r.RemoveTopicRecord) -> None:
        topic = self.topics_by_id.pop(record.topic_id)
        del self.topics_by_name[topic.name]
        self.configs.pop((2, topic.name), None)
        self.removed_topic_names[record.topic_id] = topic.name

    def _apply_ConfigRecord(self, record: r.ConfigRecord) -> None:
        key = (record.resource_type, record.resource_name)
        entries = self.configs.setdefault(key, {})
        if record.value is None:
            entries.pop(record.name, None)
        else:
            entries[record.name] = record.value

    def _apply_RegisterBrokerRecord(self, record: r.RegisterBrokerRecord) -> None:
        endpoints = {name: (host, port) for name, host, port, _protocol in record.endpoints}
        self.brokers[record.broker_id] = BrokerImage(record.broker_id, record.host, record.port, record.rack, endpoints)

    def _apply_UserScramCredentialRecord(self, record: r.UserScramCredentialRecord) -> None:
        self.scram_credentials[(record.name, record.mechanism)] = record

    def _apply_RemoveUserScramCredentialRecord(self, record: r.RemoveUserScramCredentialRecord) -> None:
        self.scram_credentials.pop((record.name, record.mechanism), None)

    def _apply_AccessControlEntryRecord(self, record: r.AccessControlEntryRecord) -> None:
        self.acls[str(record.id)] = record

    def _apply_RemoveAccessControlEntryRecord(self, record: r.RemoveAccessControlEntryRecord) -> None:
        self.acls.pop(str(record.id), None)

    def _apply_ClientQuotaRecord(self, record: r.ClientQuotaRecord) -> None:
        entity = tuple((part.entity_type, part.entity_name) for part in record.entity)
        values = self.client_quotas.setdefault(entity, {})
        if record.remove:
            values.pop(record.key, None)
            if not values:
                del self.client_quotas[entity]
        else:
            values[record.key] = record.value
