"""Fetch (key 1), versions 4–17: consumers (and, in the cluster, followers) read the log.

Theory of operation. Each requested partition is read from its fetch offset up to the high
watermark, whole batches only, within the partition's max bytes and what is left of the
response's max bytes; the first partition with data gets at least one batch even if it is
larger than both limits (KIP-74), so a consumer can never get stuck behind a large batch.
When the response holds fewer than min_bytes and max_wait is positive, the fetch becomes a
delayed operation watching its partitions: an append to one of them re-runs the read, and the
deadline answers with whatever is there.

Topics are named by id from v13. From v12 a consumer sends the epoch of the last batch it
fetched; if this log diverges from the consumer's at that epoch (a leader change truncated
it), the response carries `diverging_epoch` instead of records, and the consumer truncates
its position (KIP-320). From v7 a client may keep a fetch session (KIP-227,
fetch_sessions.py): it then sends only the partitions that changed and hears only about the
partitions with something new.

isolation_level read_committed (1) reads only below the last stable offset (LSO: no open
transaction, no marker above the high watermark) and gets the aborted transactions that
overlap the records returned (from the segments' .txnindex files), so the client can drop
their records; read_uncommitted (0) reads up to the high watermark and gets none. Every
response carries the LSO; a consumer waiting on a commit is answered when a marker moves it.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.broker import apis
from moldau.broker.fetch_sessions import FetchContext, FetchSessionCache, SessionPartition, changed
from moldau.protocol.hot import encode_fetch_response
from moldau.log import FileRegion
from moldau.records import RecordsError
from moldau.records.batch import BATCH_LENGTH_MIN, LOG_OVERHEAD, parse_header, read_prefix, records_in
from moldau.replication.partition import PartitionError
from moldau.broker.apis import throttled_response
from moldau.security import acls as a
from moldau.security.quotas import CONSUMER_BYTE_RATE

_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
READ_COMMITTED = 1  # isolation_level: 0 read_uncommitted (everything below the HW)


@apis.api(1, 4, 17)
def handle(core, ctx: apis.RequestContext, request):
    if _is_metadata_fetch(request):
        return core.raft_request(ctx, request)  # the metadata quorum's own replication (raft/)
    sessions = core.extensions.get("fetch_sessions")
    if sessions is None:
        sessions = core.extensions["fetch_sessions"] = FetchSessionCache(core.new_uuid)
    fetch = sessions.context(request, ctx.version, lambda topic: _resolve(core, topic), ctx.now_ms)
    if fetch.error != ErrorCode.none:
        response = {"throttle_time": 0, "error_code": fetch.error, "session_id": 0, "responses": []}
        return encode_fetch_response(ctx.header.correlation_id, ctx.version, response)
    max_wait_ms = min(int(request.max_wait.total_seconds() * 1000), limits.fetch_wait_ms_max)
    denied = _denied_topics(core, ctx, request, fetch)
    replica = _replica(request)
    if replica is not None and not denied:
        _record_follower_fetch(core, fetch, replica, ctx.now_ms)

    def read() -> tuple[dict, int, bool]:
        response, size, has_error, carried = _read_all(core, request, fetch, denied, replica is not None)
        # A session remembers what each response it sends told its client; a long-poll reads
        # several times and sends once.
        pending[:] = carried
        return response, size, has_error

    def sent(response: dict, size: int, may_delay: bool = True):
        # consumer_byte_rate quotas: a response that would take the client over its quota is
        # sent empty, with the throttle time, and not counted (Kafka's behaviour).
        consumer = replica is None  # replication is not a consumer's quota, nor its bytes out
        throttle_ms = core.throttle(ctx, CONSUMER_BYTE_RATE, size, record=False) if size and consumer else 0
        if throttle_ms:
            core.mute(ctx.connection_id, ctx.now_ms + throttle_ms)
            response = {**response, "throttle_time": throttle_ms, "responses": []}
            pending.clear()
        elif consumer:
            core.throttle(ctx, CONSUMER_BYTE_RATE, size)
        if fetch.session_id:
            fetch.sent(pending)
        if consumer:
            count_sent(core.metrics, pending)
        # The hot path: a struct encoder, byte-for-byte what kio writes (tests/protocol/test_hot.py).
        frame = encode_fetch_response(ctx.header.correlation_id, ctx.version, response)
        # (a long-poll that ends throttled is not held back again: it waited already)
        return throttled_response(ctx, frame, throttle_ms if may_delay else 0, client_throttles_from_version=8)

    pending: list = []
    response, size, has_error = read()
    if max_wait_ms <= 0 or size >= request.min_bytes or has_error or size >= request.max_bytes:
        return sent(response, size)

    def try_complete(now_ms: int):
        response, size, has_error = read()
        if size >= request.min_bytes or has_error:
            return core.finish(ctx, sent(response, size, may_delay=False))
        return None

    def on_expire(now_ms: int):
        response, size, _ = read()
        return core.finish(ctx, sent(response, size, may_delay=False))

    keys = tuple(sorted({(p.topic, p.partition) for p in fetch.partitions if p.topic is not None}))
    delayed = apis.Delayed(ctx.now_ms + max_wait_ms, try_complete, on_expire, keys)
    core.watch(delayed)
    return delayed


def count_sent(metrics, carried: list) -> None:
    """Bytes and records out per topic, for the response actually sent (a long-poll reads
    several times, sends once)."""
    for partition, data in carried:
        records = data["records"]
        if records:
            count = records.record_count() if isinstance(records, FileRegion) else records_in(records)
            metrics.fetched(partition.topic, len(records), count)


def _denied_topics(core, ctx, request, fetch: FetchContext) -> set[str]:
    """Topics this fetch may not read (Kafka's table): READ on each topic for consumers;
    CLUSTER_ACTION on the cluster for followers (replica id ≥ 0), else every topic."""
    replica_state = getattr(request, "replica_state", None)
    replica_id = replica_state.replica_id if replica_state is not None else getattr(request, "replica_id", -1)
    names = sorted({p.topic for p in fetch.partitions if p.topic is not None})
    if replica_id >= 0:
        return set() if core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME) else set(names)
    return {name for name in names if not core.authorize(ctx, a.READ, a.TOPIC, name)}


def _resolve(core, topic) -> tuple[str | None, str | None]:
    return core.image.resolve(getattr(topic, "topic", None), getattr(topic, "topic_id", None))


METADATA_TOPIC_ID = "00000000-0000-0000-0000-000000000001"  # Kafka's Uuid.METADATA_TOPIC_ID
METADATA_TOPIC = "__cluster_metadata"


def _is_metadata_fetch(request) -> bool:
    topics = request.topics
    if not topics:
        return False
    first = topics[0]
    return getattr(first, "topic", None) == METADATA_TOPIC or str(getattr(first, "topic_id", "")) == METADATA_TOPIC_ID


def _replica(request) -> tuple[int, int] | None:
    """(broker id, broker epoch) of a follower's fetch; None for a consumer's."""
    state = getattr(request, "replica_state", None)
    replica_id = state.replica_id if state is not None else getattr(request, "replica_id", -1)
    if replica_id is None or replica_id < 0:
        return None
    return replica_id, (state.replica_epoch if state is not None else -1)


def _record_follower_fetch(core, fetch: FetchContext, replica: tuple[int, int], now_ms: int) -> None:
    """A follower's fetch offset is how far it has replicated (leader side of
    replication/partition.py): the high watermark may move, which completes waiting acks=all
    produces and consumer fetches, and a follower that caught up may join the ISR."""
    broker_id, broker_epoch = replica
    for fp in fetch.partitions:
        if fp.topic is None:
            continue
        partition = core.partitions.get((fp.topic, fp.partition))
        if partition is None or not partition.is_leader or broker_id not in partition.replicas:
            continue
        if getattr(fp, "current_leader_epoch", -1) not in (-1, partition.leader_epoch):
            continue
        if _diverging_epoch(partition, fp) is not None:
            continue  # it must truncate first: its fetch offset says nothing yet
        if partition.update_follower(broker_id, fp.fetch_offset, broker_epoch, now_ms):
            core.partition_appended(partition.key, now_ms)
        core.isr.check_expand(partition, now_ms)


def _read_all(core, request, fetch: FetchContext, denied: set[str], replica: bool = False) -> tuple[dict, int, bool, list]:
    """The response for `fetch`'s partitions (in an incremental fetch only the changed ones),
    its records' size, whether a partition has an error, and (partition, result) per partition
    it carries."""
    remaining = request.max_bytes
    total = 0
    has_error = False
    by_topic: dict[tuple, dict] = {}
    order: list[dict] = []
    carried: list[tuple[SessionPartition, dict]] = []
    for partition in fetch.partitions:
        if partition.topic in denied:
            data = _denied(partition)
        else:
            data = _read_partition(core, request, partition.topic, partition.topic_id, partition, remaining,
                                   total == 0, replica)
        if fetch.incremental and not changed(partition, data):
            continue
        key = (partition.topic, partition.topic_id)
        entry = by_topic.get(key)
        if entry is None:
            entry = {"topic": partition.topic or "", "topic_id": partition.topic_id or _ZERO_UUID, "partitions": []}
            by_topic[key] = entry
            order.append(entry)
        size = len(data["records"]) if data["records"] else 0
        total += size
        remaining = max(0, remaining - size)
        has_error = has_error or data["error_code"] != ErrorCode.none
        entry["partitions"].append(data)
        carried.append((partition, data))
    response = {"throttle_time": 0, "error_code": 0, "session_id": fetch.session_id, "responses": order}
    return response, total, has_error, carried


def _denied(fp) -> dict:
    return {"partition_index": fp.partition, "error_code": ErrorCode.topic_authorization_failed, "high_watermark": -1,
            "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
            "preferred_read_replica": -1, "records": b""}


def _read_partition(core, request, name, topic_id, fp, remaining: int, first: bool, replica: bool = False) -> dict:
    result = {"partition_index": fp.partition, "error_code": ErrorCode.none, "high_watermark": -1,
              "last_stable_offset": -1, "log_start_offset": -1, "aborted_transactions": None,
              "preferred_read_replica": -1, "records": b""}
    if name is None:
        result["error_code"] = ErrorCode.unknown_topic_id if topic_id not in (None, _ZERO_UUID) else ErrorCode.unknown_topic_or_partition
        return result
    try:
        partition = core.leader_partition(name, fp.partition, getattr(fp, "current_leader_epoch", -1))
    except PartitionError as error:
        result["error_code"] = error.error_code
        known = core.partition(name, fp.partition)
        if known is not None:  # tell the client who leads (KIP-951)
            result["current_leader"] = {"leader_id": known.leader, "leader_epoch": known.leader_epoch}
        return result
    high_watermark = partition.high_watermark
    last_stable_offset = partition.last_stable_offset
    result.update(high_watermark=high_watermark, last_stable_offset=last_stable_offset,
                  log_start_offset=partition.log_start_offset)
    diverging = _diverging_epoch(partition, fp)
    if diverging is not None:
        result["diverging_epoch"] = diverging
        return result
    if fp.fetch_offset < partition.log_start_offset or fp.fetch_offset > partition.log_end_offset:
        result["error_code"] = ErrorCode.offset_out_of_range
        return result
    max_bytes = min(fp.partition_max_bytes, remaining)
    # Consumers read below the high watermark (read_committed: the last stable offset);
    # followers read everything, to replicate it.
    read_committed = not replica and request.isolation_level == READ_COMMITTED
    if replica:
        limit = partition.log_end_offset
    else:
        limit = last_stable_offset if read_committed else high_watermark
    if fp.fetch_offset < limit and (max_bytes > 0 or first):
        try:
            # A file region, not its bytes: the runtime sends it from the segment file
            # (runtime/transmit.py), or reads it where it cannot.
            result["records"] = partition.log.read(fp.fetch_offset, max_bytes, limit, first).region or b""
        except RecordsError as error:  # a damaged batch: CORRUPT_MESSAGE, never an endless empty read
            result["error_code"] = error.error_code
            return result
    if read_committed:
        result["aborted_transactions"] = _aborted_transactions(partition.log, fp.fetch_offset, result["records"])
    return result


def _aborted_transactions(log, fetch_offset: int, records) -> list[dict]:
    """The aborted transactions a read_committed consumer needs to filter `records`: those
    overlapping [fetch_offset, the offset after the last batch returned) (Kafka's bound)."""
    if not records:
        return []
    if isinstance(records, FileRegion):
        if records.next_offset >= 0:  # the read knew where it ended
            return _aborted_below(log, fetch_offset, records.next_offset)
        records = records.read_bytes()
    upper_bound = fetch_offset
    position = 0
    while len(records) - position >= LOG_OVERHEAD:
        base_offset, batch_length = read_prefix(records, position)
        if position + LOG_OVERHEAD + batch_length > len(records) or batch_length < BATCH_LENGTH_MIN:
            break
        upper_bound = base_offset + parse_header(records, position).last_offset_delta + 1
        position += LOG_OVERHEAD + batch_length
    return _aborted_below(log, fetch_offset, upper_bound)


def _aborted_below(log, fetch_offset: int, upper_bound: int) -> list[dict]:
    return [{"producer_id": txn.producer_id, "first_offset": txn.first_offset}
            for txn in log.collect_aborted_transactions(fetch_offset, upper_bound)]


def _diverging_epoch(partition, fp) -> dict | None:
    last_fetched_epoch = getattr(fp, "last_fetched_epoch", -1)
    if last_fetched_epoch < 0:
        return None
    epoch, end_offset = partition.log.end_offset_for_epoch(last_fetched_epoch)
    if epoch < 0:  # no epoch at or below the consumer's: nothing to compare against
        return None
    if epoch != last_fetched_epoch or end_offset < fp.fetch_offset:
        return {"epoch": epoch, "end_offset": end_offset}
    return None
