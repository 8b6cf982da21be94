"""The benchmark's load generators against a real broker: franz-go's loadgen
(tests/clients/go/loadgen) and kcat, as benchmarks/bench/generators.py runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from moldau.testing.tools import need_executable

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def _loadgen(*args: str) -> dict:
    from bench.generators import loadgen_binary

    need_executable("go")
    done = subprocess.run([loadgen_binary(), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_loadgen_two_producers_then_two_consumers_move_every_record(moldau_broker):
    bootstrap, topic = moldau_broker.bootstrap_servers, f"loadgen-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, 3)

    produced = _loadgen("produce", "-brokers", bootstrap, "-topic", topic, "-records", "30001", "-size", "100",
                        "-producers", "2", "-acks", "1")
    assert produced["records"] == 30001 and produced["errors"] == 0 and produced["clients"] == 2
    assert produced["bytes"] == 30001 * 100
    assert 0 < produced["p50_ms"] <= produced["p95_ms"] <= produced["p99_ms"] <= produced["p999_ms"] \
        <= produced["max_latency_ms"]
    assert produced["records_per_sec"] > 0 and produced["longest_gap_ms"] >= 0

    consumed = _loadgen("consume", "-brokers", bootstrap, "-topic", topic, "-records", "30001", "-consumers", "2",
                        "-timeout", "60s")
    assert consumed["records"] == 30001 and consumed["bytes"] == 30001 * 100 and consumed["errors"] == 0

    # Only what the broker holds: asking for more than was written fails after the timeout.
    short = subprocess.run([_binary(), "consume", "-brokers", bootstrap, "-topic", topic, "-records", "30002",
                            "-timeout", "3s"], capture_output=True, text=True, timeout=60)
    assert short.returncode == 1 and "30001 of 30002" in short.stdout


def _binary() -> str:
    from bench.generators import loadgen_binary

    return loadgen_binary()


def test_loadgen_paced_and_auto_created_topic(moldau_broker):
    bootstrap, topic = moldau_broker.bootstrap_servers, f"loadgen-new-{uuid.uuid4().hex[:8]}"
    paced = _loadgen("produce", "-brokers", bootstrap, "-topic", topic, "-records", "600", "-size", "10",
                     "-rate", "1000", "-auto-create", "-acks", "all")
    assert paced["records"] == 600
    assert paced["records_per_sec"] <= 1000 * 1.2  # paced, not flat out


def test_kcat_generators_produce_from_a_file_and_consume_it_back(moldau_broker):
    from bench import generators

    need_executable("kcat")
    bootstrap, topic = moldau_broker.bootstrap_servers, f"kcat-gen-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic, 3)
    produced = generators.kcat_produce(bootstrap, topic, 20000, 100, {"acks": "1", "linger.ms": 5}, producers=2)
    assert produced["records_per_sec"] > 0
    consumed = generators.kcat_consume(bootstrap, topic, 20000, 100)
    assert consumed["records_per_sec"] > 0
    offsets = subprocess.run(["kcat", "-Q", "-b", bootstrap, "-t", f"{topic}:0:-1", "-t", f"{topic}:1:-1",
                              "-t", f"{topic}:2:-1"], capture_output=True, text=True, timeout=60)
    ends = [int(line.rsplit(" ", 1)[1]) for line in offsets.stdout.splitlines() if line.strip()]
    assert sum(ends) == 20000
