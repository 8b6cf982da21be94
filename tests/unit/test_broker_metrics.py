"""The broker's counters (broker/metrics.py): latency buckets, per-topic pairs, and record
counts read from batch headers."""

from moldau.broker.metrics import LATENCY_BUCKETS_NS, BrokerMetrics
from moldau.records.batch import records_in
from moldau.records import Record, build_batch


def _batch(count: int, value: bytes = b"v") -> bytes:
    return build_batch([Record(i, 1_700_000_000_000 + i, None, value) for i in range(count)])


def test_records_in_counts_each_batch_from_its_header():
    payload = _batch(3) + _batch(1) + _batch(7, b"x" * 1000)
    assert records_in(payload) == 11
    assert records_in(b"") == 0


def test_records_in_skips_a_truncated_tail_batch():
    whole = _batch(4)
    assert records_in(whole + _batch(5)[:-1]) == 4
    assert records_in(whole[:60]) == 0


def test_request_latency_lands_in_the_right_bucket_and_accumulates():
    metrics = BrokerMetrics()
    metrics.request(0, 100_000)  # 0.1 ms: first bucket
    metrics.request(0, 3_000_000)  # 3 ms: the 5 ms bucket
    metrics.request(0, 60 * 10**9, error=True)  # a minute: only +Inf
    count, errors, sum_ns, cumulative = BrokerMetrics.histogram(metrics.requests[0])
    assert (count, errors, sum_ns) == (3, 1, 100_000 + 3_000_000 + 60 * 10**9)
    assert len(cumulative) == len(LATENCY_BUCKETS_NS) + 1
    five_ms = LATENCY_BUCKETS_NS.index(5_000_000)
    assert cumulative[0] == 1 and cumulative[five_ms - 1] == 1 and cumulative[five_ms] == 2
    assert cumulative[-2] == 2 and cumulative[-1] == 3


def test_a_bucket_bound_is_inclusive_as_prometheus_le():
    metrics = BrokerMetrics()
    metrics.request(3, LATENCY_BUCKETS_NS[0])
    assert BrokerMetrics.histogram(metrics.requests[3])[3][0] == 1


def test_topic_counters_add_bytes_and_records():
    metrics = BrokerMetrics()
    metrics.produced("a", 100, 2)
    metrics.produced("a", 50, 1)
    metrics.fetched("a", 150, 3)
    metrics.request_error(1)
    metrics.produce_failed("b")
    assert metrics.topic_in == {"a": [150, 3]} and metrics.topic_out == {"a": [150, 3]}
    assert metrics.requests[1][1] == 1 and metrics.produce_errors == {"b": 1}
