"""Load generators as subprocesses: `moldau perf` (librdkafka) and Kafka's Java perf tools.

Each function runs one generator to completion against a bootstrap address and returns a flat
dict of numbers with the same keys for both generators (records_per_sec, mb_per_sec, p50_ms, …),
so the report can put them side by side. Generators run in their own processes, never in the
harness, so the harness's Python does not compete with them for the GIL.

The Java tools get the JVM flags Kafka's scripts give them (-Xmx512m, G1) and full JIT
compilation — kafka_dist's tool default (C1 only, for quick CLI calls) would slow them down.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from moldau.testing.kafka_dist import kafka_tool
from bench.security import SECURITY

SRC = str(Path(__file__).resolve().parents[2] / "src")
JAVA_TOOL_JVM_OPTS = ("-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
TIMEOUT_S = 600.0


class GeneratorFailed(RuntimeError):
    pass


def _moldau_perf(args: list[str], timeout_s: float = TIMEOUT_S) -> dict:
    env = dict(os.environ, PYTHONPATH=SRC + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    command = [sys.executable, "-m", "moldau", "perf", *args, "--output", "json"]
    if SECURITY.enabled and "test.mock.num.brokers=1" not in args:
        command += ["--command-config", SECURITY.client_file]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise GeneratorFailed(f"moldau perf {args[0]} timed out after {timeout_s:g}s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise GeneratorFailed(f"moldau perf {args[0]} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def _props(props: dict) -> list[str]:
    return [f"{key}={value}" for key, value in props.items()]


def librdkafka_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, throughput: float = -1) -> dict:
    result = _moldau_perf(["produce", "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
                           "--record-size", str(size), "--throughput", str(throughput),
                           "--producer-prop", *_props(props)])
    return {key: result[key] for key in ("records_per_sec", "mb_per_sec", "avg_latency_ms", "max_latency_ms",
                                         "p50_ms", "p95_ms", "p99_ms", "p999_ms", "client_cpu_s")}


def librdkafka_produce_mock(records: int, size: int, props: dict) -> dict:
    """The client's own ceiling: `moldau perf produce` against librdkafka's in-process mock cluster
    (test.mock.num.brokers=1), so no broker process and no real socket is involved."""
    result = _moldau_perf(["produce", "--topic", "mock", "--num-records", str(records), "--record-size", str(size),
                           "--producer-prop", "test.mock.num.brokers=1", *_props(props)])
    return {key: result[key] for key in ("records_per_sec", "mb_per_sec", "client_cpu_s")}


def librdkafka_consume(bootstrap: str, topic: str, messages: int) -> dict:
    result = _moldau_perf(["consume", "--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(messages)])
    return {"records_per_sec": result["messages_per_sec"], "mb_per_sec": result["mb_per_sec"],
            "fetch_records_per_sec": result["fetch_messages_per_sec"], "client_cpu_s": result["client_cpu_s"]}


def librdkafka_end_to_end(bootstrap: str, topic: str, records: int, size: int, rate: float, props: dict) -> dict:
    result = _moldau_perf(["end-to-end", "--bootstrap-server", bootstrap, "--topic", topic,
                           "--num-records", str(records), "--record-size", str(size), "--throughput", str(rate),
                           "--producer-prop", *_props(props)])
    return {key: result[key] for key in ("p50_ms", "p99_ms", "p999_ms", "avg_latency_ms", "max_latency_ms")}


_PRODUCER_FINAL = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, "
    r"(\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th")


def java_produce(bootstrap: str, topic: str, records: int, size: int, props: dict, throughput: float = -1) -> dict:
    args = ["--topic", topic, "--num-records", str(records), "--record-size", str(size),
            "--throughput", str(int(throughput)), "--producer-props", f"bootstrap.servers={bootstrap}", *_props(props)]
    if SECURITY.enabled:
        args += ["--producer.config", SECURITY.client_file]
    done = kafka_tool("org.apache.kafka.tools.ProducerPerformance", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    match = _PRODUCER_FINAL.search(done.stdout or "")
    if done.returncode != 0 or not match:
        raise GeneratorFailed(f"ProducerPerformance exited {done.returncode}: {_tail(done)}")
    values = [float(group) for group in match.groups()]
    return {"records_per_sec": values[1], "mb_per_sec": values[2], "avg_latency_ms": values[3],
            "max_latency_ms": values[4], "p50_ms": values[5], "p95_ms": values[6], "p99_ms": values[7],
            "p999_ms": values[8]}


def java_consume(bootstrap: str, topic: str, messages: int, group: str) -> dict:
    args = ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(messages), "--group", group,
            "--timeout", "20000"]
    if SECURITY.enabled:
        args += ["--consumer.config", SECURITY.client_file]
    done = kafka_tool("org.apache.kafka.tools.ConsumerPerformance", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    rows = [line for line in (done.stdout or "").splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    if done.returncode != 0 or not rows:
        raise GeneratorFailed(f"ConsumerPerformance exited {done.returncode}: {_tail(done)}")
    fields = [field.strip() for field in rows[-1].split(",")]
    # start, end, MB, MB.sec, nMsg, nMsg.sec, rebalance.ms, fetch.ms, fetch.MB.sec, fetch.nMsg.sec
    if int(fields[4]) < messages:
        raise GeneratorFailed(f"ConsumerPerformance read {fields[4]} of {messages} messages: {_tail(done)}")
    return {"records_per_sec": float(fields[5]), "mb_per_sec": float(fields[3]),
            "fetch_records_per_sec": float(fields[9])}


_E2E_AVG = re.compile(r"Avg latency: ([\d.]+) ms")
_E2E_PERCENTILES = re.compile(r"Percentiles: 50th = (\d+), 99th = (\d+), 99.9th = (\d+)")


def java_end_to_end(bootstrap: str, topic: str, records: int, size: int) -> dict:
    """Kafka's EndToEndLatency: one record at a time, each consumed before the next is sent."""
    args = [bootstrap, topic, str(records), "1", str(size)] + ([SECURITY.client_file] if SECURITY.enabled else [])
    done = kafka_tool("org.apache.kafka.tools.EndToEndLatency", args, timeout=TIMEOUT_S, jvm_opts=JAVA_TOOL_JVM_OPTS)
    avg, percentiles = _E2E_AVG.search(done.stdout or ""), _E2E_PERCENTILES.search(done.stdout or "")
    if done.returncode != 0 or not avg or not percentiles:
        raise GeneratorFailed(f"EndToEndLatency exited {done.returncode}: {_tail(done)}")
    p50, p99, p999 = (float(value) for value in percentiles.groups())
    return {"p50_ms": p50, "p99_ms": p99, "p999_ms": p999, "avg_latency_ms": float(avg.group(1))}


def _tail(done) -> str:
    text = ((done.stderr or "") + "\n" + (done.stdout or "")).strip()
    return text[-600:]
