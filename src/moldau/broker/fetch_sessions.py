"""Fetch sessions (KIP-227): incremental Fetch requests and responses, Fetch v7 and later.

Theory of operation
-------------------
A consumer reading many partitions sends the same long list in every Fetch, and gets every
partition back even when nothing changed. With a session the broker remembers the list: the
client sends only the partitions whose fetch position (or limits) changed, plus the ones to
forget, and the broker answers only the partitions with something new — records, a moved high
watermark or log start offset, an error, a diverging epoch.

The request's (session_id, session_epoch) say what it is, as in Kafka:

- (0, -1): a sessionless full fetch (what librdkafka and kafka-python always send);
- (0, 0): a full fetch that opens a session; the response carries the new session id;
- (S, 0): close session S and open a new one from this full request;
- (S, -1): close session S; this request is a sessionless full fetch;
- (S, E>0): an incremental fetch in session S; E must be the epoch the session expects
  (INVALID_FETCH_SESSION_EPOCH otherwise, FETCH_SESSION_ID_NOT_FOUND if S is unknown). The
  session's partitions are updated with the request's and the forgotten ones removed, and the
  expected epoch moves on by one (wrapping to 1).

Partitions are kept in the order they were first sent, and one that returned records in an
incremental response moves to the back, as in Kafka, so a busy partition cannot keep the
response's max_bytes to itself. Every partition of a full response is sent; an incremental response sends a partition when its response differs from what
the client last heard (`changed`). What was sent is recorded only when a response is final
(`FetchContext.sent`), so a long-poll that re-reads its partitions several times does not lose
a change.

The cache is bounded (limits.fetch_sessions_max, Kafka's max.incremental.fetch.session.cache.slots):
when it is full a new session takes the slot of the least recently used one if that one has been
idle for limits.fetch_session_eviction_ms (min.incremental.fetch.session.eviction.ms); otherwise
the client gets a sessionless response (session id 0) and goes on with full fetches. Session ids
come from the core's uuid source, so simulation runs stay deterministic, and are never 0.
Sessions idle for limits.fetch_session_idle_ms are dropped on the broker's tick.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from moldau import limits

SESSIONLESS_EPOCH = -1  # Kafka's FINAL_EPOCH: no session, or close it
INITIAL_EPOCH = 0
_NOTHING_SENT = -2  # below every real offset (-1 is a valid "unknown")
_EPOCH_MAX = 2**31 - 1


@dataclass(slots=True)
class SessionPartition:
    """One partition of a fetch: what the client asked for and what it was last told.

    Has the attribute names of a Fetch request partition, so the read path takes either."""

    topic: str | None  # None when the client named a topic id this broker does not know
    topic_id: str | None
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1
    sent_high_watermark: int = _NOTHING_SENT
    sent_log_start_offset: int = _NOTHING_SENT
    sent_last_stable_offset: int = _NOTHING_SENT  # read_committed consumers wait on it

    def update(self, fp: Any) -> None:
        self.fetch_offset = fp.fetch_offset
        self.partition_max_bytes = fp.partition_max_bytes
        self.current_leader_epoch = getattr(fp, "current_leader_epoch", -1)
        self.last_fetched_epoch = getattr(fp, "last_fetched_epoch", -1)
        self.log_start_offset = getattr(fp, "log_start_offset", -1)


def changed(partition: SessionPartition, result: dict) -> bool:
    """Whether an incremental response must carry this partition's `result`."""
    return bool(
        result["records"]
        or result["error_code"] != ErrorCode.none
        or "diverging_epoch" in result
        or result["high_watermark"] != partition.sent_high_watermark
        or result["log_start_offset"] != partition.sent_log_start_offset
        or result["last_stable_offset"] != partition.sent_last_stable_offset
    )


@dataclass(slots=True)
class FetchSession:
    session_id: int
    epoch: int  # what the next incremental request must carry
    partitions: OrderedDict[tuple[str, int], SessionPartition]
    last_used_ms: int


@dataclass(slots=True)
class FetchContext:
    """How one Fetch request is answered: which partitions, which session id, whether incremental."""

    session_id: int
    partitions: list[SessionPartition]
    incremental: bool = False
    error: ErrorCode = ErrorCode.none
    session: FetchSession | None = None

    def sent(self, results: list[tuple[SessionPartition, dict]]) -> None:
        """Record what a final response told the client about each partition it carried. In an
        incremental fetch the partitions that returned records go to the back of the session's
        order, as in Kafka: with the response's max_bytes spent on the first partitions, the
        others come first next time, so no partition starves behind a busy one."""
        for partition, result in results:
            partition.sent_high_watermark = result["high_watermark"]
            partition.sent_log_start_offset = result["log_start_offset"]
            partition.sent_last_stable_offset = result["last_stable_offset"]
            if self.incremental and self.session is not None and result["records"]:
                self.session.partitions.move_to_end(_key(partition.topic, partition.topic_id, partition.partition))


def _key(topic: str | None, topic_id: str | None, index: int) -> tuple[str, int]:
    return (topic_id if topic_id else topic or "", index)


class FetchSessionCache:
    def __init__(self, new_uuid: Callable[[], Any], max_sessions: int = limits.fetch_sessions_max,
                 eviction_ms: int = limits.fetch_session_eviction_ms):
        self.new_uuid = new_uuid
        self.max_sessions = max_sessions
        self.eviction_ms = eviction_ms
        self.sessions: OrderedDict[int, FetchSession] = OrderedDict()  # least recently used first
        self.created = 0
        self.evicted = 0
        self.incremental_fetches = 0

    def context(self, request: Any, version: int, resolve: Callable[[Any], tuple[str | None, str | None]],
                now_ms: int) -> FetchContext:
        """The FetchContext of `request`; `resolve(request_topic)` gives (name, topic id)."""
        session_id = getattr(request, "session_id", 0) if version >= 7 else 0
        epoch = getattr(request, "session_epoch", SESSIONLESS_EPOCH) if version >= 7 else SESSIONLESS_EPOCH
        if epoch > INITIAL_EPOCH:
            return self._incremental(request, resolve, session_id, epoch, now_ms)
        if session_id:
            self.sessions.pop(session_id, None)  # closed by the client (epoch -1 or 0)
        partitions = list(_requested(request, resolve).values())
        if epoch == SESSIONLESS_EPOCH:
            return FetchContext(0, partitions)
        session = self._open(partitions, now_ms)
        return FetchContext(session.session_id if session else 0, partitions)

    def _open(self, partitions: list[SessionPartition], now_ms: int) -> FetchSession | None:
        if len(self.sessions) >= self.max_sessions:
            oldest_id, oldest = next(iter(self.sessions.items()))
            if now_ms - oldest.last_used_ms < self.eviction_ms:
                return None  # every slot busy: this client goes on without a session
            del self.sessions[oldest_id]
            self.evicted += 1
        session_id = self._new_id()
        session = FetchSession(session_id, 1, OrderedDict((_key(p.topic, p.topic_id, p.partition), p) for p in partitions), now_ms)
        self.sessions[session_id] = session
        self.created += 1
        return session

    def tick(self, now_ms: int) -> None:
        """Drop sessions idle for limits.fetch_session_idle_ms: their clients are gone (a live
        consumer fetches at least every fetch.max.wait.ms) or will open a new one on
        FETCH_SESSION_ID_NOT_FOUND. Bounds the memory dead clients hold, as the slot limit
        bounds the count."""
        while self.sessions:
            oldest_id, oldest = next(iter(self.sessions.items()))
            if now_ms - oldest.last_used_ms < limits.fetch_session_idle_ms:
                break
            del self.sessions[oldest_id]
            self.evicted += 1

    def _new_id(self) -> int:
        while True:
            candidate = int.from_bytes(self.new_uuid().bytes[:4], "big") & _EPOCH_MAX
            if candidate and candidate not in self.sessions:
                return candidate

    def _incremental(self, request, resolve, session_id: int, epoch: int, now_ms: int) -> FetchContext:
        session = self.sessions.get(session_id)
        if session is None:
            return FetchContext(0, [], error=ErrorCode.fetch_session_id_not_found)
        if epoch != session.epoch:
            return FetchContext(0, [], error=ErrorCode.invalid_fetch_session_epoch)
        for key, partition in _requested(request, resolve).items():
            known = session.partitions.get(key)
            if known is None:
                session.partitions[key] = partition
            else:
                known.update(partition)
        for topic in getattr(request, "forgotten_topics_data", ()) or ():
            name, topic_id = resolve(topic)
            for index in topic.partitions:
                session.partitions.pop(_key(name, topic_id, index), None)
        session.epoch = 1 if session.epoch >= _EPOCH_MAX else session.epoch + 1
        session.last_used_ms = now_ms
        self.sessions.move_to_end(session_id)
        self.incremental_fetches += 1
        return FetchContext(session_id, list(session.partitions.values()), incremental=True, session=session)


def _requested(request, resolve) -> OrderedDict[tuple[str, int], SessionPartition]:
    wanted: OrderedDict[tuple[str, int], SessionPartition] = OrderedDict()
    for topic in request.topics:
        name, topic_id = resolve(topic)  # an unknown id stays, so the client hears UNKNOWN_TOPIC_ID
        for fp in topic.partitions:
            partition = SessionPartition(name, topic_id, fp.partition, 0, 0)
            partition.update(fp)
            wanted[_key(name, topic_id, fp.partition)] = partition
    return wanted
