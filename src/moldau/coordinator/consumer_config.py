"""Settings of KIP-848 consumer groups: the broker's `group.consumer.*` keys and group configs.

Theory of operation. The broker owns a consumer group's session timeout and heartbeat interval
(KIP-848 moved them off the client). `ConsumerGroupSettings.from_properties` reads Kafka's
server.properties keys with Kafka 4.1's defaults and bounds, and refuses what Kafka refuses on
start (a default outside its min/max, a heartbeat interval not below the session timeout, an
unknown assignor). A group may override the two timings with group configs
(`kafka-configs --entity-type groups --entity-name G --alter --add-config
consumer.session.timeout.ms=...`), stored as ConfigRecords of resource type GROUP (32) in the
metadata log; `validate_group_configs` checks them against the broker's bounds before they are
written, and `effective` merges them over the broker defaults when a heartbeat needs them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from moldau import limits
from moldau.coordinator.assignors import ASSIGNORS

TYPE_GROUP = 32  # ConfigResource.Type.GROUP
SOURCE_GROUP = 8  # DescribeConfigs config_source GROUP_CONFIG

SESSION_TIMEOUT = "consumer.session.timeout.ms"
HEARTBEAT_INTERVAL = "consumer.heartbeat.interval.ms"
GROUP_CONFIG_KEYS = (HEARTBEAT_INTERVAL, SESSION_TIMEOUT)

MIGRATION_POLICIES = ("disabled", "upgrade", "downgrade", "bidirectional")

_CLASS_NAMES = {"org.apache.kafka.coordinator.group.assignor.UniformAssignor": "uniform",
                "org.apache.kafka.coordinator.group.assignor.RangeAssignor": "range",
                "org.apache.kafka.coordinator.group.api.assignor.UniformAssignor": "uniform",
                "org.apache.kafka.coordinator.group.api.assignor.RangeAssignor": "range"}


class ConsumerConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ConsumerGroupSettings:
    session_timeout_ms: int = 45_000
    min_session_timeout_ms: int = 45_000
    max_session_timeout_ms: int = 60_000
    heartbeat_interval_ms: int = 5_000
    min_heartbeat_interval_ms: int = 5_000
    max_heartbeat_interval_ms: int = 15_000
    max_size: int = limits.group_members_max
    assignors: tuple[str, ...] = ("uniform", "range")
    migration_policy: str = "bidirectional"
    rebalance_protocols: tuple[str, ...] = ("classic", "consumer")

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "ConsumerGroupSettings":
        ints = {"group.consumer.session.timeout.ms": "session_timeout_ms",
                "group.consumer.min.session.timeout.ms": "min_session_timeout_ms",
                "group.consumer.max.session.timeout.ms": "max_session_timeout_ms",
                "group.consumer.heartbeat.interval.ms": "heartbeat_interval_ms",
                "group.consumer.min.heartbeat.interval.ms": "min_heartbeat_interval_ms",
                "group.consumer.max.heartbeat.interval.ms": "max_heartbeat_interval_ms",
                "group.consumer.max.size": "max_size"}
        changes: dict = {}
        for key, value in props.items():
            if key in ints:
                changes[ints[key]] = _positive(key, value)
            elif key == "group.consumer.assignors":
                changes["assignors"] = _assignors(value)
            elif key == "group.consumer.migration.policy":
                if value.strip().lower() not in MIGRATION_POLICIES:
                    raise ConsumerConfigError(f"{key} must be one of {', '.join(MIGRATION_POLICIES)}")
                changes["migration_policy"] = value.strip().lower()
            elif key == "group.coordinator.rebalance.protocols":
                changes["rebalance_protocols"] = tuple(p.strip().lower() for p in value.split(",") if p.strip())
        settings = replace(cls(), **changes)
        settings._check()
        return settings

    def _check(self) -> None:
        if not self.min_session_timeout_ms <= self.session_timeout_ms <= self.max_session_timeout_ms:
            raise ConsumerConfigError("group.consumer.session.timeout.ms must be between "
                                      "group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms")
        if not self.min_heartbeat_interval_ms <= self.heartbeat_interval_ms <= self.max_heartbeat_interval_ms:
            raise ConsumerConfigError("group.consumer.heartbeat.interval.ms must be between "
                                      "group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ConsumerConfigError("group.consumer.heartbeat.interval.ms must be less than "
                                      "group.consumer.session.timeout.ms")
        if "classic" not in self.rebalance_protocols:
            raise ConsumerConfigError("group.coordinator.rebalance.protocols must contain classic")

    def allows(self, direction: str) -> bool:
        """Whether an empty group may convert `direction` ("upgrade": classic -> consumer)."""
        return self.migration_policy in (direction, "bidirectional")

    def effective(self, overrides: dict[str, str]) -> tuple[int, int]:
        """(session timeout, heartbeat interval) of a group with these group configs."""
        session = int(overrides.get(SESSION_TIMEOUT, self.session_timeout_ms))
        heartbeat = int(overrides.get(HEARTBEAT_INTERVAL, self.heartbeat_interval_ms))
        return session, heartbeat

    def defaults(self) -> dict[str, str]:
        return {SESSION_TIMEOUT: str(self.session_timeout_ms), HEARTBEAT_INTERVAL: str(self.heartbeat_interval_ms)}


def validate_group_configs(settings: ConsumerGroupSettings, current: dict[str, str],
                           changes: dict[str, str | None]) -> None:
    """Raise ConsumerConfigError (Kafka: INVALID_CONFIG) for a change Kafka would refuse."""
    merged = dict(current)
    for key, value in changes.items():
        if key not in GROUP_CONFIG_KEYS:
            raise ConsumerConfigError(f"Unknown group config name: {key}")
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(_int(key, value))
    session, heartbeat = settings.effective(merged)
    if not settings.min_session_timeout_ms <= session <= settings.max_session_timeout_ms:
        raise ConsumerConfigError(f"{SESSION_TIMEOUT} must be between {settings.min_session_timeout_ms} and "
                                  f"{settings.max_session_timeout_ms}")
    if not settings.min_heartbeat_interval_ms <= heartbeat <= settings.max_heartbeat_interval_ms:
        raise ConsumerConfigError(f"{HEARTBEAT_INTERVAL} must be between {settings.min_heartbeat_interval_ms} and "
                                  f"{settings.max_heartbeat_interval_ms}")
    if heartbeat >= session:
        raise ConsumerConfigError(f"{HEARTBEAT_INTERVAL} must be less than {SESSION_TIMEOUT}")


def _assignors(value: str) -> tuple[str, ...]:
    names = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        name = _CLASS_NAMES.get(item, item.lower())
        if name not in ASSIGNORS:
            raise ConsumerConfigError(f"unknown assignor {item} in group.consumer.assignors "
                                      f"(supported: {', '.join(ASSIGNORS)})")
        names.append(name)
    if not names:
        raise ConsumerConfigError("group.consumer.assignors must name at least one assignor")
    return tuple(names)


def _int(key: str, value: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConsumerConfigError(f"Invalid value {value} for configuration {key}: Not a number of type INT") from None


def _positive(key: str, value: str) -> int:
    number = _int(key, value)
    if number <= 0:
        raise ConsumerConfigError(f"{key} must be positive")
    return number
