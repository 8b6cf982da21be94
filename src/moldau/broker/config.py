"""Broker configuration from Kafka's `server.properties` keys.

`BrokerConfig.from_properties` reads the keys that apply to Moldau, converts Kafka's
alternative spellings (log.retention.hours → log.retention.ms, log.dirs → data dir, ...),
and reports the rest: Kafka keys that have no meaning here are ignored quietly when they are
harmless (thread counts, buffer sizes), and any other key yields one warning line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moldau import limits

# Kafka keys that configure things Moldau does differently or not at all; accepted silently.
_HARMLESS_KEYS = {
    "process.roles", "controller.quorum.voters", "controller.quorum.bootstrap.servers",
    "controller.listener.names", "inter.broker.listener.name", "listener.security.protocol.map",
    "num.network.threads", "num.io.threads", "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes", "num.recovery.threads.per.data.dir",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "offsets.topic.replication.factor", "offsets.topic.num.partitions", "zookeeper.connect",
    "num.replica.fetchers", "replica.lag.time.max.ms", "log.cleaner.enable",
}

# Keys copied into the broker-level defaults of topic configs (see controller/configs.py).
_TOPIC_DEFAULT_KEYS = {
    "log.cleanup.policy", "compression.type", "log.cleaner.delete.retention.ms",
    "log.segment.delete.delay.ms", "log.flush.interval.messages", "log.flush.interval.ms",
    "log.index.interval.bytes", "log.cleaner.max.compaction.lag.ms", "message.max.bytes",
    "log.message.timestamp.type", "log.cleaner.min.cleanable.ratio",
    "log.cleaner.min.compaction.lag.ms", "min.insync.replicas", "log.preallocate",
    "log.retention.bytes", "log.retention.ms", "log.segment.bytes", "log.index.size.max.bytes",
    "log.roll.jitter.ms", "log.roll.ms", "unclean.leader.election.enable",
    "log.message.timestamp.before.max.ms", "log.message.timestamp.after.max.ms",
}

# Kafka's alternative spellings in other units, and the short flush keys, lowest
# precedence first: a later alias overrides an earlier one (minutes beat hours), and the
# target key itself, when present, beats them all.
_ALIASES = (
    ("log.retention.hours", "log.retention.ms", 3_600_000),
    ("log.retention.minutes", "log.retention.ms", 60_000),
    ("log.roll.hours", "log.roll.ms", 3_600_000),
    ("log.roll.jitter.hours", "log.roll.jitter.ms", 3_600_000),
    ("flush.messages", "log.flush.interval.messages", 1),
    ("flush.ms", "log.flush.interval.ms", 1),
)
_ALIAS_KEYS = {alias for alias, _target, _factor in _ALIASES}


# The transaction coordinator's settings: server.properties key -> BrokerConfig attribute.
_TRANSACTION_KEYS = {
    "transaction.state.log.num.partitions": "transaction_state_log_num_partitions",
    "transaction.state.log.replication.factor": "transaction_state_log_replication_factor",
    "transaction.state.log.min.isr": "transaction_state_log_min_isr",
    "transaction.max.timeout.ms": "transaction_max_timeout_ms",
    "transactional.id.expiration.ms": "transactional_id_expiration_ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms":
        "transaction_remove_expired_transaction_cleanup_interval_ms",
}


class ConfigFileError(Exception):
    """A server.properties value that cannot be used (the server refuses to start)."""


@dataclass
class BrokerConfig:
    node_id: int = 1
    host: str = "127.0.0.1"
    port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    data_dir: str = "./moldau-data"
    num_partitions: int = 1
    default_replication_factor: int = 1
    auto_create_topics_enable: bool = True
    delete_topic_enable: bool = True
    message_max_bytes: int = limits.message_bytes_max_default
    socket_request_max_bytes: int = limits.frame_bytes_max
    connections_max_idle_ms: int = limits.connection_idle_ms_default
    # How often retention deletes due segments (Kafka's default: 5 minutes).
    log_retention_check_interval_ms: int = 300_000
    offsets_topic_num_partitions: int = 50
    group_initial_rebalance_delay_ms: int = limits.group_initial_rebalance_delay_ms
    group_min_session_timeout_ms: int = limits.group_session_timeout_ms_min
    group_max_session_timeout_ms: int = limits.group_session_timeout_ms_max
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    # The transaction coordinator (Kafka's defaults; keys in _TRANSACTION_KEYS).
    transaction_state_log_num_partitions: int = 50
    transaction_state_log_replication_factor: int = 3
    transaction_state_log_min_isr: int = 2
    transaction_max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 7 * 24 * 3600 * 1000
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    cluster_id: str | None = None
    # Broker-level defaults for topic configs, by their server.properties key.
    log_defaults: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "BrokerConfig":
        config = cls()
        unknown = []
        for key, value in props.items():
            if not config._apply(key.strip(), value.strip()):
                unknown.append(key)
        config._resolve_aliases(props)
        if unknown:
            config.warnings.append("ignoring unknown server.properties keys: " + ", ".join(sorted(unknown)))
        return config

    def _apply(self, key: str, value: str) -> bool:
        try:
            return self._apply_known(key, value)
        except ValueError as error:
            raise ConfigFileError(f"invalid value {value!r} for {key}: {error}") from None

    def _apply_known(self, key: str, value: str) -> bool:
        if key in ("node.id", "broker.id"):
            self.node_id = int(value)
        elif key == "listeners":
            self.host, self.port = _first_listener(value)
        elif key == "advertised.listeners":
            self.advertised_host, self.advertised_port = _first_listener(value)
        elif key in ("log.dirs", "log.dir"):
            self.data_dir = value.split(",")[0].strip()
        elif key == "num.partitions":
            self.num_partitions = _positive(value)
        elif key == "default.replication.factor":
            self.default_replication_factor = _positive(value)
        elif key == "auto.create.topics.enable":
            self.auto_create_topics_enable = _boolean(value)
        elif key == "delete.topic.enable":
            self.delete_topic_enable = _boolean(value)
        elif key == "socket.request.max.bytes":
            self.socket_request_max_bytes = _positive(value)
        elif key == "log.retention.check.interval.ms":
            self.log_retention_check_interval_ms = _positive(value)
        elif key == "connections.max.idle.ms":
            self.connections_max_idle_ms = int(value)  # -1 (or any negative): never close idle ones
        elif key == "offsets.topic.num.partitions":
            self.offsets_topic_num_partitions = _positive(value)
        elif key == "group.initial.rebalance.delay.ms":
            self.group_initial_rebalance_delay_ms = int(value)
        elif key == "group.min.session.timeout.ms":
            self.group_min_session_timeout_ms = _positive(value)
        elif key == "group.max.session.timeout.ms":
            self.group_max_session_timeout_ms = _positive(value)
        elif key == "offsets.retention.minutes":
            self.offsets_retention_ms = _positive(value) * 60_000
        elif key == "cluster.id":
            self.cluster_id = value
        elif key in _TRANSACTION_KEYS:
            setattr(self, _TRANSACTION_KEYS[key], _positive(value))
        elif key in _TOPIC_DEFAULT_KEYS:
            self.log_defaults[key] = value
            if key == "message.max.bytes":
                self.message_max_bytes = _positive(value)
        elif key in _ALIAS_KEYS:
            pass  # resolved after all keys are read, so that precedence does not depend on order
        else:
            return key in _HARMLESS_KEYS
        return True

    def _resolve_aliases(self, props: dict[str, str]) -> None:
        for alias, target, factor in _ALIASES:
            if alias in props and target not in props:
                try:
                    self.log_defaults[target] = str(int(props[alias].strip()) * factor)
                except ValueError:
                    raise ConfigFileError(f"invalid value {props[alias]!r} for {alias}") from None


def _first_listener(value: str) -> tuple[str, int]:
    """`PLAINTEXT://host:port[,CONTROLLER://...]` → (host, port) of the first listener."""
    first = value.split(",")[0].strip()
    if "://" in first:
        first = first.split("://", 1)[1]
    host, _, port = first.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"
