"""Follower fetching: each follower partition fetches from its leader (Kafka's ReplicaFetcher).

Theory of operation. The broker follows a partition when the metadata image names another
broker as its leader and this one as a replica. Followed partitions are grouped by leader;
each leader gets one `LeaderFetcher`, which keeps at most one Fetch request in flight (sent
with `core.send`, answered through its callback) naming every partition it follows there:
fetch offset = the local log end, `last_fetched_epoch` = the epoch of the local log's last
batch, `current_leader_epoch` = the epoch the image says. For each partition in the answer:

- records: appended as they came (offsets and epochs are the leader's), then the follower's
  high watermark and log start offset move up to the leader's;
- `diverging_epoch`: the local log went past the point where it agrees with the leader's
  (a former leader's unreplicated tail, KIP-320) — truncate to the smaller of the leader's end
  offset for that epoch and our own, and fetch again from there;
- OFFSET_OUT_OF_RANGE: the leader's log starts after our end (retention) — start over at the
  leader's log start; or our log is longer than the leader's high watermark allows — truncate
  to it;
- a leadership error (NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH, unknown topic):
  the partition waits until the metadata image changes it (or a backoff passes);
- a failed request (connection lost, timeout): the whole fetcher backs off
  (replica.fetch.backoff.ms) and tries again.
The next request goes out as soon as the previous answer is handled; the leader holds an
empty fetch for replica.fetch.wait.max.ms, so an idle follower sends about two per second.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v17 import request as fetch_request

from moldau.log.partition_log import LogError
from moldau.protocol.rpc import BROKER, OutboundRequest
from moldau.raft import faults
from moldau.records import RecordsError

log = logging.getLogger("moldau.replication")

FETCH_VERSION = 17
_LEADERSHIP_ERRORS = {ErrorCode.not_leader_or_follower, ErrorCode.fenced_leader_epoch, ErrorCode.unknown_leader_epoch,
                      ErrorCode.unknown_topic_or_partition, ErrorCode.unknown_topic_id, ErrorCode.kafka_storage_error,
                      ErrorCode.replica_not_available}


@dataclass
class FetcherConfig:
    wait_max_ms: int = 500  # replica.fetch.wait.max.ms
    min_bytes: int = 1  # replica.fetch.min.bytes
    max_bytes: int = 1_048_576  # replica.fetch.max.bytes (per partition)
    response_max_bytes: int = 10_485_760  # replica.fetch.response.max.bytes
    backoff_ms: int = 1000  # replica.fetch.backoff.ms
    request_timeout_ms: int = 30_000


@dataclass
class FollowedPartition:
    key: tuple[str, int]
    leader_epoch: int
    paused_until_ms: int = 0  # waiting for metadata after a leadership error


class LeaderFetcher:
    def __init__(self, manager: "ReplicaFetcherManager", leader_id: int):
        self.manager = manager
        self.leader_id = leader_id
        self.partitions: dict[tuple[str, int], FollowedPartition] = {}
        self.in_flight = False
        self.backoff_until_ms = 0

    def request(self, now_ms: int) -> Any | None:
        core = self.manager.core
        topics: dict[str, list] = {}
        for key in sorted(self.partitions):
            followed = self.partitions[key]
            partition = core.partitions.get(key)
            if partition is None or followed.paused_until_ms > now_ms:
                continue
            plog = partition.log
            topics.setdefault(partition.topic_id, []).append(fetch_request.FetchPartition(
                partition=key[1], current_leader_epoch=followed.leader_epoch, fetch_offset=plog.log_end_offset,
                last_fetched_epoch=plog.latest_epoch, log_start_offset=plog.log_start_offset,
                partition_max_bytes=self.manager.config.max_bytes))
        if not topics:
            return None
        config = self.manager.config
        return fetch_request.FetchRequest(
            cluster_id=None,
            replica_state=fetch_request.ReplicaState(replica_id=core.node_id, replica_epoch=core.broker_epoch),
            max_wait=_timedelta(config.wait_max_ms), min_bytes=config.min_bytes, max_bytes=config.response_max_bytes,
            isolation_level=0, session_id=0, session_epoch=-1,
            topics=tuple(fetch_request.FetchTopic(topic_id=uuid.UUID(topic_id), partitions=tuple(parts))
                         for topic_id, parts in sorted(topics.items())),
            forgotten_topics_data=(), rack_id="")

    def on_response(self, response: Any, now_ms: int) -> None:
        self.in_flight = False
        if response is None or response.error_code != ErrorCode.none:
            self.backoff_until_ms = now_ms + self.manager.config.backoff_ms
            return
        core = self.manager.core
        for topic in response.responses:
            topic_image = core.image.topics_by_id.get(str(topic.topic_id))
            if topic_image is None:
                continue
            for data in topic.partitions:
                key = (topic_image.name, data.partition_index)
                if key in self.partitions:
                    self._handle_partition(key, data, now_ms)


    def _handle_partition(self, key: tuple[str, int], data: Any, now_ms: int) -> None:
        core = self.manager.core
        partition = core.partitions.get(key)
        followed = self.partitions[key]
        if partition is None:
            return
        code = data.error_code
        try:
            if code == ErrorCode.none:
                self._apply(partition, data, now_ms)
            elif code == ErrorCode.offset_out_of_range:
                self._out_of_range(partition, data)
            else:
                if code not in _LEADERSHIP_ERRORS:
                    log.warning("Fetching %s-%d from broker %d failed: %s", key[0], key[1], self.leader_id, code.name)
                followed.paused_until_ms = now_ms + self.manager.config.backoff_ms
        except (LogError, RecordsError, OSError) as error:
            log.warning("Cannot replicate %s-%d from broker %d: %s; truncating to the high watermark and retrying",
                        key[0], key[1], self.leader_id, error)
            partition.log.truncate_to(max(partition.high_watermark, partition.log.log_start_offset))
            followed.paused_until_ms = now_ms + self.manager.config.backoff_ms

    def _apply(self, partition: Any, data: Any, now_ms: int) -> None:
        plog = partition.log
        diverging = data.diverging_epoch
        if diverging is not None and diverging.epoch >= 0 and diverging.end_offset >= 0 \
                and not faults.active("follower-skips-truncation"):
            self._truncate_diverged(partition, diverging.epoch, diverging.end_offset)
            return
        records = data.records
        if records:
            plog.append_as_follower(records, now_ms)
        partition.follower_high_watermark(data.high_watermark)
        if data.log_start_offset > plog.log_start_offset:
            plog.delete_records_before(min(data.log_start_offset, partition.high_watermark, plog.log_end_offset))
        if records:
            self.manager.core.partition_appended(partition.key, now_ms)

    def _truncate_diverged(self, partition: Any, epoch: int, end_offset: int) -> None:
        plog = partition.log
        local_epoch, local_end = plog.end_offset_for_epoch(epoch)
        target = min(end_offset, local_end) if local_epoch >= 0 else plog.log_start_offset
        target = max(target, plog.log_start_offset)
        log.info("Truncating %s-%d from %d to %d: it diverged from leader %d at epoch %d",
                 partition.topic, partition.index, plog.log_end_offset, target, self.leader_id, epoch)
        plog.truncate_to(target)
        partition.truncate_high_watermark_to_log()

    def _out_of_range(self, partition: Any, data: Any) -> None:
        plog = partition.log
        if data.log_start_offset > plog.log_end_offset:
            log.info("%s-%d starts at %d on leader %d, after this replica's end %d: starting over there",
                     partition.topic, partition.index, data.log_start_offset, self.leader_id, plog.log_end_offset)
            plog.truncate_fully_and_start_at(data.log_start_offset)
            partition.high_watermark = data.log_start_offset
        elif data.high_watermark >= 0:
            plog.truncate_to(max(data.high_watermark, plog.log_start_offset))
            partition.truncate_high_watermark_to_log()


class ReplicaFetcherManager:
    def __init__(self, core: Any, config: FetcherConfig | None = None):
        self.core = core
        self.config = config or FetcherConfig()
        self.fetchers: dict[int, LeaderFetcher] = {}

    def follow(self, key: tuple[str, int], leader_id: int, leader_epoch: int) -> None:
        """Fetch `key` from `leader_id` at `leader_epoch` (replacing any earlier leader)."""
        self.unfollow(key)
        fetcher = self.fetchers.get(leader_id)
        if fetcher is None:
            fetcher = self.fetchers[leader_id] = LeaderFetcher(self, leader_id)
        fetcher.partitions[key] = FollowedPartition(key, leader_epoch)

    def unfollow(self, key: tuple[str, int]) -> None:
        for leader_id in sorted(self.fetchers):
            fetcher = self.fetchers[leader_id]
            fetcher.partitions.pop(key, None)
            if not fetcher.partitions and not fetcher.in_flight:
                del self.fetchers[leader_id]

    def poll(self, now_ms: int) -> None:
        """Send a fetch for every leader with nothing in flight and something to fetch."""
        for leader_id in sorted(self.fetchers):
            fetcher = self.fetchers[leader_id]
            if fetcher.in_flight or fetcher.backoff_until_ms > now_ms:
                continue
            body = fetcher.request(now_ms)
            if body is None:
                continue
            fetcher.in_flight = True
            self.core.send(OutboundRequest(leader_id, BROKER, 1, FETCH_VERSION, body,
                                           self.config.wait_max_ms + self.config.request_timeout_ms,
                                           fetcher.on_response))

    def next_deadline_ms(self) -> int | None:
        deadlines = []
        for leader_id in sorted(self.fetchers):
            fetcher = self.fetchers[leader_id]
            if fetcher.in_flight:
                continue
            if fetcher.backoff_until_ms:
                deadlines.append(fetcher.backoff_until_ms)
            paused = [f.paused_until_ms for f in fetcher.partitions.values() if f.paused_until_ms]
            if paused:
                deadlines.append(min(paused))
        return min(deadlines) if deadlines else None

    def run_deadlines(self, now_ms: int) -> None:
        for fetcher in self.fetchers.values():
            if fetcher.backoff_until_ms <= now_ms:
                fetcher.backoff_until_ms = 0
            for followed in fetcher.partitions.values():
                if followed.paused_until_ms <= now_ms:
                    followed.paused_until_ms = 0
        self.poll(now_ms)


def _timedelta(ms: int):
    import datetime

    return datetime.timedelta(milliseconds=ms)
