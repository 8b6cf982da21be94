"""Broker configuration from Kafka's `server.properties` keys.

`BrokerConfig.from_properties` reads the keys that apply to Moldau, converts Kafka's
alternative spellings (log.retention.hours → log.retention.ms, log.dirs → data dir, ...),
and reports the rest: Kafka keys that have no meaning here are ignored quietly when they are
harmless (thread counts, buffer sizes), and any other key yields one warning line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moldau import limits
from moldau.broker import listeners as listener_model
from moldau.broker.listeners import Listener, ListenerError, ListenerSettings

# Kafka keys that configure things Moldau does differently or not at all; accepted silently.
_HARMLESS_KEYS = {
    "controller.quorum.bootstrap.servers",
    "num.network.threads", "num.io.threads", "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes", "num.recovery.threads.per.data.dir",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "offsets.topic.num.partitions", "zookeeper.connect",
    "num.replica.fetchers", "log.cleaner.enable",
}

# Keys read into BrokerConfig's own fields (see _apply_known); config/server.properties lists
# them all, with the topic defaults and unit aliases below.
SERVER_KEYS = (
    "node.id", "broker.id", "listeners", "advertised.listeners", "log.dirs", "log.dir", "num.partitions",
    "default.replication.factor", "auto.create.topics.enable", "delete.topic.enable", "socket.request.max.bytes",
    "log.retention.check.interval.ms", "connections.max.idle.ms", "offsets.topic.num.partitions",
    "group.initial.rebalance.delay.ms", "group.min.session.timeout.ms", "group.max.session.timeout.ms",
    "offsets.retention.minutes", "cluster.id", "metrics.port", "socket.sendfile.enable",
)

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

# The listener model's keys, resolved together once all keys are read (broker/listeners.py).
_LISTENER_KEYS = {
    "listeners", "advertised.listeners", "listener.security.protocol.map", "inter.broker.listener.name",
    "security.inter.broker.protocol", "controller.listener.names", "process.roles",
}
# Security settings (TLS, SASL, authorizer, connection limits), kept as given: they are read
# per listener (`listener.name.<name>.<key>` beats `<key>`) by security/.
_SECURITY_PREFIXES = ("ssl.", "sasl.", "listener.name.", "max.connection", "quota.window.", "plain.sasl.",
                      "scram-sha-256.sasl.", "scram-sha-512.sasl.", "oauthbearer.sasl.")
_SECURITY_KEYS = {
    "authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found", "connections.max.reauth.ms",
    "connection.failed.authentication.delay.ms", "principal.builder.class", "security.providers",
}


def known_keys() -> set[str]:
    """Every server.properties key Moldau applies."""
    return set(SERVER_KEYS) | _LISTENER_KEYS | _TOPIC_DEFAULT_KEYS | _ALIAS_KEYS


# The transaction coordinator's settings: server.properties key -> BrokerConfig attribute.
_TRANSACTION_KEYS = {
    "transaction.state.log.num.partitions": "transaction_state_log_num_partitions",
    "transaction.state.log.replication.factor": "transaction_state_log_replication_factor",
    "transaction.state.log.min.isr": "transaction_state_log_min_isr",
    "transaction.max.timeout.ms": "transaction_max_timeout_ms",
    "transactional.id.expiration.ms": "transactional_id_expiration_ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms":
        "transaction_remove_expired_transaction_cleanup_interval_ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms":
        "transaction_abort_timed_out_transaction_cleanup_interval_ms",
    # how long a WriteTxnMarkers or a produce's AddPartitionsToTxn verification to another
    # node may go unanswered before it counts as failed (Kafka uses it for both too)
    "request.timeout.ms": "request_timeout_ms",
    # a partition leader adding a partition to a Transactions V2 transaction asks again on
    # CONCURRENT_TRANSACTIONS every backoff.ms, for up to backoff.max.ms (broker/txn_verify.py)
    "add.partitions.to.txn.retry.backoff.ms": "add_partitions_to_txn_retry_backoff_ms",
}


class ConfigFileError(Exception):
    """A server.properties value that cannot be used (the server refuses to start)."""


@dataclass
class BrokerConfig:
    node_id: int = 1
    # Named listeners, their security protocols, the advertised ones (broker/listeners.py).
    listener_settings: ListenerSettings = field(default_factory=lambda: listener_model.resolve({}))
    # Security keys as given, per-listener prefixes included (see _SECURITY_PREFIXES).
    security: dict[str, str] = field(default_factory=dict)
    # What a listener bound to every interface ("" or 0.0.0.0) advertises; the runtime sets
    # the host's name (Kafka advertises its canonical host name).
    wildcard_advertised_host: str = "localhost"
    # SCRAM credentials (user, mechanism code, password) created at start unless present
    # (`moldau server --add-scram`, Kafka's `kafka-storage format --add-scram`).
    bootstrap_scram: list[tuple[str, int, str]] = field(default_factory=list)
    data_dir: str = "./moldau-data"
    num_partitions: int = 1
    default_replication_factor: int = 1
    auto_create_topics_enable: bool = True
    delete_topic_enable: bool = True
    message_max_bytes: int = limits.message_bytes_max_default
    socket_request_max_bytes: int = limits.frame_bytes_max
    # queued.max.request.bytes: all request frames being received at once (runtime/memory.py);
    # negative: unbounded.
    queued_max_request_bytes: int = limits.queued_request_bytes_max_default
    connections_max_idle_ms: int = limits.connection_idle_ms_default
    # How often retention deletes due segments (Kafka's default: 5 minutes).
    log_retention_check_interval_ms: int = 300_000
    # Free space kept on the data directory: below it produce and new partitions are refused
    # with KAFKA_STORAGE_ERROR (broker/storage.py); 0: no reserve.
    log_dir_free_bytes_min: int = limits.log_dir_free_bytes_min_default
    offsets_topic_num_partitions: int = 50
    # offsets.topic.replication.factor; None: min(3, the brokers there are)
    offsets_topic_replication_factor: int | None = None
    group_initial_rebalance_delay_ms: int = limits.group_initial_rebalance_delay_ms
    group_min_session_timeout_ms: int = limits.group_session_timeout_ms_min
    group_max_session_timeout_ms: int = limits.group_session_timeout_ms_max
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    # The transaction coordinator (Kafka's defaults; keys in _TRANSACTION_KEYS).
    transaction_state_log_num_partitions: int = 50
    # None: Kafka's 3, capped at the brokers registered when the topic is created (so that a
    # single node works); set, exactly that (the topic waits for enough brokers, as in Kafka)
    transaction_state_log_replication_factor: int | None = None
    transaction_state_log_min_isr: int = 2
    transaction_max_timeout_ms: int = 900_000
    transactional_id_expiration_ms: int = 7 * 24 * 3600 * 1000
    transaction_remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    transaction_abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    request_timeout_ms: int = 30_000
    add_partitions_to_txn_retry_backoff_ms: int = 20
    add_partitions_to_txn_retry_backoff_max_ms: int = 100  # 0: never ask again
    cluster_id: str | None = None
    # KIP-848 consumer group keys (group.consumer.*, group.coordinator.rebalance.protocols),
    # read and checked by coordinator/consumer_config.py.
    group_consumer_properties: dict[str, str] = field(default_factory=dict)
    # metrics.port: where /metrics and /health/* are served (runtime/metrics.py); None: off.
    metrics_port: int | None = None
    # socket.sendfile.enable: Fetch record sets leave plain (non-TLS) sockets by sendfile from
    # the segment files (runtime/transmit.py) instead of being read and written. Off by default:
    # on loopback here it was slower (docs/benchmarks.md, "sendfile or copy").
    socket_sendfile_enable: bool = False
    # --- the cluster (KRaft's keys and defaults) ----------------------------------------
    process_roles: tuple[str, ...] = ("broker", "controller")
    # controller.quorum.voters as {node id: (host, port)}; empty: this node alone, reached on
    # its first controller listener (or its first listener).
    controller_quorum_voters: dict[int, tuple[str, int]] = field(default_factory=dict)
    rack: str | None = None
    broker_heartbeat_interval_ms: int = 2_000
    broker_session_timeout_ms: int = 9_000
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_max_bytes: int = 1_048_576
    replica_fetch_response_max_bytes: int = 10_485_760
    replica_fetch_backoff_ms: int = 1_000
    # How long a request to another node may go unanswered before it counts as failed:
    # replica fetches (plus their wait) and requests to the controller (Kafka's keys).
    replica_socket_timeout_ms: int = 30_000
    controller_socket_timeout_ms: int = 30_000
    auto_leader_rebalance_enable: bool = True
    leader_imbalance_check_interval_ms: int = 300_000
    leader_imbalance_per_broker_percentage: int = 10
    # controller.quorum.* timing keys, passed to the Raft client as given.
    quorum_settings: dict[str, str] = field(default_factory=dict)
    # Broker-level defaults for topic configs, by their server.properties key.
    log_defaults: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    # --- listeners: the first broker listener stands for "the" host and port of older callers
    @property
    def listeners(self) -> list[Listener]:
        return self.listener_settings.listeners

    @property
    def advertised_listeners(self) -> list[Listener]:
        """What this node tells clients and other nodes, wildcard hosts replaced."""
        return [_advertisable(listener, self.wildcard_advertised_host)
                for listener in self.listener_settings.advertised_listeners]

    @property
    def inter_broker_listener_name(self) -> str:
        return self.listener_settings.inter_broker_listener_name

    @property
    def controller_listener_names(self) -> tuple[str, ...]:
        return self.listener_settings.controller_listener_names

    @property
    def first_listener(self) -> Listener:
        return self.listener_settings.broker_listeners[0]

    @property
    def host(self) -> str:
        return self.first_listener.host or "0.0.0.0"

    @host.setter
    def host(self, host: str) -> None:
        self.listener_settings.rebind(self.first_listener.name, host=host)

    @property
    def port(self) -> int:
        return self.first_listener.port

    @port.setter
    def port(self, port: int) -> None:
        self.listener_settings.rebind(self.first_listener.name, port=port)

    @property
    def advertised(self) -> tuple[str, int]:
        name = self.first_listener.name
        listener = next(l for l in self.advertised_listeners if l.name == name)
        return listener.host, listener.port

    def listener_value(self, listener_name: str, key: str, default: str | None = None) -> str | None:
        """A security setting of one listener: `listener.name.<name>.<key>`, else `<key>`."""
        prefixed = self.security.get(f"listener.name.{listener_name.lower()}.{key}")
        if prefixed is not None:
            return prefixed
        return self.security.get(key, default)

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "BrokerConfig":
        config = cls()
        unknown = []
        for key, value in props.items():
            if not config._apply(key.strip(), value.strip()):
                unknown.append(key)
        config._resolve_aliases(props)
        config._check_group_consumer_properties()
        try:
            config.listener_settings = listener_model.resolve(
                {k.strip(): v.strip() for k, v in props.items() if k.strip() in _LISTENER_KEYS})
        except ListenerError as error:
            raise ConfigFileError(str(error)) from None
        roles = props.get("process.roles")
        if roles is not None:
            config.process_roles = _roles(roles)
        config.check_cluster()
        config._check_sasl_listeners()
        if unknown:
            config.warnings.append("ignoring unknown server.properties keys: " + ", ".join(sorted(unknown)))
        return config

    def _check_sasl_listeners(self) -> None:
        """Refuse to start with SASL settings that cannot work (unsupported mechanisms, PLAIN
        without users, a malformed JAAS config), naming the key."""
        from moldau.security.jaas import JaasError
        from moldau.security.sasl import SaslConfigError, SaslSettings

        from moldau.security.acls import AUTHORIZER_CLASSES

        authorizer = self.security.get("authorizer.class.name", "")
        if authorizer and authorizer not in AUTHORIZER_CLASSES:
            raise ConfigFileError(f"authorizer.class.name {authorizer} is not supported: use {AUTHORIZER_CLASSES[0]}")
        for listener in self.listeners:
            if listener.uses_sasl:
                try:
                    SaslSettings.from_config(self, listener.name)
                except (SaslConfigError, JaasError) as error:
                    raise ConfigFileError(str(error)) from None

    def _apply(self, key: str, value: str) -> bool:
        try:
            return self._apply_known(key, value)
        except ValueError as error:  # the parsers' messages say what the key expects
            raise ConfigFileError(f"invalid value {value!r} for {key}: expected {error}") from None

    def _apply_known(self, key: str, value: str) -> bool:
        if key in ("node.id", "broker.id"):
            self.node_id = _integer(value, 0, _INT_MAX)
        elif key in _LISTENER_KEYS:
            pass  # resolved together after all keys are read (broker/listeners.py)
        elif key in _SECURITY_KEYS or key.startswith(_SECURITY_PREFIXES):
            self.security[key] = value
        elif key in ("log.dirs", "log.dir"):
            self.data_dir = value.split(",")[0].strip()
            if not self.data_dir:
                raise ValueError("a directory (or a comma-separated list of them)")
        elif key == "num.partitions":
            self.num_partitions = _integer(value, 1, _INT_MAX)
        elif key == "default.replication.factor":
            self.default_replication_factor = _integer(value, 1, _SHORT_MAX)
        elif key == "auto.create.topics.enable":
            self.auto_create_topics_enable = _boolean(value)
        elif key == "delete.topic.enable":
            self.delete_topic_enable = _boolean(value)
        elif key == "socket.request.max.bytes":
            self.socket_request_max_bytes = _integer(value, 1, _INT_MAX)
        elif key == "log.retention.check.interval.ms":
            self.log_retention_check_interval_ms = _integer(value, 1, _LONG_MAX)
        elif key == "queued.max.request.bytes":
            self.queued_max_request_bytes = _integer(value, -1, _LONG_MAX)  # -1: unbounded
        elif key == "log.dir.free.bytes.min":
            self.log_dir_free_bytes_min = _integer(value, 0, _LONG_MAX)
        elif key == "connections.max.idle.ms":
            self.connections_max_idle_ms = _integer(value, -_LONG_MAX, _LONG_MAX)  # negative: never close
        elif key == "offsets.topic.replication.factor":
            self.offsets_topic_replication_factor = _integer(value, 1, _INT_MAX)
        elif key == "offsets.topic.num.partitions":
            self.offsets_topic_num_partitions = _integer(value, 1, _INT_MAX)
        elif key == "group.initial.rebalance.delay.ms":
            self.group_initial_rebalance_delay_ms = _integer(value, 0, _INT_MAX)
        elif key == "group.min.session.timeout.ms":
            self.group_min_session_timeout_ms = _integer(value, 1, _INT_MAX)
        elif key == "group.max.session.timeout.ms":
            self.group_max_session_timeout_ms = _integer(value, 1, _INT_MAX)
        elif key == "offsets.retention.minutes":
            self.offsets_retention_ms = _integer(value, 1, _INT_MAX) * 60_000
        elif key.startswith("group.consumer.") or key == "group.coordinator.rebalance.protocols":
            self.group_consumer_properties[key] = value
        elif key == "cluster.id":
            self.cluster_id = value
        elif key == "metrics.port":
            self.metrics_port = _port(value) if value else None
        elif key == "socket.sendfile.enable":
            self.socket_sendfile_enable = _boolean(value)
        elif self._apply_cluster(key, value):
            pass
        elif key in _TRANSACTION_KEYS:
            setattr(self, _TRANSACTION_KEYS[key], _integer(value, 1, _INT_MAX))
        elif key == "add.partitions.to.txn.retry.backoff.max.ms":
            self.add_partitions_to_txn_retry_backoff_max_ms = _integer(value, 0, _INT_MAX)
        elif key in _TOPIC_DEFAULT_KEYS:
            self.log_defaults[key] = _topic_default(key, value)
            if key == "message.max.bytes":
                self.message_max_bytes = int(value)
        elif key in _ALIAS_KEYS:
            _integer(value, -_LONG_MAX, _LONG_MAX)  # resolved after all keys are read (precedence)
        else:
            return key in _HARMLESS_KEYS
        return True

    def _apply_cluster(self, key: str, value: str) -> bool:
        """The cluster's keys; False when `key` is not one of them."""
        if key == "controller.quorum.voters":
            self.controller_quorum_voters = parse_voters(value)
        elif key == "broker.rack":
            self.rack = value or None
        elif key in _CLUSTER_INT_KEYS:
            setattr(self, _CLUSTER_INT_KEYS[key], _integer(value, 1, _INT_MAX))
        elif key == "leader.imbalance.check.interval.seconds":
            self.leader_imbalance_check_interval_ms = _integer(value, 1, _INT_MAX) * 1000
        elif key == "auto.leader.rebalance.enable":
            self.auto_leader_rebalance_enable = _boolean(value)
        elif key.startswith("controller.quorum.") and key != "controller.quorum.bootstrap.servers":
            _integer(value, 1, _INT_MAX)
            self.quorum_settings[key] = value
        else:
            return False
        return True

    def quorum_voters(self) -> dict[int, tuple[str, int]]:
        """The metadata quorum's voters; a node without controller.quorum.voters is a quorum of
        one, reached on its own controller listener (else its first listener)."""
        if self.controller_quorum_voters:
            return dict(self.controller_quorum_voters)
        controllers = self.listener_settings.controller_listeners
        listener = controllers[0] if controllers else self.first_listener
        host = listener.host if listener.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return {self.node_id: (host, listener.port)}

    def check_voter_address(self) -> None:
        """A controller must listen where controller.quorum.voters says it is (checked once the
        listeners are bound): otherwise it is the wrong node.id or a misconfigured port, and the
        quorum would count a node that cannot be reached — or two processes as one voter."""
        if "controller" not in self.process_roles or self.node_id not in self.controller_quorum_voters:
            return
        host, port = self.controller_quorum_voters[self.node_id]
        controllers = self.listener_settings.controller_listeners or [self.first_listener]
        if all(listener.port != port for listener in controllers):
            bound = ", ".join(f"{l.name} on port {l.port}" for l in controllers)
            raise ConfigFileError(
                f"node.id {self.node_id}: controller.quorum.voters puts it at {host}:{port}, but its controller "
                f"listener is {bound} (a wrong node.id, or a port that differs from controller.quorum.voters)")

    def raft_configs(self) -> dict[str, str]:
        return dict(self.quorum_settings)

    def check_cluster(self) -> None:
        """Refuse combinations a node cannot run with (one line each, naming the keys)."""
        roles = set(self.process_roles)
        if "controller" in roles and self.controller_quorum_voters and self.node_id not in self.controller_quorum_voters:
            raise ConfigFileError(
                f"node.id {self.node_id} has process.roles={','.join(self.process_roles)} but is not in "
                f"controller.quorum.voters ({format_voters(self.controller_quorum_voters)})")
        if "controller" not in roles and not self.controller_quorum_voters:
            raise ConfigFileError("process.roles=broker needs controller.quorum.voters: the controllers to join")
        if "controller" not in roles and self.node_id in self.controller_quorum_voters:
            raise ConfigFileError(f"node.id {self.node_id} is in controller.quorum.voters but process.roles "
                                  f"({','.join(self.process_roles)}) does not include controller")

    def _check_group_consumer_properties(self) -> None:
        from moldau.coordinator.consumer_config import ConsumerConfigError, ConsumerGroupSettings
        try:
            ConsumerGroupSettings.from_properties(self.group_consumer_properties)
        except ConsumerConfigError as error:
            raise ConfigFileError(str(error)) from None

    def _resolve_aliases(self, props: dict[str, str]) -> None:
        for alias, target, factor in _ALIASES:
            if alias in props and target not in props:
                text = props[alias].strip()
                value = int(text)
                # a negative retention means unlimited in every unit (Kafka: -1 ms)
                resolved = str(-1 if value < 0 and "retention" in target else value * factor)
                try:
                    self.log_defaults[target] = _topic_default(target, resolved)
                except ValueError as error:
                    raise ConfigFileError(f"invalid value {text!r} for {alias}: expected {error} "
                                          f"once converted to {target}") from None


_SHORT_MAX = 2**15 - 1
_INT_MAX = 2**31 - 1
_LONG_MAX = 2**63 - 1


_CLUSTER_INT_KEYS = {
    "broker.heartbeat.interval.ms": "broker_heartbeat_interval_ms",
    "broker.session.timeout.ms": "broker_session_timeout_ms",
    "replica.lag.time.max.ms": "replica_lag_time_max_ms",
    "replica.fetch.wait.max.ms": "replica_fetch_wait_max_ms",
    "replica.fetch.max.bytes": "replica_fetch_max_bytes",
    "replica.fetch.response.max.bytes": "replica_fetch_response_max_bytes",
    "replica.fetch.backoff.ms": "replica_fetch_backoff_ms",
    "replica.socket.timeout.ms": "replica_socket_timeout_ms",
    "controller.socket.timeout.ms": "controller_socket_timeout_ms",
    "leader.imbalance.per.broker.percentage": "leader_imbalance_per_broker_percentage",
}
_VOTERS_FORM = "id@host:port[,id@host:port...], e.g. 1@localhost:9093,2@localhost:9095"


def parse_voters(value: str) -> dict[int, tuple[str, int]]:
    """controller.quorum.voters: `1@host:9093,2@host:9095` -> {1: (host, 9093), ...}."""
    voters: dict[int, tuple[str, int]] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        node, sep, address = item.partition("@")
        host, colon, port = address.rpartition(":")
        try:
            node_id, port_number = int(node), int(port)
        except ValueError:
            node_id = port_number = -1
        if not sep or not colon or not host or node_id < 0 or not 0 < port_number <= 65535:
            raise ValueError(f"{item!r} is not id@host:port (expected {_VOTERS_FORM})")
        if node_id in voters:
            raise ValueError(f"node {node_id} appears twice (expected {_VOTERS_FORM})")
        voters[node_id] = (host.strip("[]"), port_number)
    if not voters:
        raise ValueError(f"no voters (expected {_VOTERS_FORM})")
    return voters


def format_voters(voters: dict[int, tuple[str, int]]) -> str:
    return ",".join(f"{node}@{host}:{port}" for node, (host, port) in sorted(voters.items()))


def _roles(value: str) -> tuple[str, ...]:
    roles = tuple(sorted({part.strip() for part in value.split(",") if part.strip()}))
    if not roles or any(role not in ("broker", "controller") for role in roles):
        raise ConfigFileError(f"invalid value {value!r} for process.roles: expected broker, controller or broker,controller")
    return roles


def _advertisable(listener: Listener, wildcard_host: str) -> Listener:
    if listener.host in ("", "0.0.0.0", "::"):
        return Listener(listener.name, wildcard_host, listener.port, listener.security_protocol)
    return listener


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise ValueError("a port number from 0 to 65535 (0: any free port)")
    return int(value)


def _integer(value: str, minimum: int, maximum: int) -> int:
    """An integer in [minimum, maximum]; the ValueError says which, as the expected form."""
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not minimum <= number <= maximum:
        if maximum in (_INT_MAX, _LONG_MAX, _SHORT_MAX):
            bits = {_INT_MAX: 32, _LONG_MAX: 64, _SHORT_MAX: 16}[maximum]
            raise ValueError(f"a {bits}-bit integer" + (f" of at least {minimum}" if minimum > -maximum else ""))
        raise ValueError(f"an integer from {minimum} to {maximum}")
    return number


def _topic_default(key: str, value: str) -> str:
    """A broker-level topic default (log.retention.ms, ...), checked as the topic config is."""
    from moldau.controller.configs import BROKER_KEY_CONFIGS, ConfigError, expected_form, validate_broker_configs

    try:
        return validate_broker_configs({key: value})[key]
    except ConfigError as error:
        reason = str(error).partition(f"for configuration {key}: ")[2]
        generic = reason.startswith(("Not a number", "Value must be at least", "String must be", "Expected value"))
        raise ValueError(expected_form(BROKER_KEY_CONFIGS[key]) + ("" if generic else f" ({reason})")) from None


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("true or false")
    return lowered == "true"
