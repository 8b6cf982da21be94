"""The broker core: one object that owns all of a broker's mutable state, with no I/O of its own.

Theory of operation. The runtime hands `handle_request` one request frame at a time together
with the current time; the core parses the header, finds the API's handler in the table
(broker/apis.py), runs it, and returns the response frame — or a `Delayed` operation (a fetch
long-poll) that completes when an append makes it satisfiable or its deadline passes. All
state changes happen inside these synchronous calls, so no change spans an await and
simulations can drive the same object on virtual time.

The core is one node of a cluster (a cluster of one by default): it holds the node's Raft
client for the metadata quorum (raft/), the controller that acts when this node leads the
quorum (controller/), and the broker: its registration and heartbeats (lifecycle.py), its
partitions (replica_manager.py, replication/), its groups and producer ids (coordinator/).
Committed metadata records are applied to `image` in log order (`_publish`) and the broker
reacts to them: opening logs, leading or following partitions, deleting topics.

Other nodes are reached only through `outbox` (protocol/rpc.py): after every call into the
core — a request, a response callback, a timer — `_after_call` moves Raft's messages there,
applies newly committed metadata, activates or deactivates the controller, completes what
waited for a commit, and starts follower fetches. The disk is reached only through `fs`.

Security: each connection has a `Session` (security/session.py) opened by the runtime with
`connection_opened` — its listener, its principal, its SASL exchange; `handle_request` refuses
what the session does not allow yet (before SASL authentication only the SASL requests).
Handlers ask `authorize(ctx, operation, resource_type, name)` (security/acls.py, Kafka's
StandardAuthorizer over the image's ACLs) and `throttle(ctx, quota, value)` (security/quotas.py).
"""

from __future__ import annotations

import errno
import logging
import random
import secrets
import uuid
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.broker import apis, stray_logs
from moldau.broker.config import BrokerConfig
from moldau.broker.metrics import BrokerMetrics
from moldau.broker.storage import LogDirectory
from moldau.controller import records as r
from moldau.controller.configs import (
    SOURCE_DYNAMIC_BROKER,
    SOURCE_DYNAMIC_DEFAULT_BROKER,
    SOURCE_STATIC_BROKER,
    TYPE_BROKER,
    TYPE_TOPIC,
    ConfigError,
    effective_topic_configs,
    validate_broker_configs,
    validate_topic_configs,
)
from moldau.broker.controller_channel import ControllerChannel
from moldau.broker.lifecycle import BrokerLifecycle, RUNNING
from moldau.broker.replica_manager import ReplicaManager
from moldau.controller import storage
from moldau.controller.controller import Controller, ControllerConfig, ControllerError, describe_record
from moldau.controller.image import Endpoint, MetadataImage
from moldau.log.config import LogConfig
from moldau.replication.fetcher import FetcherConfig, ReplicaFetcherManager
from moldau.replication.isr import IsrManager
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.protocol.rpc import CONTROLLER, FORWARDING_CHANNEL, OutboundRequest
from moldau.replication.partition import Partition, PartitionError
from moldau.broker.listeners import SSL
from moldau.security.principal import certificate_principal, parse_rules
from moldau.security.acls import (
    RESOURCE_OPERATIONS,
    AclIndex,
    AuthorizerSettings,
    authorize,
    authorize_by_resource_type,
    operations_bitfield,
)
from moldau.security.quotas import (
    CONNECTION_CREATION_RATE,
    CONSUMER_BYTE_RATE,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    ConnectionLimits,
    QuotaManager,
    quota_principal_name,
)
from moldau.security import acls as acl_ops
from moldau.security.sasl import SaslAuthenticator, SaslSettings
from moldau.security.session import INTERNAL, Session

METADATA_DIR = "__cluster_metadata-0"
# Committed metadata records applied per call into the core (the rest on the next calls, at
# once): a node catching up with a long metadata log keeps serving meanwhile.
PUBLISH_RECORDS_PER_CALL = 5000


log = logging.getLogger("moldau.log")
# What the active controller committed, one line per metadata record, in Kafka's words.
controller_log = logging.getLogger("moldau.controller")


class CloseConnection(Exception):
    """The request cannot be answered in protocol (e.g. unknown API version): drop the peer."""


class BrokerCore:
    def __init__(
        self,
        config: BrokerConfig,
        fs: Any,
        new_uuid: Callable[[], uuid.UUID],
        now_ms: int,
        disk_usage: Callable[[], tuple[int, int]] = lambda: (-1, -1),
        rng: random.Random | None = None,
    ):
        self.config = config
        self.fs = fs
        self.new_uuid = new_uuid
        self.disk_usage = disk_usage  # (total bytes, usable bytes) of the data dir
        # Free-space reserve and partitions whose log could not be opened (broker/storage.py).
        self.log_dir = LogDirectory(config.data_dir, disk_usage, config.log_dir_free_bytes_min, now_ms)
        self.now_ms = now_ms
        self.node_id = config.node_id
        self.metrics = BrokerMetrics()  # plain counters; runtime/metrics.py scrapes them
        self.image = MetadataImage()
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.watchers: dict[tuple[str, int], list[apis.Delayed]] = {}
        # Requests to other nodes, drained by the runtime after every call (protocol/rpc.py).
        self.outbox: list[OutboundRequest] = []
        # partition key -> [(offset, deadline_ms, callback)] waiting for the high watermark
        # to pass `offset` (after_replicated).
        self.replication_waiters: dict[tuple[str, int], list[tuple[int, int, Callable[[ErrorCode], None]]]] = {}
        self._clean_turn = 0  # which partition's log cleans first on the next tick
        self._last_retention_check_ms = now_ms  # retention runs every log.retention.check.interval.ms
        # Group coordinator and friends, by name; installed after the metadata replay below.
        self.extensions: dict[str, Any] = {}
        self.fs.makedirs(config.data_dir)
        voters = config.quorum_voters()
        legacy = storage.pending_legacy_conversion(fs, config.data_dir, now_ms)
        self.image.cluster_id = storage.load_or_format(fs, config.data_dir, self.node_id, config.cluster_id, voters,
                                                       new_uuid, legacy[1] if legacy else None)
        # Records of an old-format metadata log, written by the first active controller.
        self.bootstrap_records: list = legacy[0] if legacy else []
        from moldau.raft import RaftClient

        self.raft = RaftClient(self.node_id, voters, fs, config.data_dir, self.image.cluster_id,
                               rng or random.Random(), now_ms, config.raft_configs())
        self.controller = Controller(self.node_id, self.raft, new_uuid, ControllerConfig(
            config.num_partitions, config.default_replication_factor, config.delete_topic_enable,
            config.broker_session_timeout_ms, config.auto_leader_rebalance_enable,
            config.leader_imbalance_check_interval_ms, config.leader_imbalance_per_broker_percentage), rng)
        self.is_controller = "controller" in config.process_roles
        self.is_broker = "broker" in config.process_roles
        self.channel = ControllerChannel(self)
        self.lifecycle = BrokerLifecycle(self, new_uuid(), config.broker_heartbeat_interval_ms) if self.is_broker else None
        if self.lifecycle is not None:
            self.lifecycle.previous_broker_epoch = storage.take_clean_shutdown_epoch(fs, config.data_dir)
        self.fetchers = ReplicaFetcherManager(self, FetcherConfig(
            config.replica_fetch_wait_max_ms, 1, config.replica_fetch_max_bytes,
            config.replica_fetch_response_max_bytes, config.replica_fetch_backoff_ms, config.replica_socket_timeout_ms))
        self.isr = IsrManager(self, config.replica_lag_time_max_ms)
        # Partition directories on disk before anything opens: compared with the metadata log
        # once this broker has caught up with it (broker/stray_logs.py).
        self.dirs_at_start = stray_logs.partition_dirs(fs, config.data_dir, skip=[METADATA_DIR])
        self.replicas = ReplicaManager(self)
        self._published_offset = -1  # every committed metadata offset up to here is applied
        self._controller_epoch = -1  # the Raft epoch the controller was activated in
        self._raft_fetches: list[tuple[apis.Delayed, apis.RequestContext, Any]] = []
        self._raft_version = -1
        self._creating: dict[str, int] = {}  # topics this broker asked the controller to create
        self._timed_cache: tuple[int, list[Any]] | None = None
        self.bootstrap_scram: list[tuple[str, int, str]] = []  # --add-scram users, for the controller
        self.controller.refuse_new_partitions = lambda count: self.log_dir.refuse_new_partitions(count, self.now_ms)
        # Consumer groups, committed offsets, idempotent producers (issue 3): one install call.
        from moldau.coordinator import install as install_coordinator
        install_coordinator(self)
        # Which API versions each client software used (for the compatibility matrix):
        # label -> api_key -> versions. The label is ApiVersions v3's client_software_name
        # and version when the client sent them, else its client_id.
        self.api_usage: dict[str, dict[int, set[int]]] = {}
        self.connection_software: dict[int, str] = {}
        # connection id -> its listener, principal and authentication state
        self.sessions: dict[int, Session] = {}
        self._parsed_principal_rules: dict[str, list] = {}
        # SASL settings per SASL listener; nonces come from here (simulations may replace it).
        self.sasl_settings = {l.name: SaslSettings.from_config(config, l.name) for l in config.listeners if l.uses_sasl}
        self.secure_random: Callable[[int], bytes] = secrets.token_bytes
        # The authorizer (security/acls.py): None when authorizer.class.name is not set.
        self.authorizer = (AuthorizerSettings.from_security(config.security)
                           if config.security.get("authorizer.class.name") else None)
        self._acl_index: AclIndex | None = None  # rebuilt after ACL records
        # Client quotas and connection limits (security/quotas.py).
        samples = int(config.security.get("quota.window.num", "11"))
        window_ms = int(float(config.security.get("quota.window.size.seconds", "1")) * 1000)
        self.quotas = {key: QuotaManager(key, samples, window_ms)
                       for key in (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE)}
        self.connection_limits = ConnectionLimits.from_security(self._with_dynamic_broker_configs(config.security))
        # When a list, every authorization check is recorded as (api key, operation, resource
        # type): tests compare the checks of each API with Kafka's table (acls.API_OPERATIONS).
        self.authorization_log: list[tuple[int, int, int]] | None = None
        self.raft.tick(now_ms)
        self._after_call(now_ms)

    def _path(self, name: str) -> str:
        return self.config.data_dir.rstrip("/") + "/" + name

    # --- requests ----------------------------------------------------------------------
    def handle_request(self, payload: bytes | memoryview, connection_id: int, client_host: str, now_ms: int) -> Any:
        """Return a response frame (bytes, or a list of chunks forming one frame), None
        (acks=0 produce: no response), or a Delayed."""
        self.now_ms = now_ms
        self._after_call(now_ms)  # whatever changed since the last call (a direct controller write, ...)
        header = codec.read_request_header(payload)
        entry = apis.REGISTRY.get(header.api_key)
        if entry is None:
            raise CloseConnection(f"unknown api key {header.api_key}")
        session = self.sessions.get(connection_id) or self.connection_opened(connection_id, None, client_host)
        if not session.allows(header.api_key, now_ms):
            raise CloseConnection(f"api key {header.api_key} not allowed now: SASL authentication "
                                  f"{'expired' if session.authenticated else 'not done'}")
        session.client_id = header.client_id or ""
        ctx = apis.RequestContext(header, connection_id, client_host, now_ms, session.listener_name,
                                  session.security_protocol, session.principal, payload=payload,
                                  request_bytes=len(payload))
        version = header.api_version
        if not entry.advertised_min_version <= version <= entry.max_version:
            if header.api_key == 18:  # ApiVersions answers any version, with v0 on error
                return entry.handler(self, ctx, None)
            raise CloseConnection(f"unsupported version {version} of api key {header.api_key}")
        if header.api_key != 18:  # ApiVersions records itself, once it knows the software
            self.record_usage(connection_id, header.client_id, header.api_key, version)
        if version < entry.min_version:
            request = payload  # handler answers UNSUPPORTED_VERSION from the raw bytes
        else:
            decoder = entry.decoder
            request = (decoder(payload, header.body_offset, version) if decoder is not None else
                       codec.read_body(codec.request_schema(header.api_key, version), payload, header.body_offset))
        result = entry.handler(self, ctx, request)
        response = self.finish(ctx, result)
        self._after_call(now_ms)
        return response

    @staticmethod
    def codec_api_key(payload: bytes) -> int:
        return codec.read_request_header(payload).api_key

    def handle_forwarded(self, payload: bytes, ctx: apis.RequestContext, principal: str, client_host: str) -> Any:
        """An admin request another broker forwarded in an Envelope: run here as if it came
        from its client (never forwarded again); returns what handle_request would."""
        header = codec.read_request_header(payload)
        entry = apis.REGISTRY.get(header.api_key)
        if entry is None or not entry.min_version <= header.api_version <= entry.max_version:
            raise codec.UnsupportedVersion(f"cannot run forwarded api key {header.api_key} v{header.api_version}")
        inner = apis.RequestContext(header, ctx.connection_id, client_host, ctx.now_ms, ctx.listener_name,
                                    ctx.security_protocol, principal, payload=payload, forwarded=True,
                                    request_bytes=len(payload))
        request = codec.read_body(codec.request_schema(header.api_key, header.api_version), payload, header.body_offset)
        return self.finish(inner, entry.handler(self, inner, request))

    def finish(self, ctx: apis.RequestContext, result: Any) -> Any:
        """Turn a handler's result into a response frame (Delayed results finish later)."""
        if result is None or isinstance(result, (bytes, list, apis.Delayed)):
            return result  # finished frames (a list: one frame in chunks), or no response
        header = ctx.header
        flexible = codec.response_header_flexible(header.api_key, header.api_version)
        if not isinstance(result, dict):  # a kio response object (the Raft client answers so)
            return codec.encode_response(header.correlation_id, flexible, result)
        if result.get("error_code"):  # a top-level error (per-partition ones: produce.py)
            self.metrics.request_error(header.api_key)
        schema = codec.response_schema(header.api_key, header.api_version)
        return codec.encode_response(header.correlation_id, flexible, build(schema, result))

    def record_usage(self, connection_id: int, client_id: str | None, api_key: int, version: int) -> None:
        label = self.connection_software.get(connection_id) or client_id or "?"
        self.api_usage.setdefault(label, {}).setdefault(api_key, set()).add(version)

    def connection_opened(self, connection_id: int, listener_name: str | None, client_host: str,
                          peer_certificate: bytes | None = None, now_ms: int | None = None) -> Session:
        """A connection was accepted on a listener (None: the first broker listener), after the
        TLS handshake if the listener uses TLS; `peer_certificate` is the client's certificate
        (DER) when it presented one. Returns the session; the runtime reads its
        `frame_bytes_max`, which changes as the connection authenticates."""
        config = self.config
        listener = config.listener_settings.listener(listener_name) if listener_name else config.first_listener
        if listener is None:
            raise CloseConnection(f"unknown listener {listener_name}")
        session = Session(connection_id, listener, client_host, frame_bytes_max=config.socket_request_max_bytes)
        if connection_id < 0:  # the node's own requests to itself (runtime/peers.py's loopback)
            session.principal = INTERNAL
            self.sessions[connection_id] = session
            return session
        ip_quota = self._ip_connection_rate(client_host)
        refused = self.connection_limits.admit(client_host, self.now_ms if now_ms is None else now_ms, ip_quota,
                                               listener.name)
        if refused is not None:
            raise CloseConnection(refused)
        session.admitted = True
        if listener.security_protocol == SSL and peer_certificate is not None:
            session.principal = certificate_principal(peer_certificate, self._principal_rules(listener.name))
        if listener.uses_sasl:
            settings = self.sasl_settings[listener.name]
            session.sasl = SaslAuthenticator(settings, self.scram_credential, self.secure_random)
            session.authenticated = False
            session.frame_bytes_max = min(settings.max_receive_bytes, config.socket_request_max_bytes)
        self.sessions[connection_id] = session
        return session

    # --- authorization ---------------------------------------------------------------------
    def authorize(self, ctx: apis.RequestContext, operation: int, resource_type: int, name: str) -> bool:
        """Whether the request's principal may do `operation` on the resource (always, without
        an authorizer). Every handler calls this with Kafka's operation for its API."""
        if self.authorization_log is not None:
            self.authorization_log.append((ctx.header.api_key, operation, resource_type))
        if self.authorizer is None or ctx.principal == INTERNAL or ctx.connection_id < 0:  # < 0: this node's own
            return True
        return authorize(ctx.principal, ctx.client_host, operation, resource_type, name, self._index(), self.authorizer)

    def authorize_any(self, ctx: apis.RequestContext, operation: int, resource_type: int) -> bool:
        """Whether the principal may do `operation` on some resource of the type (Kafka's
        authorizeByResourceType: an idempotent producer needs WRITE on any topic)."""
        if self.authorization_log is not None:
            self.authorization_log.append((ctx.header.api_key, operation, resource_type))
        if self.authorizer is None or ctx.principal == INTERNAL:
            return True
        return authorize_by_resource_type(ctx.principal, ctx.client_host, operation, resource_type,
                                          self.image.acls.values(), self.authorizer)

    def authorized_operations(self, ctx: apis.RequestContext, resource_type: int, name: str) -> int:
        """Kafka's authorized-operations bitfield of a resource for this principal."""
        allowed = [op for op in RESOURCE_OPERATIONS[resource_type]
                   if self.authorizer is None or ctx.principal == INTERNAL or authorize(ctx.principal, ctx.client_host, op, resource_type, name,
                                                           self._index(), self.authorizer)]
        return operations_bitfield(allowed)

    def _index(self) -> AclIndex:
        if self._acl_index is None:
            self._acl_index = AclIndex(self.image.acls.values())
        return self._acl_index

    def add_scram_credentials(self, credentials: list[tuple[str, int, str]]) -> None:
        """Create SCRAM credentials (user, mechanism code, password) that do not exist yet —
        the bootstrap of a SCRAM-only cluster (Kafka's kafka-storage format --add-scram). The
        active controller writes them: this node, now or once it becomes it."""
        self.bootstrap_scram = list(credentials)
        self._write_bootstrap_scram(self.now_ms)

    def _write_bootstrap_scram(self, now_ms: int) -> None:
        from moldau.controller.security_records import scram_credential_record

        if not self.bootstrap_scram or not self.controller.active:
            return
        credentials, self.bootstrap_scram = self.bootstrap_scram, []
        known = self.controller.image.scram_credentials
        records = [scram_credential_record(name, mechanism, password, self.secure_random(32))
                   for name, mechanism, password in credentials if (name, mechanism) not in known]
        if records:
            self.controller.write(records, now_ms)
            self.raft.run_deadlines(now_ms)  # a quorum of one commits at once
            self._after_call(now_ms)

    def scram_credential(self, user: str, mechanism: int):
        """The stored SCRAM credential of a user (None when it has none for that mechanism)."""
        return self.image.scram_credentials.get((user, mechanism))

    def _ip_connection_rate(self, ip: str) -> float | None:
        quotas = self.image.client_quotas
        values = quotas.get((("ip", ip),)) or quotas.get((("ip", None),)) or {}
        return values.get(CONNECTION_CREATION_RATE)

    def _principal_rules(self, listener_name: str) -> list:
        rules = self._parsed_principal_rules.get(listener_name)
        if rules is None:
            rules = parse_rules(self.config.listener_value(listener_name, "ssl.principal.mapping.rules"))
            self._parsed_principal_rules[listener_name] = rules
        return rules

    def connection_closed(self, connection_id: int) -> None:
        self.connection_software.pop(connection_id, None)
        session = self.sessions.pop(connection_id, None)
        if session is not None and session.admitted:
            self.connection_limits.closed(session.client_host, session.listener_name)

    # --- quotas --------------------------------------------------------------------------
    def throttle(self, ctx: apis.RequestContext, key: str, value: float, record: bool = True) -> int:
        """Count `value` against the client's quota of `key` (bytes; see security/quotas.py)
        and return the throttle time, muting the connection for it."""
        if not self.image.client_quotas:
            return 0
        throttle_ms = self.quotas[key].throttle_ms(self.image.client_quotas, quota_principal_name(ctx.principal),
                                                   ctx.header.client_id or "", value, ctx.now_ms, record)
        if throttle_ms and record:
            self.mute(ctx.connection_id, ctx.now_ms + throttle_ms)
        return throttle_ms

    def request_time(self, connection_id: int, nanos: int, now_ms: int) -> None:
        """The runtime reports the time a request took (request_percentage quotas)."""
        session = self.sessions.get(connection_id)
        if session is None or not self.image.client_quotas:
            return
        percent = nanos / 1e6 * 100 / 1000  # ms of a second, as a percentage of one thread
        throttle_ms = self.quotas[REQUEST_PERCENTAGE].throttle_ms(
            self.image.client_quotas, quota_principal_name(session.principal), session.client_id, percent, now_ms)
        if throttle_ms:
            self.mute(connection_id, now_ms + throttle_ms)

    def mute(self, connection_id: int, until_ms: int) -> None:
        session = self.sessions.get(connection_id)
        if session is not None:
            session.muted_until_ms = max(session.muted_until_ms, until_ms)

    def complete_delayed(self, delayed: apis.Delayed, ctx: apis.RequestContext, response: Any) -> None:
        delayed.complete(self.finish(ctx, response))

    def expire(self, delayed: apis.Delayed, now_ms: int) -> None:
        """The runtime calls this at the deadline; finishes the operation if still pending."""
        self.now_ms = now_ms
        if not delayed.done:
            delayed.complete(delayed.on_expire(now_ms))
        self._unwatch(delayed)
        self._after_call(now_ms)

    def cancel(self, delayed: apis.Delayed) -> None:
        """Forget an operation whose connection went away (nobody awaits its response)."""
        delayed.done = True
        self._unwatch(delayed)

    def watch(self, delayed: apis.Delayed) -> None:
        for key in delayed.watch:
            self.watchers.setdefault(key, []).append(delayed)

    def _unwatch(self, delayed: apis.Delayed) -> None:
        for key in delayed.watch:
            waiting = self.watchers.get(key)
            if waiting and delayed in waiting:
                waiting.remove(delayed)
                if not waiting:
                    del self.watchers[key]

    def partition_appended(self, key: tuple[str, int], now_ms: int) -> None:
        """Try to complete the delayed operations watching a partition that just grew."""
        self._complete_replication_waiters(key, now_ms)
        for delayed in list(self.watchers.get(key, ())):
            if delayed.done:
                self._unwatch(delayed)
                continue
            response = delayed.try_complete(now_ms)
            if response is not None:
                delayed.complete(response)
                self._unwatch(delayed)

    # --- other nodes and replication -----------------------------------------------------
    def send(self, request: OutboundRequest) -> None:
        """Queue a request to another node; the runtime sends it after the current call and
        calls back with the response, after which the core catches up (`_after_call`)."""
        original = request.on_response

        def on_response(response: Any, now_ms: int) -> None:
            self.now_ms = now_ms
            original(response, now_ms)
            self._after_call(now_ms)

        request.on_response = on_response
        self.outbox.append(request)

    # --- the node: quorum, controller, broker lifecycle ------------------------------------
    def _after_call(self, now_ms: int) -> None:
        """Bring every part up to date after a call into the core (see the module docstring).
        Cheap when nothing changed: a few comparisons."""
        self.now_ms = now_ms
        raft = self.raft
        due = raft.next_deadline_ms()
        if due is not None and due <= now_ms:
            raft.run_deadlines(now_ms)  # e.g. flush what the controller just appended: commit now
        if raft.outbox:
            messages, raft.outbox = raft.outbox, []
            for message in messages:
                self.send(message)
        if raft.high_watermark - 1 > self._published_offset:
            self._publish(now_ms)
        self._update_controller(now_ms)
        if self.channel.commit_waiters:
            self.channel.commit_advanced()
        if raft.version != self._raft_version:
            self._raft_version = raft.version
            self._retry_raft_fetches(now_ms)
        if self.replicas.pending:
            self.replicas.open_pending()
        self.fetchers.poll(now_ms)

    def _publish(self, now_ms: int) -> None:
        """Apply committed metadata records to the image, in log order, a bounded number per
        call (a deadline brings the next call at once when more are waiting)."""
        high_watermark = self.raft.high_watermark
        batch = self.raft.read_committed(self._published_offset + 1, PUBLISH_RECORDS_PER_CALL)
        for offset, value in batch:
            record = r.decode(value)
            if controller_log.isEnabledFor(logging.INFO) and self.controller.active:
                controller_log.info("%s", describe_record(self.image, record))
            self.image.apply(record, offset)
            self._on_metadata_record(record)
        if len(batch) < PUBLISH_RECORDS_PER_CALL:
            self._published_offset = high_watermark - 1
        else:
            self._published_offset = batch[-1][0]
        if self.lifecycle is not None:
            if not self.replicas.ready and self.lifecycle.broker_epoch >= 0 and \
                    self.image.offset >= self.lifecycle.registered_offset:
                self.replicas.become_ready()
            self.lifecycle.metadata_applied(now_ms)

    def _update_controller(self, now_ms: int) -> None:
        raft, controller = self.raft, self.controller
        if controller.active and (not raft.is_leader or raft.epoch != self._controller_epoch):
            controller.deactivate()
            self.channel.commit_advanced()  # fails what waited on the lost leadership
        if controller.active or not self.is_controller or not raft.is_leader:
            return
        if raft.high_watermark <= raft.epoch_start_offset or self._published_offset < raft.high_watermark - 1:
            return  # not everything before this epoch is committed and applied yet
        self._controller_epoch = raft.epoch
        controller.activate(self.image, now_ms)
        self._write_bootstrap_records(now_ms)
        self._write_bootstrap_scram(now_ms)

    def _write_bootstrap_records(self, now_ms: int) -> None:
        """Records converted from an old-format metadata log, written once on a fresh log."""
        if not self.bootstrap_records:
            return
        records, self.bootstrap_records = self.bootstrap_records, []
        if self.controller.image.topics_by_name or self.controller.image.brokers:
            storage.remove_legacy_log(self.fs, self.config.data_dir)  # an earlier start wrote them
            return
        offset = self.controller.write(records, now_ms)
        self.channel.wait_for_commit(offset, lambda ok: ok and storage.remove_legacy_log(self.fs, self.config.data_dir))

    def create_topic_internally(self, name: str, partitions: int = -1, replication_factor: int = -1,
                                configs: dict[str, str] | None = None) -> ErrorCode:
        """Create a topic the broker itself needs (auto-creation, __consumer_offsets): on the
        active controller at once (NONE once it exists here), else by asking the controller and
        answering LEADER_NOT_AVAILABLE meanwhile, which clients retry (as Kafka answers)."""
        if self.image.topic(name) is not None:
            return ErrorCode.none
        controller = self.controller
        if controller.active:
            try:
                controller.create_topic(name, partitions, replication_factor, configs or {}, now_ms=self.now_ms)
            except ControllerError as error:
                if error.error_code != ErrorCode.topic_already_exists:
                    return error.error_code
            self.raft.run_deadlines(self.now_ms)  # flush now: a quorum of one commits at once
            self._after_call(self.now_ms)
            return ErrorCode.none if self.image.topic(name) is not None else ErrorCode.leader_not_available
        self._request_topic_creation(name, partitions, replication_factor, configs or {})
        return ErrorCode.leader_not_available

    def _request_topic_creation(self, name: str, partitions: int, replication_factor: int,
                                configs: dict[str, str]) -> None:
        from kio.schema.create_topics.v7 import request as create_request

        controller = self.controller_id()
        if controller < 0 or self._creating.get(name, 0) > self.now_ms:
            return
        self._creating[name] = self.now_ms + 1000  # at most one request a second per topic
        topic = create_request.CreatableTopic(
            name=name, num_partitions=partitions, replication_factor=replication_factor, assignments=(),
            configs=tuple(create_request.CreatableTopicConfig(name=k, value=v) for k, v in sorted(configs.items())))
        body = create_request.CreateTopicsRequest(topics=(topic,), timeout=_timedelta(30_000), validate_only=False)

        def done(response: Any, now_ms: int) -> None:
            self._creating.pop(name, None)

        self.send(OutboundRequest(controller, CONTROLLER, 19, 7, body, self.config.controller_socket_timeout_ms, done,
                                  channel=FORWARDING_CHANNEL))

    def fatal_error(self) -> str | None:
        """Why this node cannot go on, in one line (the runtime exits with it), or None."""
        return self.raft.fatal_error or (self.lifecycle.fatal_error if self.lifecycle is not None else None)

    def open_internal_session(self, connection_id: int) -> None:
        """The session of requests this node sends itself (runtime/peers.py's loopback):
        authenticated, on the controller listener when there is one."""
        if connection_id in self.sessions:
            return
        names = self.config.controller_listener_names
        listener_name = names[0] if names and self.config.listener_settings.listener(names[0]) else None
        session = self.connection_opened(connection_id, listener_name, "127.0.0.1")
        session.authenticated = True

    def controller_id(self) -> int:
        """The active controller's node id (the metadata quorum's leader), -1 when unknown."""
        return self.raft.leader_id

    @property
    def broker_epoch(self) -> int:
        return self.lifecycle.broker_epoch if self.lifecycle is not None else -1

    @property
    def running(self) -> bool:
        """Registered, unfenced and acting on its partitions (what `moldau server` waits for)."""
        return self.lifecycle is not None and self.lifecycle.state == RUNNING and self.replicas.ready

    def lifecycle_changed(self, now_ms: int) -> None:
        """The broker registered, was unfenced or fenced, or finished its controlled shutdown."""
        producer_ids = self.extensions.get("producer_ids")
        if producer_ids is not None and self.broker_epoch >= 0:
            producer_ids.request_block(now_ms)

    def advertised_endpoints(self) -> list[Endpoint]:
        """The broker listeners this node registers (what clients and other brokers use)."""
        names = self.config.controller_listener_names
        return [Endpoint(l.name, l.host, l.port, l.security_protocol)
                for l in self.config.advertised_listeners if l.name not in names]

    def node_address(self, node_id: int, listener: str) -> tuple[str, int] | None:
        """Where to reach another node: its controller listener (from controller.quorum.voters)
        or its inter-broker listener (from its registration)."""
        if listener == CONTROLLER:
            return self.raft.voters.get(node_id)
        broker = self.image.brokers.get(node_id)
        if broker is None:
            return None
        return broker.endpoint(self.config.inter_broker_listener_name) or broker.endpoint(None)

    def on_controller(self, ctx: apis.RequestContext, request: Any, run: Callable[..., Any]) -> Any:
        """Run an admin request on the active controller (controller_channel.py)."""
        return self.channel.on_controller(ctx, request, run)

    # --- the metadata quorum's own requests (Vote, BeginQuorumEpoch, Fetch of the log, ...) ---
    def raft_request(self, ctx: apis.RequestContext, request: Any) -> Any:
        """Hand a Raft request to the quorum client; a metadata Fetch with nothing to return
        yet waits (up to its max_wait) for the log or the high watermark to move."""
        key = ctx.header.api_key
        operation = acl_ops.DESCRIBE if key == 55 else acl_ops.CLUSTER_ACTION
        if not self.authorize(ctx, operation, acl_ops.CLUSTER, acl_ops.CLUSTER_NAME):
            from moldau.raft import messages as raft_messages

            return raft_messages.top_level_error(key, ctx.version, ErrorCode.cluster_authorization_failed)
        response = self.raft.handle_request(key, ctx.version, request, ctx.now_ms)
        if response is not None:
            return response
        max_wait_ms = int(request.max_wait.total_seconds() * 1000)

        def on_expire(now_ms: int) -> Any:
            return self.finish(ctx, self.raft.handle_request(1, ctx.version, request, now_ms, expired=True))

        delayed = apis.Delayed(ctx.now_ms + max_wait_ms, lambda now_ms: None, on_expire)
        self._raft_fetches.append((delayed, ctx, request))
        return delayed

    def _retry_raft_fetches(self, now_ms: int) -> None:
        waiting, self._raft_fetches = self._raft_fetches, []
        for delayed, ctx, request in waiting:
            if delayed.done:
                continue
            response = self.raft.handle_request(1, ctx.version, request, now_ms)
            if response is None:
                self._raft_fetches.append((delayed, ctx, request))
            else:
                delayed.complete(self.finish(ctx, response))

    def after_replicated(self, partition: Partition, offset: int, callback: Callable[[ErrorCode], None],
                         timeout_ms: int = 30_000) -> None:
        """Call `callback(error_code)` once the record at `offset` is below the partition's high
        watermark (every in-sync replica has it): ErrorCode.none; NOT_LEADER_OR_FOLLOWER if this
        broker stops leading first; REQUEST_TIMED_OUT after `timeout_ms`. Writers of internal
        topics (groups, transactions) answer their clients from this callback. On one node the
        high watermark moves with the append, so the callback usually runs at once."""
        if not partition.is_leader:
            callback(ErrorCode.not_leader_or_follower)
        elif partition.high_watermark > offset:
            callback(ErrorCode.none)
        else:
            self.replication_waiters.setdefault(partition.key, []).append((offset, self.now_ms + timeout_ms, callback))

    def _complete_replication_waiters(self, key: tuple[str, int], now_ms: int) -> None:
        waiting = self.replication_waiters.get(key)
        if not waiting:
            return
        partition = self.partitions.get(key)
        done, kept = [], []
        for entry in waiting:
            offset, deadline_ms, callback = entry
            if partition is None or not partition.is_leader:
                done.append((callback, ErrorCode.not_leader_or_follower))
            elif partition.high_watermark > offset:
                done.append((callback, ErrorCode.none))
            elif deadline_ms <= now_ms:
                done.append((callback, ErrorCode.request_timed_out))
            else:
                kept.append(entry)
        if kept:
            self.replication_waiters[key] = kept
        else:
            del self.replication_waiters[key]
        for callback, code in done:
            callback(code)

    # --- partitions --------------------------------------------------------------------
    def partition(self, topic: str, index: int) -> Partition | None:
        """This broker's replica of the partition (its log opened now if it was waiting)."""
        return self.partitions.get((topic, index)) or self.replicas.get(topic, index)

    @staticmethod
    def apply_partition_configs(partition: Partition, configs: dict[str, str]) -> None:
        apply_partition_configs(partition, configs)

    def leader_partition(self, topic: str, index: int, current_leader_epoch: int = -1) -> Partition:
        """The partition if this broker leads it at the client's epoch; else raises the
        PartitionError the client must see (UNKNOWN_TOPIC_OR_PARTITION when this broker has
        no replica, NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH)."""
        partition = self.partition(topic, index)
        if partition is None:
            self.raise_if_unavailable(topic, index)
            raise PartitionError(ErrorCode.unknown_topic_or_partition)
        partition.check_leader(current_leader_epoch)
        if partition.log.offline is not None:
            self.raise_if_unavailable(topic, index)
        return partition

    def raise_if_unavailable(self, topic: str, index: int) -> None:
        """KAFKA_STORAGE_ERROR for a partition of this broker whose log is offline (damaged)
        or could not be opened yet (broker/storage.py); nothing otherwise."""
        partition = self.partitions.get((topic, index))
        if partition is not None and partition.log.offline is not None:
            raise PartitionError(ErrorCode.kafka_storage_error, f"{topic}-{index} is offline: "
                                 f"{partition.log.offline.describe()}")
        pending = self.log_dir.pending.get((topic, index))
        if pending is not None:
            raise PartitionError(ErrorCode.kafka_storage_error,
                                 f"{topic}-{index}: its log cannot be opened: {pending.reason}")

    def topic_configs(self, topic: str) -> dict[str, str]:
        """Effective configs of a topic: its overrides over the broker's over Kafka's defaults."""
        return effective_topic_configs(_valid_topic_configs(self.image.topic_configs(topic)), self.broker_config_values())

    def broker_config_layers(self) -> list[tuple[int, dict[str, str]]]:
        """(DescribeConfigs source, values) of the broker's settings, highest precedence first
        (Kafka's order): this broker's dynamic configs, the cluster-wide dynamic default,
        server.properties."""
        dynamic = self.image.configs
        return [
            (SOURCE_DYNAMIC_BROKER, _valid_broker_configs(dynamic.get((TYPE_BROKER, str(self.node_id)), {}))),
            (SOURCE_DYNAMIC_DEFAULT_BROKER, _valid_broker_configs(dynamic.get((TYPE_BROKER, ""), {}))),
            (SOURCE_STATIC_BROKER, self.config.log_defaults),
        ]

    def broker_config_sources(self) -> dict[str, int]:
        """Where each of broker_config_values() comes from."""
        sources: dict[str, int] = {}
        for source, values in reversed(self.broker_config_layers()):
            sources.update(dict.fromkeys(values, source))
        return sources

    def broker_config_values(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for _source, layer in reversed(self.broker_config_layers()):
            values.update(layer)
        return values

    def _on_metadata_record(self, record: r.MetadataRecord) -> None:
        if isinstance(record, (r.AccessControlEntryRecord, r.RemoveAccessControlEntryRecord)):
            self._acl_index = None
        elif isinstance(record, (r.PartitionRecord, r.PartitionChangeRecord)):
            self.replicas.sync(str(record.topic_id), record.partition_id)
        elif isinstance(record, r.RemoveTopicRecord):
            topic_id = str(record.topic_id)
            self.replicas.remove_topic(topic_id)
            name = self.image.removed_topic_names[topic_id]
            for key in sorted(self.extensions):
                on_topic_deleted = getattr(self.extensions[key], "topic_deleted", None)
                if on_topic_deleted is not None:
                    on_topic_deleted(name, self.now_ms)
        elif isinstance(record, r.ConfigRecord) and record.resource_type == TYPE_TOPIC:
            self._reconfigure_topic(record.resource_name)
        elif isinstance(record, r.ConfigRecord) and record.resource_type == TYPE_BROKER:
            for topic in sorted(self.image.topics_by_name):
                self._reconfigure_topic(topic)
            # max.connections and friends are dynamic in Kafka too (the limits do not exist yet
            # while the metadata log is replayed at start; they are built from the result).
            if getattr(self, "connection_limits", None) is not None:
                self.connection_limits.reconfigure(self._with_dynamic_broker_configs(self.config.security))

    def _with_dynamic_broker_configs(self, static: dict[str, str]) -> dict[str, str]:
        """`static` (server.properties) under the cluster-wide, then this broker's dynamic configs."""
        merged = dict(static)
        merged.update(self.image.configs.get((TYPE_BROKER, ""), {}))
        merged.update(self.image.configs.get((TYPE_BROKER, str(self.node_id)), {}))
        return merged

    def _reconfigure_topic(self, topic: str) -> None:
        if self.image.topic(topic) is None:
            return
        configs = self.topic_configs(topic)
        log_config = LogConfig.from_kafka_configs(configs)
        for key in sorted(self.partitions):
            if key[0] == topic:
                self.partitions[key].log.update_config(log_config)
                apply_partition_configs(self.partitions[key], configs)

    # --- timers ------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        """The earliest time a part of the core asked to run (a group member's session expiry,
        a Raft election timeout, ...). The runtime keeps one timer armed for it and calls
        `run_deadlines` then, so deadlines are met on time instead of on the next coarse tick.
        Parts take part by defining `next_deadline_ms()` and `run_deadlines(now_ms)`; after
        `run_deadlines(now)` a part's next deadline must lie after `now`."""
        earliest = None
        for part in self._timed_parts():
            deadline = part.next_deadline_ms()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        return earliest

    def run_deadlines(self, now_ms: int) -> None:
        self.now_ms = now_ms
        for part in self._timed_parts():
            deadline = part.next_deadline_ms()
            if deadline is not None and deadline <= now_ms:
                part.run_deadlines(now_ms)
        self._after_call(now_ms)

    def _timed_parts(self) -> list[Any]:
        # Asked after every call into the core: rebuilt only when an extension came or went.
        if self._timed_cache is None or self._timed_cache[0] != len(self.extensions):
            parts: list[Any] = [self.raft, self.controller, self.channel, self.fetchers, self.isr, _Backlog(self)]
            if self.lifecycle is not None:
                parts.append(self.lifecycle)
            parts += [self.extensions[k] for k in sorted(self.extensions) if hasattr(self.extensions[k], "next_deadline_ms")]
            self._timed_cache = (len(self.extensions), parts)
        return self._timed_cache[1]

    # --- housekeeping ------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        """Periodic work: retention, time-based flushes and segment rolls; partitions whose
        log could not be opened are tried again."""
        self.now_ms = now_ms
        self._retry_pending_logs()
        keys = sorted(self.partitions)
        # Compaction shares one budget per tick; the log that cleans first moves on each tick,
        # so every compacted log gets its turn however many there are.
        clean_budget = limits.cleaner_bytes_per_tick_max
        self._clean_turn = (self._clean_turn + 1) % max(1, len(keys))
        # Retention deletes due segments every log.retention.check.interval.ms, as in Kafka
        # (records with old timestamps are not gone the instant they are written).
        retention_due = now_ms - self._last_retention_check_ms >= self.config.log_retention_check_interval_ms
        if retention_due:
            self._last_retention_check_ms = now_ms
        for key in keys[self._clean_turn:] + keys[:self._clean_turn]:
            partition = self.partitions[key]
            deleted = partition.log.enforce_retention(now_ms, clean_max_bytes=max(0, clean_budget),
                                                      retention=retention_due)
            clean_budget -= partition.log.cleaner_bytes_read
            if deleted:
                log.info("Deleted %d segment(s) of %s-%d by retention; log start offset is now %d",
                         deleted, key[0], key[1], partition.log_start_offset)
            partition.log.maybe_flush(now_ms)
            partition.truncate_high_watermark_to_log()
        for key in sorted(self.replication_waiters):
            self._complete_replication_waiters(key, now_ms)
        self.replicas.checkpoint_high_watermarks(now_ms)
        for ext in self.extensions.values():
            ext.tick(now_ms)
        for quota in self.quotas.values():
            quota.forget_idle(now_ms)
        self._after_call(now_ms)

    def _retry_pending_logs(self) -> None:
        for (topic, index), topic_id in self.log_dir.due():
            image = self.image.topics_by_id.get(topic_id)
            if image is None or index not in image.partitions:
                self.log_dir.forget(topic_id)
                continue
            partition = self.replicas.reopen((topic, index))
            if partition is not None:
                self.partition_appended(partition.key, self.now_ms)  # wake anything waiting

    def storage_status(self) -> dict[str, int]:
        """Gauges of the log directory for metrics (counters: moldau.log.faults.counters())."""
        total, usable = self.disk_usage()
        return {
            "offline_partitions": sum(1 for p in self.partitions.values() if p.log.offline is not None),
            "partitions_waiting_for_disk": len(self.log_dir.pending),
            "log_dir_total_bytes": total,
            "log_dir_usable_bytes": usable,
            "log_dir_free_bytes_min": self.log_dir.free_bytes_min,
        }

    def close(self) -> None:
        """A clean shutdown: checkpoints written, and the broker epoch kept for the next start
        (so the controller knows the next registration is this broker restarted)."""
        # Every log's checkpoints and snapshot are written, then made durable by one sync of
        # the file system (not several fsyncs per partition: thousands of partitions stop fast).
        with self.fs.deferred_syncs(self.config.data_dir):
            self.replicas.checkpoint_high_watermarks(self.now_ms, force=True)
            for key in sorted(self.partitions):
                self.partitions[key].log.close()
            self.raft.close()
        if self.lifecycle is not None and self.lifecycle.broker_epoch >= 0:  # last: all else is durable
            storage.write_clean_shutdown_epoch(self.fs, self.config.data_dir, self.lifecycle.broker_epoch)


def _timedelta(ms: int):
    import datetime

    return datetime.timedelta(milliseconds=ms)


class _Backlog:
    """Work the core left for the next call: metadata records to apply, logs to open."""

    __slots__ = ("core",)

    def __init__(self, core: BrokerCore):
        self.core = core

    def next_deadline_ms(self) -> int | None:
        core = self.core
        if core.raft.high_watermark - 1 > core._published_offset or core.replicas.pending:
            return core.now_ms
        return None

    def run_deadlines(self, now_ms: int) -> None:
        pass  # run_deadlines ends with _after_call, which does the work


def _valid_broker_configs(values: dict[str, str]) -> dict[str, str]:
    """Dynamic broker configs without the invalid values a metadata log written before the
    controller validated them may hold: ignored, so that such a log still starts a broker
    (where the operator can delete them) instead of failing on every start."""
    return _valid(values, validate_broker_configs)


def _valid_topic_configs(values: dict[str, str]) -> dict[str, str]:
    """A topic's overrides without invalid ones (as _valid_broker_configs)."""
    return _valid(values, validate_topic_configs)


def _valid(values: dict[str, str], validate: Callable[[dict[str, str | None]], Any]) -> dict[str, str]:
    if not values:
        return values
    valid = {}
    for name, value in values.items():
        try:
            validate({name: value})
        except ConfigError:
            continue
        valid[name] = value
    return valid


def apply_partition_configs(partition: Partition, configs: dict[str, str]) -> None:
    """The topic configs the leader checks on produce, outside the log's own configuration."""
    partition.min_insync_replicas = int(configs["min.insync.replicas"])
    partition.timestamp_before_max_ms = int(configs["message.timestamp.before.max.ms"])
    partition.timestamp_after_max_ms = int(configs["message.timestamp.after.max.ms"])


def error_code_of(exception: BaseException) -> ErrorCode:
    code = getattr(exception, "error_code", None)
    return code if isinstance(code, ErrorCode) else ErrorCode.unknown_server_error
