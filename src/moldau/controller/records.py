"""Metadata records: every change to the cluster's shape is one of these, appended to the
metadata log and replayed into the metadata image (KRaft's model, simplified).

Each record is a frozen dataclass; `encode`/`decode` turn it into the value bytes stored in
the `__cluster_metadata` log (JSON with a "type" discriminator, so the log is readable with any
Kafka consumer tool and forward-compatible: unknown fields are ignored on replay).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, slots=True)
class TopicRecord:
    name: str
    topic_id: str  # a UUID in canonical text form


@dataclass(frozen=True, slots=True)
class PartitionRecord:
    topic_id: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0


@dataclass(frozen=True, slots=True)
class PartitionChangeRecord:
    """Leader or ISR change; None fields keep their value."""

    topic_id: str
    partition: int
    leader: int | None = None
    isr: tuple[int, ...] | None = None
    replicas: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class RemoveTopicRecord:
    topic_id: str


@dataclass(frozen=True, slots=True)
class ConfigRecord:
    """A dynamic config: resource_type 2 = topic, 4 = broker (Kafka's ConfigResource types).
    value None removes the override."""

    resource_type: int
    resource_name: str
    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class RegisterBrokerRecord:
    """host/port: the first advertised broker listener; endpoints: every advertised listener
    as (name, host, port, security protocol), so that Metadata answers each client with the
    endpoints of the listener it connected to (Kafka's RegisterBrokerRecord.EndPoints)."""

    broker_id: int
    host: str
    port: int
    rack: str | None = None
    incarnation_id: str = ""
    endpoints: tuple[tuple[str, str, int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterIdRecord:
    cluster_id: str


@dataclass(frozen=True, slots=True)
class UserScramCredentialRecord:
    """A user's SCRAM credential (Kafka's record of the same name and fields): mechanism 1 =
    SCRAM-SHA-256, 2 = SCRAM-SHA-512. The password itself is never stored: only what a SCRAM
    server needs to check a proof (RFC 5802). Bytes are hex in this JSON encoding."""

    name: str
    mechanism: int
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


@dataclass(frozen=True, slots=True)
class RemoveUserScramCredentialRecord:
    name: str
    mechanism: int


@dataclass(frozen=True, slots=True)
class AccessControlEntryRecord:
    """One ACL (Kafka's AccessControlEntryRecord), with Kafka's codes: resource_type (2 topic,
    3 group, 4 cluster, 5 transactional id, 6 delegation token, 7 user), pattern_type (3 literal,
    4 prefixed), operation (AclOperation) and permission_type (2 deny, 3 allow)."""

    id: uuid.UUID  # names this ACL, so that deleting it needs nothing else
    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int


@dataclass(frozen=True, slots=True)
class RemoveAccessControlEntryRecord:
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class EntityData:
    """One part of a quota entity: entity_type user, client-id or ip; entity_name None for the
    default entity."""

    entity_type: str
    entity_name: str | None = None


@dataclass(frozen=True, slots=True)
class ClientQuotaRecord:
    """One quota value of one entity (Kafka's ClientQuotaRecord); remove drops it."""

    entity: tuple[EntityData, ...]
    key: str
    value: float = 0.0
    remove: bool = False


RECORD_TYPES = {
    cls.__name__: cls
    for cls in (
        TopicRecord,
        PartitionRecord,
        PartitionChangeRecord,
        RemoveTopicRecord,
        ConfigRecord,
        RegisterBrokerRecord,
        ClusterIdRecord,
        UserScramCredentialRecord,
        RemoveUserScramCredentialRecord,
        AccessControlEntryRecord,
        RemoveAccessControlEntryRecord,
        ClientQuotaRecord,
    )
}

MetadataRecord = (
    TopicRecord
    | PartitionRecord
    | PartitionChangeRecord
    | RemoveTopicRecord
    | ConfigRecord
    | RegisterBrokerRecord
    | ClusterIdRecord
    | UserScramCredentialRecord
    | RemoveUserScramCredentialRecord
    | AccessControlEntryRecord
    | RemoveAccessControlEntryRecord
    | ClientQuotaRecord
)


def encode(record: MetadataRecord) -> bytes:
    body = asdict(record)
    body["type"] = type(record).__name__
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=_json_value).encode()


def _json_value(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


_BYTES_FIELDS = {"salt", "stored_key", "server_key"}


def decode(value: bytes) -> MetadataRecord:
    body = json.loads(value)
    cls = RECORD_TYPES[body.pop("type")]
    known = {f.name for f in fields(cls)}
    kwargs = {k: _tuples(v) for k, v in body.items() if k in known}
    for key in _BYTES_FIELDS & kwargs.keys():
        kwargs[key] = bytes.fromhex(kwargs[key])
    if cls in (AccessControlEntryRecord, RemoveAccessControlEntryRecord):
        kwargs["id"] = uuid.UUID(kwargs["id"])
    if cls is ClientQuotaRecord:
        kwargs["entity"] = tuple(EntityData(**part) for part in body["entity"])
    return cls(**kwargs)




def _tuples(value):
    """JSON arrays back into the tuples the records hold (nested too: endpoints)."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value
