"""The broker's counters: plain integers the core and the runtime bump on the hot path.

Theory of operation. Counting must cost the broker next to nothing, so nothing here formats,
locks or allocates per request: a request adds to a few ints in a list, a produce adds to the
[bytes, records] pair of its topic. Everything that can be computed from state the core
already keeps (partition counts, leaders, under-replicated partitions, log sizes, groups by
state) is not counted at all: the scrape (runtime/metrics.py) derives it from the core when
Prometheus asks, typically every 15 s. The scrape runs in the broker's own event loop, between
two requests, so it reads these ints and the core's state without locks.

Counters only ever grow (Prometheus computes rates from them); a restart begins again from 0,
which Prometheus's `rate()` understands as a counter reset.
"""

from __future__ import annotations

import bisect

# Upper bounds of the request latency histogram, in nanoseconds (Prometheus's `le`, in seconds,
# is derived at scrape time): 0.5 ms to 30 s, the range Kafka's RequestMetrics percentiles span.
LATENCY_BUCKETS_NS: tuple[int, ...] = tuple(int(s * 1e9) for s in (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))

# Layout of a request's counter list: [count, errors, latency sum ns, bucket 0, bucket 1, ...,
# +Inf bucket]. Bucket counts are not cumulative here; the scrape accumulates them.
_COUNT, _ERRORS, _SUM_NS, _FIRST_BUCKET = 0, 1, 2, 3


class BrokerMetrics:
    __slots__ = ("requests", "topic_in", "topic_out", "produce_errors", "connections_accepted",
                 "connections_closed", "rebalances", "isr_shrinks", "isr_expands")

    def __init__(self) -> None:
        # api key -> [count, errors, latency sum ns, per-bucket counts..., +Inf]
        self.requests: dict[int, list[int]] = {}
        # topic -> [bytes, records] appended by producers / returned to fetchers
        self.topic_in: dict[str, list[int]] = {}
        self.topic_out: dict[str, list[int]] = {}
        # topic -> produce partition results with an error (Kafka's FailedProduceRequestsPerSec)
        self.produce_errors: dict[str, int] = {}
        # listener name -> connections accepted / closed since start
        self.connections_accepted: dict[str, int] = {}
        self.connections_closed: dict[str, int] = {}
        self.rebalances = 0  # classic groups: generations completed (JoinGroup phases ended)
        self.isr_shrinks = 0
        self.isr_expands = 0

    def request(self, api_key: int, elapsed_ns: int, error: bool = False) -> None:
        """One request of `api_key` answered after `elapsed_ns` (error: it closed the connection
        or its response carries a top-level error code)."""
        counts = self.requests.get(api_key)
        if counts is None:
            counts = self.requests[api_key] = [0] * (_FIRST_BUCKET + len(LATENCY_BUCKETS_NS) + 1)
        counts[_COUNT] += 1
        counts[_SUM_NS] += elapsed_ns
        counts[_FIRST_BUCKET + bisect.bisect_left(LATENCY_BUCKETS_NS, elapsed_ns)] += 1
        if error:
            counts[_ERRORS] += 1

    def request_error(self, api_key: int) -> None:
        """A response of `api_key` that carries an error (counted apart from its latency)."""
        counts = self.requests.get(api_key)
        if counts is None:
            counts = self.requests[api_key] = [0] * (_FIRST_BUCKET + len(LATENCY_BUCKETS_NS) + 1)
        counts[_ERRORS] += 1

    def produced(self, topic: str, size_bytes: int, records: int) -> None:
        pair = self.topic_in.get(topic)
        if pair is None:
            pair = self.topic_in[topic] = [0, 0]
        pair[0] += size_bytes
        pair[1] += records

    def produce_failed(self, topic: str) -> None:
        self.produce_errors[topic] = self.produce_errors.get(topic, 0) + 1

    def fetched(self, topic: str, size_bytes: int, records: int) -> None:
        pair = self.topic_out.get(topic)
        if pair is None:
            pair = self.topic_out[topic] = [0, 0]
        pair[0] += size_bytes
        pair[1] += records

    def connection_opened(self, listener: str) -> None:
        self.connections_accepted[listener] = self.connections_accepted.get(listener, 0) + 1

    def connection_closed(self, listener: str) -> None:
        self.connections_closed[listener] = self.connections_closed.get(listener, 0) + 1

    # --- read by the scrape ------------------------------------------------------------
    @staticmethod
    def histogram(counts: list[int]) -> tuple[int, int, int, list[int]]:
        """(count, errors, latency sum ns, cumulative bucket counts ending with +Inf)."""
        cumulative, total = [], 0
        for n in counts[_FIRST_BUCKET:]:
            total += n
            cumulative.append(total)
        return counts[_COUNT], counts[_ERRORS], counts[_SUM_NS], cumulative
