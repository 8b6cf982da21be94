"""The broker's life with the controller: registration, heartbeats, controlled shutdown
(Kafka's BrokerLifecycleManager), as a state machine in the core.

Theory of operation. States, in order:

    STARTING ──registered──▶ RECOVERY ──unfenced──▶ RUNNING ──shutdown──▶ PENDING_CONTROLLED_SHUTDOWN
        ▲                        │                      │                          │
        └── STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED (the controller lost us) │
                                                                   should_shut_down ▼
                                                                             SHUTTING_DOWN

STARTING sends BrokerRegistration (a new incarnation id per process, the advertised listeners)
to the active controller — the metadata quorum's leader — until it is accepted; the answer's
broker epoch identifies this incarnation in every later request. RECOVERY heartbeats with the
metadata offset applied so far; the controller unfences the broker once it has applied its own
registration, and RUNNING follows. Heartbeats go every broker.heartbeat.interval.ms (at once
while catching up, so a restarted broker rejoins without waiting an interval). A controlled
shutdown heartbeats with want_shut_down until the controller has moved every leadership away
(should_shut_down), or until the caller gives up waiting.

A registration refused with DUPLICATE_BROKER_REGISTRATION (another live process holds this
node.id) or INCONSISTENT_CLUSTER_ID is fatal: `fatal_error` says why in one line and the
runtime exits with it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kio.schema.broker_heartbeat.v1 import request as heartbeat_request
from kio.schema.broker_registration.v4 import request as registration_request
from kio.schema.errors import ErrorCode

from moldau.controller import features
from moldau.controller import records as r
from moldau.protocol.rpc import CONTROLLER, LIFECYCLE_CHANNEL, OutboundRequest

log = logging.getLogger("moldau.broker")

STARTING, RECOVERY, RUNNING, PENDING_CONTROLLED_SHUTDOWN, SHUTTING_DOWN = (
    "STARTING", "RECOVERY", "RUNNING", "PENDING_CONTROLLED_SHUTDOWN", "SHUTTING_DOWN")
REGISTRATION_VERSION = 4
HEARTBEAT_VERSION = 1
RETRY_BACKOFF_MS = 100
# Kafka's metadata.version feature range this broker speaks (4.1's levels); registration
# reports it as Kafka brokers do.


class BrokerLifecycle:
    def __init__(self, core: Any, incarnation_id: uuid.UUID, heartbeat_interval_ms: int):
        self.core = core
        self.incarnation_id = incarnation_id
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.state = STARTING
        self.broker_epoch = -1
        self.previous_broker_epoch = -1  # the epoch before a clean shutdown (KIP-966), or -1
        self.in_flight = False
        self.next_send_ms = 0
        self.fatal_error: str | None = None
        # When the controller first said another live process holds our node.id: a crashed
        # earlier incarnation of ours holds it until its session expires, so only a refusal
        # that outlasts a session (twice, for slack) means a second process with our node.id.
        self.duplicate_since_ms: int | None = None

    def _timeout_ms(self) -> int:
        """A registration or heartbeat unanswered for a session is of no use: try again."""
        config = self.core.config
        return min(config.controller_socket_timeout_ms, config.broker_session_timeout_ms)

    @property
    def registered_offset(self) -> int:
        return self.broker_epoch  # the offset of our RegisterBrokerRecord

    # --- timers -------------------------------------------------------------------------
    def next_deadline_ms(self) -> int | None:
        if self.in_flight or self.state == SHUTTING_DOWN or self.fatal_error:
            return None
        return self.next_send_ms

    def run_deadlines(self, now_ms: int) -> None:
        if self.in_flight or now_ms < self.next_send_ms or self.state == SHUTTING_DOWN or self.fatal_error:
            return
        controller = self.core.controller_id()
        if controller < 0:
            self.next_send_ms = now_ms + RETRY_BACKOFF_MS
            return
        if self.state == STARTING:
            self._register(controller)
        else:
            self._heartbeat(controller)

    def metadata_applied(self, now_ms: int) -> None:
        """The image moved: a broker catching up heartbeats at once instead of after an interval."""
        if self.state == RECOVERY and not self.in_flight and self.core.image.offset >= self.registered_offset:
            self.next_send_ms = min(self.next_send_ms, now_ms)

    def begin_controlled_shutdown(self, now_ms: int) -> None:
        if self.state in (RUNNING, RECOVERY):
            self.state = PENDING_CONTROLLED_SHUTDOWN
            self.next_send_ms = now_ms
        elif self.state == STARTING:
            self.state = SHUTTING_DOWN

    # --- requests -----------------------------------------------------------------------
    def _register(self, controller: int) -> None:
        core = self.core
        listeners = tuple(registration_request.Listener(
            name=e.name, host=e.host, port=e.port, security_protocol=r.SECURITY_PROTOCOL_IDS.get(e.security_protocol, 0))
            for e in core.advertised_endpoints())
        body = registration_request.BrokerRegistrationRequest(
            broker_id=core.node_id, cluster_id=core.image.cluster_id, incarnation_id=self.incarnation_id,
            listeners=listeners,
            features=tuple(registration_request.Feature(name=name, min_supported_version=low, max_supported_version=high)
                           for name, (low, high) in sorted(features.SUPPORTED.items())),
            rack=core.config.rack, is_migrating_zk_broker=False, log_dirs=(), previous_broker_epoch=self.previous_broker_epoch)
        self.in_flight = True
        core.send(OutboundRequest(controller, CONTROLLER, 62, REGISTRATION_VERSION, body, self._timeout_ms(),
                                  self._on_registration, channel=LIFECYCLE_CHANNEL))

    def _on_registration(self, response: Any, now_ms: int) -> None:
        self.in_flight = False
        if response is None or response.error_code != ErrorCode.none:
            code = None if response is None else response.error_code
            if code == ErrorCode.duplicate_broker_registration:
                self.duplicate_since_ms = self.duplicate_since_ms if self.duplicate_since_ms is not None else now_ms
                if now_ms - self.duplicate_since_ms > 2 * self.core.config.broker_session_timeout_ms:
                    self.fatal_error = (f"node.id {self.core.node_id} is registered by another running node "
                                        "(two nodes share one node.id?)")
            elif code == ErrorCode.inconsistent_cluster_id:
                self.fatal_error = (f"the cluster's id differs from this node's cluster id {self.core.image.cluster_id!r} "
                                    "(meta.properties in the data directory belongs to another cluster)")
            self.next_send_ms = now_ms + RETRY_BACKOFF_MS
            return
        self.broker_epoch = response.broker_epoch
        self.duplicate_since_ms = None
        if self.state == STARTING:
            self.state = RECOVERY
        log.info("Registered broker %d with epoch %d", self.core.node_id, self.broker_epoch)
        self.next_send_ms = now_ms
        self.core.lifecycle_changed(now_ms)

    def _heartbeat(self, controller: int) -> None:
        body = heartbeat_request.BrokerHeartbeatRequest(
            broker_id=self.core.node_id, broker_epoch=self.broker_epoch,
            current_metadata_offset=max(-1, self.core.image.offset), want_fence=False,
            want_shut_down=self.state == PENDING_CONTROLLED_SHUTDOWN, offline_log_dirs=())
        self.in_flight = True
        self.core.send(OutboundRequest(controller, CONTROLLER, 63, HEARTBEAT_VERSION, body, self._timeout_ms(),
                                       self._on_heartbeat, channel=LIFECYCLE_CHANNEL))

    def _on_heartbeat(self, response: Any, now_ms: int) -> None:
        self.in_flight = False
        if response is None:
            self.next_send_ms = now_ms + RETRY_BACKOFF_MS
            return
        code = response.error_code
        if code in (ErrorCode.stale_broker_epoch, ErrorCode.broker_id_not_registered):
            log.warning("The controller no longer knows this broker (%s): registering again", code.name)
            if self.state != PENDING_CONTROLLED_SHUTDOWN:
                self.state = STARTING
            else:
                self.state = SHUTTING_DOWN
            self.next_send_ms = now_ms
            self.core.lifecycle_changed(now_ms)
            return
        if code != ErrorCode.none:
            self.next_send_ms = now_ms + RETRY_BACKOFF_MS
            return
        self._after_heartbeat(response, now_ms)

    def _after_heartbeat(self, response: Any, now_ms: int) -> None:
        if self.state == PENDING_CONTROLLED_SHUTDOWN:
            if response.should_shut_down:
                self.state = SHUTTING_DOWN
                self.core.lifecycle_changed(now_ms)
                return
            self.next_send_ms = now_ms + min(self.heartbeat_interval_ms, 200)
            return
        if self.state == RECOVERY and not response.is_fenced:
            self.state = RUNNING
            log.info("Broker %d is running (unfenced)", self.core.node_id)
            self.core.lifecycle_changed(now_ms)
        elif self.state == RUNNING and response.is_fenced:
            self.state = RECOVERY  # fenced by the controller (it missed our heartbeats)
            self.core.lifecycle_changed(now_ms)
        self.next_send_ms = now_ms + self.heartbeat_interval_ms
        if self.state == RECOVERY and response.is_caught_up:
            self.next_send_ms = now_ms + RETRY_BACKOFF_MS  # caught up but not unfenced yet: ask again soon
        self.metadata_applied(now_ms)
