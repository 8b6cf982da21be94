"""Broker registrations, heartbeats and fencing, on the active controller.

Theory of operation (Kafka's KRaft broker lifecycle). A broker process registers
(BrokerRegistration) with a new incarnation id each time it starts and gets a broker epoch —
the metadata log offset of its RegisterBrokerRecord. It registers fenced: it may replicate but
neither lead nor be in an ISR. It then heartbeats (BrokerHeartbeat) with the metadata offset it
has applied; once that offset reaches its own registration, the controller unfences it (and
partitions left without a leader whose ISR holds it get it back as leader). A broker whose
heartbeats stop for broker.session.timeout.ms is fenced: out of every ISR where it is not the
last member, and its leaderships move to other in-sync replicas (partitions with none go
offline). A broker that asks to shut down (want_shut_down) enters controlled shutdown: its
leaderships move first, and the heartbeat answers should_shut_down once it leads nothing.

Heartbeat times are the controller's memory, not records: a controller that takes over gives
every registered broker a full session from that moment.

Errors as Kafka: BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH, DUPLICATE_BROKER_REGISTRATION
(another live incarnation holds the id), INCONSISTENT_CLUSTER_ID (checked by the caller).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from moldau.controller import partitions as pc
from moldau.controller import records as r

if TYPE_CHECKING:
    from moldau.controller.controller import Controller

log = logging.getLogger("moldau.controller")


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    is_caught_up: bool
    is_fenced: bool
    should_shut_down: bool


class BrokerControl:
    def __init__(self, controller: "Controller"):
        self.controller = controller
        self.last_heartbeat_ms: dict[int, int] = {}
        # Brokers that heartbeated to this controller since it became active: a session given
        # at activation does not make a crashed incarnation look alive to a new registration.
        self.heard: set[int] = set()

    @property
    def image(self):
        return self.controller.image

    def activate(self, now_ms: int) -> None:
        self.last_heartbeat_ms = {b: now_ms for b in sorted(self.image.brokers)}
        self.heard = set()

    def deactivate(self) -> None:
        self.last_heartbeat_ms = {}
        self.heard = set()

    def _error(self, code: ErrorCode, message: str) -> Exception:
        from moldau.controller.controller import ControllerError

        return ControllerError(code, message)

    def check_epoch(self, broker_id: int, broker_epoch: int) -> None:
        broker = self.image.brokers.get(broker_id)
        if broker is None:
            raise self._error(ErrorCode.broker_id_not_registered, f"Broker {broker_id} is not registered.")
        if broker_epoch >= 0 and broker_epoch != broker.epoch:
            raise self._error(ErrorCode.stale_broker_epoch,
                              f"Broker {broker_id} has epoch {broker.epoch}, not {broker_epoch}.")

    # --- registration --------------------------------------------------------------------
    def register(self, broker_id: int, incarnation_id: uuid.UUID, endpoints: list[r.BrokerEndpoint],
                 rack: str | None, now_ms: int, previous_broker_epoch: int = -1) -> int:
        """Register a broker process; returns its new broker epoch (written, not committed).

        A new incarnation of an id whose session is still alive is refused
        (DUPLICATE_BROKER_REGISTRATION: two processes claim one node.id), as in Kafka, unless
        it proves it is the same broker restarted: it names the epoch it had before a clean
        shutdown (previous_broker_epoch, KIP-966), or it is this controller's own node (the
        process that holds this node's data directory, so the old incarnation is gone)."""
        existing = self.image.brokers.get(broker_id)
        records: list = []
        if existing is not None and existing.incarnation_id != str(incarnation_id):
            alive = broker_id in self.heard and \
                now_ms - self.last_heartbeat_ms.get(broker_id, -10**15) < self.controller.config.broker_session_timeout_ms
            restarted = previous_broker_epoch == existing.epoch or broker_id == self.controller.node_id
            if alive and not existing.fenced and not restarted:
                raise self._error(ErrorCode.duplicate_broker_registration,
                                  f"Another broker is registered with id {broker_id} and is still heartbeating; "
                                  "two nodes may share one node.id.")
            # The old incarnation is gone (it crashed and came back): move its leaderships
            # away and take it out of the ISRs first, as fencing would have.
            records += self.fence_records(broker_id)
        epoch = self.controller.next_offset() + len(records)
        records.append(r.RegisterBrokerRecord(broker_id=broker_id, incarnation_id=incarnation_id, broker_epoch=epoch,
                                              end_points=tuple(endpoints), rack=rack, fenced=True))
        self.controller.write(records, now_ms)
        self.last_heartbeat_ms[broker_id] = now_ms
        self.heard.add(broker_id)
        return epoch

    # --- heartbeats ----------------------------------------------------------------------
    def heartbeat(self, broker_id: int, broker_epoch: int, metadata_offset: int, want_fence: bool,
                  want_shut_down: bool, now_ms: int) -> HeartbeatResult:
        self.check_epoch(broker_id, broker_epoch)
        self.last_heartbeat_ms[broker_id] = now_ms
        self.heard.add(broker_id)
        broker = self.image.brokers[broker_id]
        caught_up = metadata_offset >= broker.registered_offset
        if want_shut_down:
            return self._controlled_shutdown(broker_id, now_ms, caught_up)
        if broker.fenced and caught_up and not want_fence:
            self.unfence(broker_id, now_ms)
        elif want_fence and not broker.fenced:
            self.fence(broker_id, now_ms)
        broker = self.image.brokers[broker_id]
        return HeartbeatResult(caught_up, broker.fenced, False)

    def _controlled_shutdown(self, broker_id: int, now_ms: int, caught_up: bool) -> HeartbeatResult:
        broker = self.image.brokers[broker_id]
        if broker.fenced:
            return HeartbeatResult(caught_up, True, True)
        if not broker.in_controlled_shutdown:
            records: list = [r.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=broker.epoch,
                                                              in_controlled_shutdown=1)]
            self.controller.write(records, now_ms)  # applied first: the broker is no longer acceptable
            records = self._leave_partitions(broker_id)
            if records:
                self.controller.write(records, now_ms)
            log.info("Broker %d is shutting down: leadership of its partitions moved away", broker_id)
        leads = any(p.leader == broker_id for p in pc.partitions_of_broker(self.image, broker_id))
        return HeartbeatResult(caught_up, False, not leads)

    # --- fencing -------------------------------------------------------------------------
    def fence_records(self, broker_id: int) -> list:
        """Records that take a broker out of its ISRs and leaderships and fence it."""
        broker = self.image.brokers.get(broker_id)
        if broker is None or broker.fenced:
            return []
        # Validate partition changes against the broker as already fenced.
        from dataclasses import replace

        brokers = dict(self.image.brokers)
        brokers[broker_id] = replace(broker, fenced=True)
        records: list = [r.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=broker.epoch, fenced=1)]
        records += self._leave_partitions(broker_id, brokers)
        return records

    def _leave_partitions(self, broker_id: int, brokers=None) -> list:
        acceptable = pc.acceptable_leader(brokers if brokers is not None else self.image.brokers)
        changes = []
        for part in pc.partitions_of_broker(self.image, broker_id):
            name = self.image.topics_by_id[part.topic_id].name
            change = pc.without_broker(part, broker_id, acceptable, self.controller.unclean_allowed(name))
            if change is not None:
                changes.append(change)
        return changes

    def fence(self, broker_id: int, now_ms: int) -> None:
        records = self.fence_records(broker_id)
        if records:
            log.info("Fencing broker %d: no heartbeat for %d ms", broker_id, self.controller.config.broker_session_timeout_ms)
            self.controller.write(records, now_ms)

    def unfence(self, broker_id: int, now_ms: int) -> None:
        broker = self.image.brokers[broker_id]
        self.controller.write([r.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=broker.epoch, fenced=-1)], now_ms)
        # Partitions without a leader whose ISR holds this broker (or, where the topic allows
        # unclean elections, any replica) get a leader again.
        acceptable = pc.acceptable_leader(self.image.brokers)
        changes = []
        for part in pc.leaderless_partitions(self.image):
            if broker_id not in part.replicas:
                continue
            name = self.image.topics_by_id[part.topic_id].name
            election = pc.UNCLEAN if self.controller.unclean_allowed(name) else pc.ONLINE
            change = pc.change_partition(part, acceptable, election=election)
            if change is not None:
                changes.append(change)
        if changes:
            self.controller.write(changes, now_ms)

    def next_deadline_ms(self) -> int | None:
        timeout = self.controller.config.broker_session_timeout_ms
        deadlines = [self.last_heartbeat_ms.get(b, 0) + timeout for b, broker in sorted(self.image.brokers.items())
                     if not broker.fenced]
        return min(deadlines) if deadlines else None

    def expire_sessions(self, now_ms: int) -> None:
        timeout = self.controller.config.broker_session_timeout_ms
        for broker_id in sorted(self.image.brokers):
            broker = self.image.brokers[broker_id]
            last = self.last_heartbeat_ms.setdefault(broker_id, now_ms)
            if not broker.fenced and now_ms - last >= timeout:
                self.fence(broker_id, now_ms)
