"""`moldau perf` against a real broker, and benchmarks/compare.py's quick mode against both
moldau and Apache Kafka (the CI smoke test of the side-by-side benchmark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from moldau.cli.main import main

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def test_perf_produce_then_consume_then_end_to_end(moldau_broker, capsys):
    bootstrap = moldau_broker.bootstrap_servers
    topic = f"perf-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, 2)

    assert main(["perf", "produce", "-b", bootstrap, "--topic", topic, "--num-records", "5000", "--record-size", "100",
                 "--producer-prop", "acks=1", "linger.ms=5", "-o", "json"]) == 0
    produced = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert produced["records"] == 5000 and produced["errors"] == 0
    assert produced["records_per_sec"] > 0 and 0 < produced["p50_ms"] <= produced["p999_ms"] <= produced["max_latency_ms"]

    assert main(["perf", "consume", "-b", bootstrap, "--topic", topic, "--messages", "5000", "--timeout", "20000"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()[-2:]
    assert header.startswith("start.time, end.time, data.consumed.in.MB")
    assert row.split(", ")[4] == "5000"

    e2e_topic = f"perf-e2e-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, e2e_topic, 1)
    assert main(["perf", "end-to-end", "-b", bootstrap, "--topic", e2e_topic, "--num-records", "200",
                 "--throughput", "200", "-o", "json"]) == 0
    e2e = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert e2e["records"] == 200 and e2e["p50_ms"] > 0


def test_perf_produce_paced_and_table_output(moldau_broker, capsys):
    topic = f"perf-paced-{uuid.uuid4().hex[:8]}"
    _create_topic(moldau_broker.bootstrap_servers, topic, 1)
    assert main(["perf", "produce", "-b", moldau_broker.bootstrap_servers, "--topic", topic, "--num-records", "300",
                 "--record-size", "10", "--throughput", "1000", "--reporting-interval", "100"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("300 records sent, ") and lines[-1].endswith("ms 99.9th.")
    rate = float(lines[-1].split(", ")[1].split()[0])
    assert rate <= 1000 * 1.2  # paced, not flat out
    assert any("records sent" in line and "ms max latency." in line for line in lines[:-1])  # progress lines


def test_perf_consume_fewer_messages_than_asked_fails_after_timeout(moldau_broker, capsys):
    topic = f"perf-short-{uuid.uuid4().hex[:8]}"
    _create_topic(moldau_broker.bootstrap_servers, topic, 1)
    code = main(["perf", "consume", "-b", moldau_broker.bootstrap_servers, "--topic", topic, "--messages", "10",
                 "--timeout", "1000"])
    assert code == 1
    assert "consumed 0 of 10 messages" in capsys.readouterr().err


def test_compare_quick_runs_every_workload_on_both_systems(tmp_path):
    from moldau.testing.kafka_dist import need_kafka
    from moldau.testing.tools import need_executable

    need_kafka()
    need_executable("go")
    need_executable("kcat")
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick",
                                "--generators", "franz-go,kcat,librdkafka,java",
                                "--output-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: compare.py stops both servers before exiting
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(f"compare.py --quick took over 600 s: {stderr[-3000:]}")
    assert process.returncode == 0, stderr[-3000:]
    result = json.loads(next(tmp_path.glob("compare-*.json")).read_text())
    assert result["skipped"] == [], result["skipped"]
    seen = {(row["workload"], row["generator"], row["system"]) for row in result["rows"]}
    expected = {"produce-100B-acks1": ALL, "produce-100B-acksall": ALL, "produce-1KiB-acks1": ALL, "consume-100B": ALL,
                "end-to-end": ("librdkafka", "java"), "produce-100B-2producers": ("franz-go", "kcat"),
                "produce-100B-new-topic": ("franz-go", "kcat")}
    for workload, generators in expected.items():
        for generator in generators:
            for system in ("kafka", "moldau"):
                assert (workload, generator, system) in seen
    ratios = [entry for entry in result["summary"] if "ratio" in entry]
    assert any(entry["workload"] == "startup" and entry["metric"] == "first_ack_s" for entry in ratios)
    # Every throughput run says what the broker, the generator and the rest of the machine used.
    for row in result["rows"]:
        if row["workload"].startswith(("produce", "consume")):
            assert row["bottleneck"] and row["broker_cpu_util"] >= 0 and row["client_cpu_util"] >= 0, row
    franz = [row for row in result["rows"] if row["generator"] == "franz-go" and row["workload"] == "produce-100B-acks1"]
    assert all(0 < row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"] <= row["max_latency_ms"] for row in franz)
    assert "| workload | generator | metric |" in stdout and "bottleneck" in stdout


ALL = ("franz-go", "kcat", "librdkafka", "java")
