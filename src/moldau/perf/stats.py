"""Latency and throughput bookkeeping for `moldau perf`, shaped like Kafka's perf tools.

Theory of operation. The hot path only appends: a delivery callback pushes one latency (seconds,
as librdkafka measured it from produce() to acknowledgement) onto an `array('d')`, which is a C
append with no per-record object kept. Everything else (window averages, maxima, percentiles) is
computed from slices of that array when a progress line or the summary is printed, every few
seconds — never per record.

Percentiles use the nearest-rank rule Kafka's ProducerPerformance uses
(`sorted[int(p * count)]`), over every latency rather than Kafka's sample of 500,000.

Invariant: `Window` never reads past what was appended, so a callback arriving while a line is
being printed lands in the next window.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

MB = 1024 * 1024  # Kafka's perf tools report MB/sec as bytes / 1024 / 1024.
PERCENTILES = (0.5, 0.95, 0.99, 0.999)


def percentiles_ms(latencies_s, points=PERCENTILES) -> list[float]:
    """Nearest-rank percentiles in milliseconds (Kafka's rule); zeros when there is nothing."""
    if not latencies_s:
        return [0.0 for _ in points]
    ordered = sorted(latencies_s)
    last = len(ordered) - 1
    return [ordered[min(last, int(point * len(ordered)))] * 1000.0 for point in points]


@dataclass
class LatencyLog:
    """Every acknowledged record's latency in seconds, and where the last window ended."""

    latencies_s: array = field(default_factory=lambda: array("d"))
    window_start: int = 0

    def take_window(self) -> "WindowStats":
        end = len(self.latencies_s)
        window = self.latencies_s[self.window_start:end]
        self.window_start = end
        return WindowStats.of(window)


@dataclass(frozen=True)
class WindowStats:
    count: int
    avg_ms: float
    max_ms: float

    @staticmethod
    def of(latencies_s) -> "WindowStats":
        if not latencies_s:
            return WindowStats(0, 0.0, 0.0)
        return WindowStats(len(latencies_s), 1000.0 * sum(latencies_s) / len(latencies_s), 1000.0 * max(latencies_s))


@dataclass(frozen=True)
class ProduceSummary:
    """The final line of kafka-producer-perf-test, plus what the harness needs."""

    records: int
    record_size: int
    elapsed_s: float
    avg_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p999_ms: float
    errors: int = 0
    cpu_s: float = 0.0

    @property
    def records_per_sec(self) -> float:
        return self.records / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def mb_per_sec(self) -> float:
        return self.records_per_sec * self.record_size / MB

    @staticmethod
    def of(latencies_s, record_size: int, elapsed_s: float, errors: int = 0, cpu_s: float = 0.0) -> "ProduceSummary":
        window = WindowStats.of(latencies_s)
        p50, p95, p99, p999 = percentiles_ms(latencies_s)
        return ProduceSummary(window.count, record_size, elapsed_s, window.avg_ms, window.max_ms,
                              p50, p95, p99, p999, errors, cpu_s)

    def line(self) -> str:
        return (f"{self.records} records sent, {self.records_per_sec:.1f} records/sec "
                f"({self.mb_per_sec:.2f} MB/sec), {self.avg_ms:.2f} ms avg latency, {self.max_ms:.2f} ms max latency, "
                f"{self.p50_ms:.2f} ms 50th, {self.p95_ms:.2f} ms 95th, {self.p99_ms:.2f} ms 99th, "
                f"{self.p999_ms:.2f} ms 99.9th.")

    def as_json(self) -> dict:
        return {
            "records": self.records, "record_size": self.record_size, "elapsed_s": round(self.elapsed_s, 6),
            "records_per_sec": round(self.records_per_sec, 1), "mb_per_sec": round(self.mb_per_sec, 3),
            "avg_latency_ms": round(self.avg_ms, 3), "max_latency_ms": round(self.max_ms, 3),
            "p50_ms": round(self.p50_ms, 3), "p95_ms": round(self.p95_ms, 3), "p99_ms": round(self.p99_ms, 3),
            "p999_ms": round(self.p999_ms, 3), "errors": self.errors, "client_cpu_s": round(self.cpu_s, 3),
        }


def window_line(records: int, elapsed_s: float, record_size: int, window: WindowStats) -> str:
    """kafka-producer-perf-test's progress line for one reporting window."""
    rate = records / elapsed_s if elapsed_s > 0 else 0.0
    return (f"{records} records sent, {rate:.1f} records/sec ({rate * record_size / MB:.2f} MB/sec), "
            f"{window.avg_ms:.1f} ms avg latency, {window.max_ms:.1f} ms max latency.")


@dataclass(frozen=True)
class ConsumeSummary:
    """kafka-consumer-perf-test's result row: totals, and rates over the fetch time."""

    start_ms: int
    end_ms: int
    messages: int
    bytes: int
    rebalance_ms: float
    fetch_ms: float
    cpu_s: float = 0.0

    @property
    def elapsed_s(self) -> float:
        return max(self.end_ms - self.start_ms, 1) / 1000.0

    @property
    def mb(self) -> float:
        return self.bytes / MB

    def rates(self, seconds: float) -> tuple[float, float]:
        seconds = max(seconds, 1e-9)
        return self.mb / seconds, self.messages / seconds

    HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
              "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")

    def row(self, date_format) -> str:
        mb_sec, msg_sec = self.rates(self.elapsed_s)
        fetch_mb_sec, fetch_msg_sec = self.rates(self.fetch_ms / 1000.0)
        return (f"{date_format(self.start_ms)}, {date_format(self.end_ms)}, {self.mb:.4f}, {mb_sec:.4f}, "
                f"{self.messages}, {msg_sec:.4f}, {self.rebalance_ms:.0f}, {self.fetch_ms:.0f}, "
                f"{fetch_mb_sec:.4f}, {fetch_msg_sec:.4f}")

    def as_json(self) -> dict:
        mb_sec, msg_sec = self.rates(self.elapsed_s)
        fetch_mb_sec, fetch_msg_sec = self.rates(self.fetch_ms / 1000.0)
        return {
            "messages": self.messages, "bytes": self.bytes, "elapsed_s": round(self.elapsed_s, 6),
            "mb_per_sec": round(mb_sec, 3), "messages_per_sec": round(msg_sec, 1),
            "rebalance_ms": round(self.rebalance_ms, 1), "fetch_ms": round(self.fetch_ms, 1),
            "fetch_mb_per_sec": round(fetch_mb_sec, 3), "fetch_messages_per_sec": round(fetch_msg_sec, 1),
            "client_cpu_s": round(self.cpu_s, 3),
        }
