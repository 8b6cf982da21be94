"""moldau.perf's bookkeeping and `moldau perf`'s flags: no broker needed."""

from __future__ import annotations

import re
from array import array

import pytest

from moldau.cli.main import build_parser
from moldau.perf.produce import Deliveries, make_payload
from moldau.perf.stats import MB, ConsumeSummary, LatencyLog, ProduceSummary, WindowStats, percentiles_ms

# kafka-producer-perf-test's final line, with our two-decimal percentiles.
KAFKA_FINAL = re.compile(
    r"^\d+ records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max latency, "
    r"[\d.]+ ms 50th, [\d.]+ ms 95th, [\d.]+ ms 99th, [\d.]+ ms 99.9th\.$")


def test_percentiles_are_nearest_rank_as_in_kafka():
    latencies = [i / 1000.0 for i in range(1, 1001)]  # 1 ms … 1000 ms
    p50, p95, p99, p999 = percentiles_ms(latencies)
    # Kafka: sorted[(int)(count * p)] → index 500 is the 501st value.
    assert (p50, p95, p99, p999) == pytest.approx((501.0, 951.0, 991.0, 1000.0))


def test_percentiles_of_nothing_and_of_one():
    assert percentiles_ms([]) == [0.0, 0.0, 0.0, 0.0]
    assert percentiles_ms([0.002]) == pytest.approx([2.0, 2.0, 2.0, 2.0])


def test_windows_cover_each_latency_once():
    log = LatencyLog()
    log.latencies_s.extend([0.001, 0.003])
    assert log.take_window() == WindowStats(2, pytest.approx(2.0), pytest.approx(3.0))
    log.latencies_s.append(0.010)
    assert log.take_window() == WindowStats(1, pytest.approx(10.0), pytest.approx(10.0))
    assert log.take_window() == WindowStats(0, 0.0, 0.0)


def test_produce_summary_rates_and_kafka_line():
    summary = ProduceSummary.of(array("d", [0.001] * 1000), record_size=100, elapsed_s=0.5)
    assert summary.records == 1000
    assert summary.records_per_sec == pytest.approx(2000.0)
    assert summary.mb_per_sec == pytest.approx(2000.0 * 100 / MB)
    assert KAFKA_FINAL.match(summary.line()), summary.line()
    assert summary.as_json()["p99_ms"] == pytest.approx(1.0)


def test_delivery_callback_counts_acks_and_failures():
    class Message:
        def latency(self):
            return 0.004

    class Error:
        def str(self):
            return "Broker: Not leader for partition"

    deliveries = Deliveries(LatencyLog())
    callback = deliveries.callback()
    callback(None, Message())
    callback(Error(), Message())
    callback(Error(), Message())
    assert deliveries.acknowledged == 1
    assert deliveries.errors == 2
    assert deliveries.first_error == "Broker: Not leader for partition"


def test_consume_summary_rates_over_run_and_fetch_time():
    summary = ConsumeSummary(start_ms=1_000, end_ms=3_000, messages=1_000_000, bytes=100 * 1_000_000,
                             rebalance_ms=1000.0, fetch_ms=1000.0)
    out = summary.as_json()
    assert out["messages_per_sec"] == pytest.approx(500_000.0)
    assert out["fetch_messages_per_sec"] == pytest.approx(1_000_000.0)
    row = summary.row(lambda ms: str(ms))
    assert row.split(", ")[4] == "1000000"
    assert len(row.split(", ")) == len(ConsumeSummary.HEADER.split(", "))


def test_payload_is_preallocated_uppercase_of_the_asked_size():
    payload = make_payload(100)
    assert len(payload) == 100 and payload.isupper() and payload.isalpha()
    assert make_payload(100) == payload  # deterministic: the same bytes every run


def test_perf_flags_parse_with_kafka_spellings():
    args = build_parser().parse_args([
        "perf", "produce", "--topic", "t", "--num-records", "10", "--record-size", "100", "--throughput", "-1",
        "--producer-props", "acks=1", "linger.ms=5", "--producer-prop", "batch.size=16384",
        "--bootstrap-server", "127.0.0.1:1"])
    assert args.producer_props == ["acks=1", "linger.ms=5", "batch.size=16384"]
    assert args.throughput == -1 and args.num_records == 10
    args = build_parser().parse_args(["perf", "consume", "--topic", "t", "--messages", "5", "--group", "g"])
    assert (args.messages, args.group, args.timeout) == (5, "g", 10000)


def test_perf_rejects_non_positive_counts(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["perf", "produce", "--topic", "t", "--num-records", "0", "--record-size", "1"])


def test_unreachable_broker_is_one_line(capsys):
    from moldau.cli.main import main

    code = main(["perf", "produce", "--bootstrap-server", "127.0.0.1:1", "--topic", "t", "--num-records", "1",
                 "--record-size", "10"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach 127.0.0.1:1" in err
