"""The transaction coordinator: transactional ids of the `__transaction_state` partitions this
broker leads.

Theory of operation. Kafka's design, in the synchronous core. A transactional id hashes to a
partition of `__transaction_state` (txn_topic.py); the leader of that partition coordinates
it, and the partition's leader epoch is the *coordinator epoch* stamped on every marker, so a
partition leader can refuse markers of a deposed coordinator. When this broker starts leading
a partition it replays it (`_load`: the last record per id wins) and resumes the markers of
every transaction caught in PrepareCommit/PrepareAbort; when it stops, it forgets the
partition's ids and their queued markers — the new leader resumes them.

A request's path: look the id up (NOT_COORDINATOR unless we lead its partition), check the
request against the metadata (error codes exactly as Kafka's TransactionCoordinator), prepare
a transition (txn_metadata.py: pending until written), append the new metadata to the
partition, and once BrokerCore.after_replicated says every in-sync replica has it, complete
the transition and answer. EndTxn answers once PrepareCommit/PrepareAbort is replicated;
the markers follow (txn_markers.py), and when every partition has its marker the transaction
is written CompleteCommit/CompleteAbort. So a commit is decided when EndTxn returns, and
becomes visible to read_committed consumers partition by partition as the markers land.

Fencing: InitProducerId for an id with an open transaction bumps the epoch (PrepareEpochFence)
and aborts the transaction under it, answering CONCURRENT_TRANSACTIONS; the client retries and
gets yet another epoch. The old producer's Produce is refused INVALID_PRODUCER_EPOCH by the
partitions (the abort markers carry the newer epoch), its EndTxn PRODUCER_FENCED. An open
transaction older than its transaction.timeout.ms is fenced and aborted the same way, at its
deadline (`run_deadlines`). Idle ids expire after transactional.id.expiration.ms (a tombstone).

Transactions V2 (KIP-890): EndTxn v5 clients bump the epoch with every commit or abort and
learn it from the response; Produce v12 / TxnOffsetCommit v5 add their partition to the
transaction through the partition leader (`add_partitions` with client_version 2), other
versions are only verified (`verify_partitions`). On a cluster the partition leader reaches the
coordinator over the inter-node channel (broker/txn_verify.py); on one node, directly.

Producer ids come from `core.extensions["producer_ids"]`, called in one place
(`_new_producer_id`).
"""

from __future__ import annotations

import heapq
import logging
import re
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.coordinator import txn_records as rec
from moldau.coordinator import txn_topic as topic
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.coordinator.txn_markers import TxnMarkerSender
from moldau.coordinator.txn_metadata import (
    EPOCH_MAX,
    NO_EPOCH,
    NO_PRODUCER_ID,
    TRANSACTION_VERSION_2,
    ProducerFenced,
    Transit,
    TxnMetadata,
)
from moldau.coordinator.txn_state import (
    COMPLETE_ABORT,
    COMPLETE_COMMIT,
    DEAD,
    EMPTY,
    EXPIRATION_ALLOWED,
    ONGOING,
    PREPARE_ABORT,
    PREPARE_COMMIT,
    PREPARE_EPOCH_FENCE,
    TxnState,
    parse_state,
)
from moldau.raft import faults

log = logging.getLogger("moldau.transactions")

# The transaction version the coordinator itself uses for aborts it starts (fencing,
# timeouts): the finalized transaction.version it advertises (broker/api_versions.py).
SERVER_TRANSACTION_VERSION = TRANSACTION_VERSION_2
Respond = Callable[..., None]


class TransactionCoordinator:
    def __init__(self, core: Any) -> None:
        self.core = core
        self.txns: dict[str, TxnMetadata] = {}
        self.loaded: dict[int, int] = {}  # __transaction_state partition -> coordinator epoch
        self.markers = TxnMarkerSender(self)
        self._timeouts: list[tuple[int, str, int]] = []  # heap of (deadline, id, start_ms)
        self._last_expiration_ms = core.now_ms

    # --- routing ------------------------------------------------------------------------
    def partition_count(self) -> int:
        image = self.core.image.topic(topic.TOPIC)
        return len(image.partitions) if image is not None else self.core.config.transaction_state_log_num_partitions

    def partition_of(self, transactional_id: str) -> int:
        return topic.partition_for(transactional_id, self.partition_count())

    def coordinator_node(self, transactional_id: str, listener_name: str | None = None) -> tuple[int, str, int]:
        """(node_id, host, port) of the id's coordinator on the client's listener, creating the
        topic on first use."""
        image = topic.ensure_topic(self.core)
        leader = image.partitions[self.partition_of(transactional_id)].leader
        broker = self.core.image.brokers.get(leader)
        endpoint = broker.endpoint(listener_name) if broker is not None else None
        if leader < 0 or endpoint is None:
            raise CoordinatorError(ErrorCode.coordinator_not_available)
        return leader, endpoint[0], endpoint[1]

    def coordinator_of(self, transactional_id: str) -> int:
        """The node coordinating the id, -1 if none (no topic yet, or no leader)."""
        image = self.core.image.topic(topic.TOPIC)
        if image is None:
            return -1
        return image.partitions[self.partition_of(transactional_id)].leader

    def _lookup(self, transactional_id: str, now_ms: int) -> tuple[int, TxnMetadata | None]:
        """(coordinator epoch, metadata or None); NOT_COORDINATOR unless we lead its partition."""
        index = self.partition_of(transactional_id)
        partition = self.core.partition(topic.TOPIC, index)
        if partition is None or not partition.is_leader:
            raise CoordinatorError(ErrorCode.not_coordinator)
        if self.loaded.get(index) != partition.leader_epoch:
            self._load(index, partition, now_ms)
        return self.loaded[index], self.txns.get(transactional_id)

    # --- loading ------------------------------------------------------------------------
    def sync_partitions(self, now_ms: int) -> None:
        """Load the partitions this broker now leads; forget those it no longer leads."""
        if self.core.image.topic(topic.TOPIC) is None:
            return
        for index in range(self.partition_count()):
            partition = self.core.partition(topic.TOPIC, index)
            leading = partition is not None and partition.is_leader
            if leading and self.loaded.get(index) != partition.leader_epoch:
                self._load(index, partition, now_ms)
            elif not leading and index in self.loaded:
                self._unload(index)

    def _load(self, index: int, partition: Any, now_ms: int) -> None:
        if index in self.loaded:
            self._unload(index)
        values: dict[str, rec.TxnLogValue | None] = {}
        for key, value in topic.read_records(partition):
            try:
                transactional_id = rec.decode_key(key)
                values[transactional_id] = None if value is None else rec.decode_value(value)
            except (rec.RecordFormatError, UnicodeDecodeError) as error:
                log.warning("Skipping an unreadable record of %s-%d: %s", topic.TOPIC, index, error)
        coordinator_epoch = partition.leader_epoch
        self.loaded[index] = coordinator_epoch
        for transactional_id in sorted(values):
            value = values[transactional_id]
            if value is None or value.state == DEAD:
                continue
            meta = self.txns[transactional_id] = TxnMetadata.from_log(transactional_id, value)
            if meta.state == ONGOING:
                self._watch_timeout(meta)
            elif meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                commit = meta.state == PREPARE_COMMIT and not faults.active("coordinator-flips-prepared-commit")
                self.markers.send(transactional_id, coordinator_epoch, meta, meta.prepare_complete(now_ms), commit)
        log.info("Loaded %d transactional id(s) of %s-%d at coordinator epoch %d",
                 sum(1 for t in self.txns if self.partition_of(t) == index), topic.TOPIC, index, coordinator_epoch)

    def _unload(self, index: int) -> None:
        del self.loaded[index]
        for transactional_id in [t for t in sorted(self.txns) if self.partition_of(t) == index]:
            del self.txns[transactional_id]
            self.markers.forget(transactional_id)

    # --- writing ------------------------------------------------------------------------
    def _write(self, meta: TxnMetadata, coordinator_epoch: int, transit: Transit, now_ms: int,
               done: Callable[[ErrorCode], None]) -> None:
        """Append `transit` (a tombstone for Dead); complete it once replicated, then `done`."""
        transactional_id = meta.transactional_id
        index = self.partition_of(transactional_id)
        partition = self.core.partition(topic.TOPIC, index)
        if partition is None or not partition.is_leader or self.loaded.get(index) != coordinator_epoch:
            meta.fail(transit)
            done(ErrorCode.not_coordinator)
            return
        value = None if transit.state == DEAD else rec.encode_value(transit.log_value())
        try:
            offset = topic.append(self.core, partition, rec.encode_key(transactional_id), value, now_ms)
        except CoordinatorError as error:
            meta.fail(transit)
            done(error.error_code)
            return

        def replicated(code: ErrorCode) -> None:
            if code != ErrorCode.none:
                meta.fail(transit)
                done(topic.append_error(code))
            elif self.txns.get(transactional_id) is not meta or self.loaded.get(index) != coordinator_epoch:
                done(ErrorCode.not_coordinator)
            else:
                self._completed(meta, transit)
                done(ErrorCode.none)

        self.core.after_replicated(partition, offset, replicated)

    def _completed(self, meta: TxnMetadata, transit: Transit) -> None:
        if transit.state == DEAD:
            meta.pending = None
            del self.txns[meta.transactional_id]
            return
        starting = transit.state == ONGOING and meta.state != ONGOING
        meta.complete(transit)
        if starting:
            self._watch_timeout(meta)

    def _new_producer_id(self) -> int:
        """The one place producer ids come from (on a cluster: blocks from the controller)."""
        return self.core.extensions["producer_ids"].next_producer_id()

    # --- InitProducerId -------------------------------------------------------------------
    def init_producer_id(self, transactional_id: str, timeout_ms: int, expected: tuple[int, int] | None,
                         now_ms: int, respond: Respond) -> None:
        """`respond(error, producer_id, producer_epoch)`."""
        if not transactional_id or len(transactional_id.encode("utf-8")) > limits.transactional_id_bytes_max:
            respond(ErrorCode.invalid_request, -1, -1)
            return
        if not 0 < timeout_ms <= self.core.config.transaction_max_timeout_ms:
            respond(ErrorCode.invalid_transaction_timeout, -1, -1)
            return
        try:
            coordinator_epoch, meta = self._lookup(transactional_id, now_ms)
            if meta is None:
                meta = self._create(transactional_id, timeout_ms, now_ms)
            transit = self._prepare_init(meta, timeout_ms, expected, now_ms)
        except CoordinatorError as error:
            respond(error.error_code, -1, -1)
            return
        if transit.state == PREPARE_EPOCH_FENCE:
            # Abort the open transaction under the fenced epoch; the client retries and then
            # gets an epoch of its own (Kafka answers CONCURRENT_TRANSACTIONS here too).
            def fenced(error: ErrorCode, *_: int) -> None:
                respond(error if error != ErrorCode.none else ErrorCode.concurrent_transactions, -1, -1)
            self._end(transactional_id, transit.producer_id, transit.producer_epoch, False, False,
                      SERVER_TRANSACTION_VERSION, now_ms, fenced)
            return

        def written(error: ErrorCode) -> None:
            if error == ErrorCode.none:
                log.info("Initialized transactional id %s with producer id %d and epoch %d",
                         transactional_id, transit.producer_id, transit.producer_epoch)
                respond(ErrorCode.none, transit.producer_id, transit.producer_epoch)
            else:
                respond(error, -1, -1)
        self._write(meta, coordinator_epoch, transit, now_ms, written)

    def _create(self, transactional_id: str, timeout_ms: int, now_ms: int) -> TxnMetadata:
        if len(self.txns) >= limits.transactional_ids_max:
            raise CoordinatorError(ErrorCode.coordinator_not_available, "too many transactional ids")
        meta = TxnMetadata(transactional_id, self._producer_id_or_error(), timeout_ms=timeout_ms,
                           last_update_ms=now_ms)
        self.txns[transactional_id] = meta
        return meta

    def _producer_id_or_error(self) -> int:
        try:
            return self._new_producer_id()
        except Exception as error:  # no block available (yet): the client retries
            code = getattr(error, "error_code", None)
            raise CoordinatorError(code if isinstance(code, ErrorCode) else ErrorCode.coordinator_load_in_progress,
                                   str(error)) from error

    def _prepare_init(self, meta: TxnMetadata, timeout_ms: int, expected: tuple[int, int] | None,
                      now_ms: int) -> Transit:
        if meta.pending is not None or meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            raise CoordinatorError(ErrorCode.concurrent_transactions)
        if expected is not None and not (
                meta.producer_epoch == NO_EPOCH or expected[0] == meta.producer_id
                or (expected[0] == meta.prev_producer_id and expected[1] >= EPOCH_MAX - 1)):
            raise CoordinatorError(ErrorCode.producer_fenced)
        if meta.state == ONGOING:
            return meta.prepare_fence_epoch()
        assert meta.state in (EMPTY, COMPLETE_COMMIT, COMPLETE_ABORT), f"{meta.transactional_id} in {meta.state}"
        if meta.epoch_exhausted and (expected is None or expected[1] == meta.producer_epoch):
            return meta.prepare_rotation(self._producer_id_or_error(), timeout_ms, now_ms, expected is not None)
        try:
            return meta.prepare_increment_epoch(timeout_ms, None if expected is None else expected[1], now_ms)
        except ProducerFenced:
            raise CoordinatorError(ErrorCode.producer_fenced) from None

    # --- AddPartitionsToTxn / AddOffsetsToTxn / verification ------------------------------
    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: set[tuple[str, int]], client_version: int, now_ms: int,
                       respond: Callable[[ErrorCode], None]) -> None:
        if not transactional_id:
            respond(ErrorCode.invalid_request)
            return
        try:
            coordinator_epoch, meta = self._lookup(transactional_id, now_ms)
            transit = self._prepare_add(meta, producer_id, producer_epoch, partitions, client_version, now_ms)
        except CoordinatorError as error:
            respond(error.error_code)
            return
        if transit is None:
            respond(ErrorCode.none)  # already in the transaction
            return
        assert meta is not None
        self._write(meta, coordinator_epoch, transit, now_ms, respond)

    def _prepare_add(self, meta: TxnMetadata | None, producer_id: int, producer_epoch: int,
                     partitions: set[tuple[str, int]], client_version: int, now_ms: int) -> Transit | None:
        if meta is None or meta.producer_id != producer_id:
            raise CoordinatorError(ErrorCode.invalid_producer_id_mapping)
        if meta.producer_epoch != producer_epoch:
            raise CoordinatorError(ErrorCode.producer_fenced)
        if meta.pending is not None or meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            raise CoordinatorError(ErrorCode.concurrent_transactions)
        if meta.state == ONGOING and partitions <= meta.partitions:
            return None
        if len(meta.partitions | partitions) > limits.partitions_per_transaction_max:
            raise CoordinatorError(ErrorCode.invalid_request, "too many partitions in one transaction")
        return meta.prepare_add_partitions(partitions, now_ms, client_version)

    def verify_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                          partitions: list[tuple[str, int]], now_ms: int) -> dict[tuple[str, int], ErrorCode]:
        """KIP-890 verification: is each partition in the producer's open transaction?"""
        try:
            if not transactional_id:
                raise CoordinatorError(ErrorCode.invalid_request)
            _, meta = self._lookup(transactional_id, now_ms)
            if meta is None or meta.producer_id != producer_id:
                raise CoordinatorError(ErrorCode.invalid_producer_id_mapping)
            if meta.producer_epoch != producer_epoch:
                raise CoordinatorError(ErrorCode.producer_fenced)
            if meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
                raise CoordinatorError(ErrorCode.concurrent_transactions)
        except CoordinatorError as error:
            return {p: error.error_code for p in partitions}
        return {p: ErrorCode.none if p in meta.partitions else ErrorCode.transaction_abortable for p in partitions}

    # --- EndTxn ---------------------------------------------------------------------------
    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
                client_version: int, now_ms: int, respond: Respond) -> None:
        """`respond(error, producer_id, producer_epoch)` (V2 clients learn their next epoch)."""
        self._end(transactional_id, producer_id, producer_epoch, commit, True, client_version, now_ms, respond)

    def _end(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
             from_client: bool, client_version: int, now_ms: int, respond: Respond) -> None:
        if not transactional_id:
            respond(ErrorCode.invalid_request, -1, -1)
            return
        try:
            coordinator_epoch, meta = self._lookup(transactional_id, now_ms)
            if meta is None:
                raise CoordinatorError(ErrorCode.invalid_producer_id_mapping)
            if client_version >= TRANSACTION_VERSION_2:
                transit, fencing = self._prepare_end_v2(meta, producer_id, producer_epoch, commit, from_client, now_ms)
            else:
                transit, fencing = self._prepare_end_v1(meta, producer_id, producer_epoch, commit, from_client, now_ms)
        except CoordinatorError as error:
            if error.error_code == ErrorCode.none:  # a retry of an end that already happened
                respond(ErrorCode.none, meta.producer_id, meta.producer_epoch)
            else:
                respond(error.error_code, -1, -1)
            return

        def written(error: ErrorCode) -> None:
            if error != ErrorCode.none:
                if fencing and self.txns.get(transactional_id) is meta:
                    meta.failed_epoch_fence = True
                respond(error, -1, -1)
                return
            if self.loaded.get(self.partition_of(transactional_id)) != coordinator_epoch:
                respond(ErrorCode.not_coordinator, -1, -1)
                return
            complete = meta.prepare_complete(now_ms)
            if client_version >= TRANSACTION_VERSION_2:
                respond(ErrorCode.none, meta.producer_id, meta.producer_epoch)
            else:
                respond(ErrorCode.none, -1, -1)
            self.markers.send(transactional_id, coordinator_epoch, meta, complete, commit)
        self._write(meta, coordinator_epoch, transit, now_ms, written)

    def _prepare_end_v1(self, meta: TxnMetadata, producer_id: int, producer_epoch: int, commit: bool,
                        from_client: bool, now_ms: int) -> tuple[Transit, bool]:
        if meta.producer_id != producer_id:
            raise CoordinatorError(ErrorCode.invalid_producer_id_mapping)
        if (from_client and producer_epoch != meta.producer_epoch) or producer_epoch < meta.producer_epoch:
            raise CoordinatorError(ErrorCode.producer_fenced)
        if meta.pending is not None and meta.pending != PREPARE_EPOCH_FENCE:
            raise CoordinatorError(ErrorCode.concurrent_transactions)
        if meta.state == ONGOING:
            fencing = not commit and meta.pending == PREPARE_EPOCH_FENCE
            if fencing:
                meta.begin_fenced_abort(producer_epoch)
            return meta.prepare_abort_or_commit(PREPARE_COMMIT if commit else PREPARE_ABORT, 0, NO_PRODUCER_ID,
                                                now_ms, False), fencing
        raise CoordinatorError(_repeat_or_conflict(meta.state, commit, retry=True))

    def _prepare_end_v2(self, meta: TxnMetadata, producer_id: int, producer_epoch: int, commit: bool,
                        from_client: bool, now_ms: int) -> tuple[Transit, bool]:
        fencing = meta.pending == PREPARE_EPOCH_FENCE
        retry_on_overflow = (not fencing and meta.prev_producer_id == producer_id
                             and producer_epoch == EPOCH_MAX - 1 and meta.producer_epoch == 0)
        retry_on_bump = not fencing and meta.producer_epoch == producer_epoch + 1
        if fencing:
            valid = (not from_client or producer_epoch == meta.producer_epoch) and producer_epoch >= meta.producer_epoch
        elif meta.state in (PREPARE_COMMIT, PREPARE_ABORT):
            valid = retry_on_bump
        elif meta.state in (COMPLETE_COMMIT, COMPLETE_ABORT):
            valid = retry_on_bump or retry_on_overflow or producer_epoch == meta.producer_epoch
        else:
            valid = producer_epoch == meta.producer_epoch
        if meta.producer_id != producer_id and not retry_on_overflow:
            raise CoordinatorError(ErrorCode.invalid_producer_id_mapping)
        if not valid:
            raise CoordinatorError(ErrorCode.producer_fenced)
        if meta.pending is not None and not fencing:
            raise CoordinatorError(ErrorCode.concurrent_transactions)
        retry = retry_on_bump or retry_on_overflow
        state = meta.state
        if state == ONGOING:
            return self._end_transit(meta, PREPARE_COMMIT if commit else PREPARE_ABORT, fencing, producer_epoch,
                                     False, now_ms), fencing
        # A V2 client unsure of the outcome may always abort: from Empty or a completed
        # transaction that is not a retry, that is an (empty) abort with an epoch bump.
        if not commit and (state == EMPTY or (state in (COMPLETE_COMMIT, COMPLETE_ABORT) and not retry)):
            return self._end_transit(meta, PREPARE_ABORT, fencing, producer_epoch, True, now_ms), fencing
        raise CoordinatorError(_repeat_or_conflict(state, commit, retry))

    def _end_transit(self, meta: TxnMetadata, state: TxnState, fencing: bool, producer_epoch: int,
                     no_partition_added: bool, now_ms: int) -> Transit:
        next_producer_id = NO_PRODUCER_ID
        if not fencing and meta.epoch_exhausted:
            next_producer_id = self._producer_id_or_error()
        if fencing and state == PREPARE_ABORT:
            meta.begin_fenced_abort(producer_epoch)
        return meta.prepare_abort_or_commit(state, TRANSACTION_VERSION_2, next_producer_id, now_ms, no_partition_added,
                                            fenced=fencing)

    # --- admin ----------------------------------------------------------------------------
    def describe(self, transactional_id: str, now_ms: int) -> dict:
        # An error leaves the other fields at the schema's defaults (0), as Kafka answers.
        entry = {"transactional_id": transactional_id, "error_code": ErrorCode.none, "transaction_state": "",
                 "transaction_timeout_ms": 0, "transaction_start_time_ms": 0, "producer_id": 0,
                 "producer_epoch": 0, "topics": []}
        try:
            if not transactional_id:
                raise CoordinatorError(ErrorCode.invalid_request)
            _, meta = self._lookup(transactional_id, now_ms)
            if meta is None or meta.state == DEAD:
                raise CoordinatorError(ErrorCode.transactional_id_not_found)
        except CoordinatorError as error:
            entry["error_code"] = error.error_code
            return entry
        by_topic: dict[str, list[int]] = {}
        for name, index in sorted(meta.partitions):
            by_topic.setdefault(name, []).append(index)
        entry.update(transaction_state=meta.state.kafka_name, transaction_timeout_ms=meta.timeout_ms,
                     transaction_start_time_ms=meta.start_ms, producer_id=meta.producer_id,
                     producer_epoch=meta.producer_epoch,
                     topics=[{"topic": t, "partitions": ids} for t, ids in sorted(by_topic.items())])
        return entry

    def list_transactions(self, state_names: list[str], producer_ids: list[int], duration_ms: int,
                          id_pattern: str | None, now_ms: int) -> tuple[ErrorCode, list[str], list[TxnMetadata]]:
        """(error, unknown state filters, matching transactions) of the ids this broker coordinates."""
        unknown = [name for name in state_names if parse_state(name) is None]
        states = {parse_state(name) for name in state_names} - {None}
        try:
            pattern = re.compile(id_pattern) if id_pattern else None
        except re.error:
            return ErrorCode.invalid_regular_expression, unknown, []
        self.sync_partitions(now_ms)
        found = []
        for transactional_id in sorted(self.txns):
            meta = self.txns[transactional_id]
            if (meta.state == DEAD or (producer_ids and meta.producer_id not in producer_ids)
                    or (state_names and meta.state not in states)
                    or (duration_ms >= 0 and now_ms - meta.start_ms <= duration_ms)
                    or (pattern is not None and not pattern.fullmatch(transactional_id))):
                continue
            found.append(meta)
        return ErrorCode.none, unknown, found

    # --- time ---------------------------------------------------------------------------
    def _watch_timeout(self, meta: TxnMetadata) -> None:
        heapq.heappush(self._timeouts, (meta.start_ms + meta.timeout_ms + 1, meta.transactional_id, meta.start_ms))

    def next_deadline_ms(self) -> int | None:
        timeouts = self._timeouts
        while timeouts:
            _, transactional_id, start_ms = timeouts[0]
            meta = self.txns.get(transactional_id)
            if meta is not None and meta.state == ONGOING and meta.start_ms == start_ms:
                break
            heapq.heappop(timeouts)  # ended, restarted or gone: no longer due
        earliest = timeouts[0][0] if timeouts else None
        retry = self.markers.next_deadline_ms()
        if retry is not None and (earliest is None or retry < earliest):
            return retry
        return earliest

    def run_deadlines(self, now_ms: int) -> None:
        while self._timeouts and self._timeouts[0][0] <= now_ms:
            _, transactional_id, start_ms = heapq.heappop(self._timeouts)
            meta = self.txns.get(transactional_id)
            if meta is None or meta.state != ONGOING or meta.start_ms != start_ms:
                continue
            if meta.pending is not None:  # try again shortly, once the transition is done
                heapq.heappush(self._timeouts, (now_ms + 100, transactional_id, start_ms))
                continue
            self._abort_timed_out(meta, now_ms)
        self.markers.run_deadlines(now_ms)

    def _abort_timed_out(self, meta: TxnMetadata, now_ms: int) -> None:
        log.info("Aborting transaction of %s (producer id %d, epoch %d): open longer than %d ms",
                 meta.transactional_id, meta.producer_id, meta.producer_epoch, meta.timeout_ms)
        transit = meta.prepare_fence_epoch()
        start_ms = meta.start_ms

        def done(error: ErrorCode, *_: int) -> None:
            if error in (ErrorCode.none, ErrorCode.concurrent_transactions):
                return
            # The abort's write failed (too few in-sync replicas of __transaction_state, say):
            # the transaction is still open, and is tried again later, as Kafka's periodic
            # check of timed-out transactions would.
            retry_ms = self.core.config.transaction_abort_timed_out_transaction_cleanup_interval_ms
            log.warning("Aborting the timed-out transaction of %s failed: %s; trying again in %d ms",
                        meta.transactional_id, error.name, retry_ms)
            heapq.heappush(self._timeouts, (self.core.now_ms + retry_ms, meta.transactional_id, start_ms))
        self._end(meta.transactional_id, transit.producer_id, transit.producer_epoch, False, False,
                  SERVER_TRANSACTION_VERSION, now_ms, done)

    def tick(self, now_ms: int) -> None:
        self.sync_partitions(now_ms)  # after a start or a leader change: load without waiting for a client
        self.run_deadlines(now_ms)
        interval_ms = self.core.config.transaction_remove_expired_transaction_cleanup_interval_ms
        if now_ms - self._last_expiration_ms >= interval_ms:
            self._last_expiration_ms = now_ms
            self.expire_transactional_ids(now_ms)

    def expire_transactional_ids(self, now_ms: int) -> None:
        """Ids idle for transactional.id.expiration.ms with nothing open go (a tombstone each)."""
        expiration_ms = self.core.config.transactional_id_expiration_ms
        for transactional_id in sorted(self.txns):
            meta = self.txns[transactional_id]
            if meta.pending is not None or meta.state not in EXPIRATION_ALLOWED \
                    or meta.last_update_ms > now_ms - expiration_ms:
                continue
            index = self.partition_of(transactional_id)
            if index not in self.loaded:
                continue
            transit = meta.prepare_dead()
            self._write(meta, self.loaded[index], transit, now_ms, lambda error: None)


def _repeat_or_conflict(state: TxnState, commit: bool, retry: bool) -> ErrorCode:
    """EndTxn on a transaction that is not open (Kafka's table): NONE for a retry of the end
    that happened, CONCURRENT_TRANSACTIONS while that end is being written out,
    INVALID_TXN_STATE otherwise."""
    if state == (COMPLETE_COMMIT if commit else COMPLETE_ABORT) and retry:
        return ErrorCode.none
    if state == (PREPARE_COMMIT if commit else PREPARE_ABORT):
        return ErrorCode.concurrent_transactions
    assert state not in (DEAD, PREPARE_EPOCH_FENCE), f"a transaction cannot end from {state}"
    return ErrorCode.invalid_txn_state
