"""Metadata records in Kafka's own format: every change to the cluster's shape is one of these.

Theory of operation. The controller turns each accepted change into records, appends them to
the metadata log `__cluster_metadata-0` (replicated by Raft, raft/), and every node replays
the committed ones, in log order, into its metadata image (image.py). The records are
Kafka's KRaft metadata records — the same api keys, versions and field layouts as the JSON
definitions in Kafka's `metadata/src/main/resources/common/metadata/` — declared here as
kio-style dataclasses and written by kio's writer, each value framed as Kafka's
`ApiMessageAndVersion` (unsigned varints: frame version 1, api key, version; then the
message). So `kafka-dump-log.sh --cluster-metadata-decoder` reads a Moldau metadata log.

Where Kafka stores something outside the log, so do we: the cluster id lives in
`meta.properties` (controller/storage.py), not in a record.

Logs written by Moldau before this format (one JSON object per record) are read by
`decode_legacy_json`, so an old single-node data directory is converted on start instead of
being lost (controller/storage.py does the conversion).

Field names are Kafka's, in snake_case. Topic ids are `uuid.UUID` in records (the image keys
topics by the id's canonical text).
"""

# No `from __future__ import annotations`: kio reads the field types at runtime.

import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kio.serial import entity_reader, entity_writer
from kio.static.constants import EntityType

from moldau.protocol.codec import read_uvarint, write_uvarint

FRAME_VERSION = 1
NO_LEADER = -1
NO_LEADER_CHANGE = -2  # PartitionChangeRecord.leader: the leader did not change

# Kafka's SecurityProtocol ids, for broker endpoints.
SECURITY_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}
SECURITY_PROTOCOL_NAMES = {v: k for k, v in SECURITY_PROTOCOL_IDS.items()}


def _f(kafka_type: str, tag: int | None = None, **kwargs: Any) -> Any:
    metadata: dict[str, Any] = {"kafka_type": kafka_type}
    if tag is not None:
        metadata["tag"] = tag
    return field(metadata=metadata, **kwargs)


def _record(api_key: int, version: int = 0):
    """Declare a metadata record: Kafka's api key and the version written."""

    def wrap(cls):
        cls.__type__ = EntityType.data
        cls.__version__ = version
        cls.__flexible__ = True
        cls.API_KEY = api_key
        return dataclass(frozen=True, slots=True, kw_only=True)(cls)

    return wrap


def _nested(cls):
    cls.__type__ = EntityType.nested
    cls.__version__ = 0
    cls.__flexible__ = True
    return dataclass(frozen=True, slots=True, kw_only=True)(cls)


# --- brokers -----------------------------------------------------------------------------
@_nested
class BrokerEndpoint:
    name: str = _f("string")
    host: str = _f("string")
    port: int = _f("uint16")
    security_protocol: int = _f("int16")


@_nested
class BrokerFeature:
    name: str = _f("string")
    min_supported_version: int = _f("int16")
    max_supported_version: int = _f("int16")


@_record(0, version=1)
class RegisterBrokerRecord:
    API_KEY: ClassVar[int]
    broker_id: int = _f("int32")
    incarnation_id: uuid.UUID = _f("uuid")
    broker_epoch: int = _f("int64")
    end_points: tuple[BrokerEndpoint, ...] = field(default=())
    features: tuple[BrokerFeature, ...] = field(default=())
    rack: str | None = _f("string", default=None)
    fenced: bool = _f("bool", default=True)
    in_controlled_shutdown: bool = _f("bool", default=False)


@_record(1)
class UnregisterBrokerRecord:
    API_KEY: ClassVar[int]
    broker_id: int = _f("int32")
    broker_epoch: int = _f("int64")


@_record(7)
class FenceBrokerRecord:
    API_KEY: ClassVar[int]
    id: int = _f("int32")
    epoch: int = _f("int64")


@_record(8)
class UnfenceBrokerRecord:
    API_KEY: ClassVar[int]
    id: int = _f("int32")
    epoch: int = _f("int64")


@_record(17, version=1)
class BrokerRegistrationChangeRecord:
    """fenced: -1 unfenced, 0 no change, 1 fenced; in_controlled_shutdown: 0 no change, 1 yes."""

    API_KEY: ClassVar[int]
    broker_id: int = _f("int32")
    broker_epoch: int = _f("int64")
    fenced: int = _f("int8", tag=0, default=0)
    in_controlled_shutdown: int = _f("int8", tag=1, default=0)


# --- topics and partitions ---------------------------------------------------------------
@_record(2)
class TopicRecord:
    API_KEY: ClassVar[int]
    name: str = _f("string")
    topic_id: uuid.UUID = _f("uuid")


@_record(3)
class PartitionRecord:
    API_KEY: ClassVar[int]
    partition_id: int = _f("int32")
    topic_id: uuid.UUID = _f("uuid")
    replicas: tuple[int, ...] = _f("int32")
    isr: tuple[int, ...] = _f("int32")
    removing_replicas: tuple[int, ...] = _f("int32", default=())
    adding_replicas: tuple[int, ...] = _f("int32", default=())
    leader: int = _f("int32")
    leader_recovery_state: int = _f("int8", tag=0, default=0)
    leader_epoch: int = _f("int32", default=0)
    partition_epoch: int = _f("int32", default=0)


@_record(5)
class PartitionChangeRecord:
    """A change of one partition; None (or NO_LEADER_CHANGE, -1 for the recovery state) keeps
    the current value. A present leader — even the same one — starts a new leader epoch."""

    API_KEY: ClassVar[int]
    partition_id: int = _f("int32")
    topic_id: uuid.UUID = _f("uuid")
    isr: tuple[int, ...] | None = _f("int32", tag=0, default=None)
    leader: int = _f("int32", tag=1, default=NO_LEADER_CHANGE)
    replicas: tuple[int, ...] | None = _f("int32", tag=2, default=None)
    removing_replicas: tuple[int, ...] | None = _f("int32", tag=3, default=None)
    adding_replicas: tuple[int, ...] | None = _f("int32", tag=4, default=None)
    leader_recovery_state: int = _f("int8", tag=5, default=-1)


@_record(9)
class RemoveTopicRecord:
    API_KEY: ClassVar[int]
    topic_id: uuid.UUID = _f("uuid")


@_record(4)
class ConfigRecord:
    """resource_type: Kafka's ConfigResource type (2 topic, 4 broker, ...); value None removes."""

    API_KEY: ClassVar[int]
    resource_type: int = _f("int8")
    resource_name: str = _f("string")
    name: str = _f("string")
    value: str | None = _f("string", default=None)


# --- producer ids, features, liveness ----------------------------------------------------
@_record(15)
class ProducerIdsRecord:
    API_KEY: ClassVar[int]
    broker_id: int = _f("int32")
    broker_epoch: int = _f("int64", default=-1)
    next_producer_id: int = _f("int64")


@_record(12)
class FeatureLevelRecord:
    API_KEY: ClassVar[int]
    name: str = _f("string")
    feature_level: int = _f("int16")


@_record(20)
class NoOpRecord:
    API_KEY: ClassVar[int]


# --- security (ACLs, SCRAM credentials, client quotas) -----------------------------------
@_record(18)
class AccessControlEntryRecord:
    API_KEY: ClassVar[int]
    id: uuid.UUID = _f("uuid")
    resource_type: int = _f("int8")
    resource_name: str = _f("string")
    pattern_type: int = _f("int8")
    principal: str = _f("string")
    host: str = _f("string")
    operation: int = _f("int8")
    permission_type: int = _f("int8")


@_record(19)
class RemoveAccessControlEntryRecord:
    API_KEY: ClassVar[int]
    id: uuid.UUID = _f("uuid")


@_record(11)
class UserScramCredentialRecord:
    API_KEY: ClassVar[int]
    name: str = _f("string")
    mechanism: int = _f("int8")
    salt: bytes = _f("bytes")
    stored_key: bytes = _f("bytes")
    server_key: bytes = _f("bytes")
    iterations: int = _f("int32")


@_record(22)
class RemoveUserScramCredentialRecord:
    API_KEY: ClassVar[int]
    name: str = _f("string")
    mechanism: int = _f("int8")


@_nested
class EntityData:
    entity_type: str = _f("string")
    entity_name: str | None = _f("string", default=None)


@_record(14)
class ClientQuotaRecord:
    API_KEY: ClassVar[int]
    entity: tuple[EntityData, ...] = field(default=())
    key: str = _f("string")
    value: float = _f("float64", default=0.0)
    remove: bool = _f("bool", default=False)


RECORD_TYPES: dict[int, type] = {
    cls.API_KEY: cls
    for cls in (
        RegisterBrokerRecord, UnregisterBrokerRecord, FenceBrokerRecord, UnfenceBrokerRecord,
        BrokerRegistrationChangeRecord, TopicRecord, PartitionRecord, PartitionChangeRecord,
        RemoveTopicRecord, ConfigRecord, ProducerIdsRecord, FeatureLevelRecord, NoOpRecord,
        AccessControlEntryRecord, RemoveAccessControlEntryRecord, UserScramCredentialRecord,
        RemoveUserScramCredentialRecord, ClientQuotaRecord,
    )
}

MetadataRecord = Any  # one of RECORD_TYPES' classes


class MetadataParseError(ValueError):
    """A metadata record value that is not one of the records above."""


_WRITERS: dict[type, Any] = {}
_READERS: dict[type, Any] = {}


def encode(record: MetadataRecord) -> bytes:
    """The record's value bytes in the metadata log (Kafka's ApiMessageAndVersion framing)."""
    cls = type(record)
    writer = _WRITERS.get(cls)
    if writer is None:
        writer = _WRITERS[cls] = entity_writer(cls)
    buffer = io.BytesIO()
    buffer.write(write_uvarint(FRAME_VERSION) + write_uvarint(cls.API_KEY) + write_uvarint(cls.__version__))
    writer(buffer, record)
    return buffer.getvalue()


def decode(value: bytes) -> MetadataRecord:
    try:
        frame_version, pos = read_uvarint(value, 0)
        api_key, pos = read_uvarint(value, pos)
        version, pos = read_uvarint(value, pos)
    except Exception as error:
        raise MetadataParseError(f"not a metadata record: {error}") from None
    if frame_version != FRAME_VERSION:
        raise MetadataParseError(f"unknown metadata record frame version {frame_version}")
    cls = RECORD_TYPES.get(api_key)
    if cls is None:
        raise MetadataParseError(f"unknown metadata record type {api_key}")
    if version > cls.__version__:
        raise MetadataParseError(f"metadata record type {api_key} version {version} is newer than "
                                 f"this Moldau understands ({cls.__version__})")
    reader = _READERS.get(cls)
    if reader is None:
        reader = _READERS[cls] = entity_reader(cls)
    try:
        record, size = reader(memoryview(value), pos)
    except Exception as error:
        raise MetadataParseError(f"malformed metadata record type {api_key}: {error}") from None
    if pos + size != len(value):
        raise MetadataParseError(f"{len(value) - pos - size} byte(s) of garbage after metadata record type {api_key}")
    return record


# --- the JSON records of Moldau's first, single-node metadata log ----------------------------
def is_legacy_json(value: bytes) -> bool:
    return value[:1] == b"{"


def decode_legacy_json(value: bytes) -> MetadataRecord | str:
    """A record of the old JSON log, as today's record; a ClusterIdRecord comes back as the
    cluster id string (it now lives in meta.properties)."""
    body = json.loads(value)
    kind = body.pop("type")
    if kind == "ClusterIdRecord":
        return body["cluster_id"]
    if kind == "TopicRecord":
        return TopicRecord(name=body["name"], topic_id=uuid.UUID(body["topic_id"]))
    if kind == "PartitionRecord":
        return PartitionRecord(partition_id=body["partition"], topic_id=uuid.UUID(body["topic_id"]),
                               replicas=tuple(body["replicas"]), isr=tuple(body["isr"]), leader=body["leader"],
                               leader_epoch=body.get("leader_epoch", 0), partition_epoch=body.get("partition_epoch", 0))
    if kind == "PartitionChangeRecord":
        leader = body.get("leader")
        return PartitionChangeRecord(partition_id=body["partition"], topic_id=uuid.UUID(body["topic_id"]),
                                     isr=_tuple_or_none(body.get("isr")), replicas=_tuple_or_none(body.get("replicas")),
                                     leader=NO_LEADER_CHANGE if leader is None else leader)
    if kind == "RemoveTopicRecord":
        return RemoveTopicRecord(topic_id=uuid.UUID(body["topic_id"]))
    if kind == "ConfigRecord":
        return ConfigRecord(resource_type=body["resource_type"], resource_name=body["resource_name"],
                            name=body["name"], value=body.get("value"))
    if kind == "RegisterBrokerRecord":
        listed = body.get("endpoints") or [("PLAINTEXT", body["host"], body["port"], "PLAINTEXT")]
        endpoints = tuple(BrokerEndpoint(name=name, host=host, port=port, security_protocol=SECURITY_PROTOCOL_IDS.get(protocol, 0))
                          for name, host, port, protocol in listed)
        return RegisterBrokerRecord(broker_id=body["broker_id"], incarnation_id=uuid.UUID(int=0), broker_epoch=0,
                                    end_points=endpoints, rack=body.get("rack"), fenced=False)
    raise MetadataParseError(f"unknown legacy metadata record type {kind!r}")


def _tuple_or_none(value: Any) -> tuple | None:
    return None if value is None else tuple(value)
