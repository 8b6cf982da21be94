"""The transactional APIs of the Java producer (Kafka 4.1.1: Transactions V2), kafka-python and
franz-go, each running the same commit/abort workload against Moldau.

Each client runs 8 transactions of 10 records over 3 partitions, the value of record i of
transaction t being "t-i": even transactions commit, odd ones abort after their records
reached the broker. A read_committed consumer must then see exactly the committed records, in
order per partition, and a read_uncommitted one all 80 and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from moldau.testing.kafka_dist import java_executable, kafka_classpath, log4j2_config, need_kafka
from moldau.testing.tools import need_executable
from test_transactions_confluent import create_topics, read_all

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TRANSACTIONS, PARTITIONS = 8, 3


def expected(committed_only: bool) -> dict[int, list[bytes]]:
    by_partition: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for t in range(TRANSACTIONS):
        if committed_only and t % 2:
            continue
        for i in range(10):
            by_partition[i % PARTITIONS].append(f"{t}-{i}".encode())
    return by_partition


def check_topic(bootstrap: str, topic: str) -> None:
    committed = expected(committed_only=True)
    seen = read_all(bootstrap, topic, "read_committed", sum(map(len, committed.values())))
    assert {p: [v for q, _, v in sorted(seen) if q == p] for p in range(PARTITIONS)} == committed
    everything = expected(committed_only=False)
    seen = read_all(bootstrap, topic, "read_uncommitted", sum(map(len, everything.values())))
    assert sorted(v for _, _, v in seen) == sorted(v for values in everything.values() for v in values)


@pytest.fixture(scope="module")
def java_workload() -> Path:
    need_kafka()
    javac = need_executable("javac")
    classes = ROOT / "build" / "clients" / "java"
    classes.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([javac, "-d", str(classes), "-cp", kafka_classpath(),
                            str(ROOT / "tests" / "clients" / "java" / "TxnWorkload.java")],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    return classes


def run_java(classes: Path, bootstrap: str, transactional_id: str, topic: str, *extra: str) -> str:
    command = [java_executable(), "-Xmx256m", f"-Dlog4j2.configurationFile={log4j2_config()}",
               "-cp", f"{kafka_classpath()}{os.pathsep}{classes}", "TxnWorkload", bootstrap, transactional_id,
               topic, str(TRANSACTIONS), str(PARTITIONS), *extra]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def test_java_producer(moldau_broker, java_workload):
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "java-txn")
    assert "DONE" in run_java(java_workload, bootstrap, "java-txn-1", "java-txn")
    check_topic(bootstrap, "java-txn")
    used = moldau_broker.call(lambda core: {label: dict(apis) for label, apis in core.api_usage.items()})
    java = next(apis for label, apis in used.items() if label.startswith("apache-kafka-java"))
    assert 12 <= max(java[0]) and 5 in java[26] and 24 not in java, "Transactions V2: no AddPartitionsToTxn"


def test_kafka_python_producer(moldau_broker):
    from kafka import KafkaProducer

    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "kp-txn")
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-txn-1", linger_ms=5)
    try:
        producer.init_transactions()
        for t in range(TRANSACTIONS):
            producer.begin_transaction()
            for i in range(10):
                producer.send("kp-txn", f"{t}-{i}".encode(), partition=i % PARTITIONS)
            if t % 2 == 0:
                producer.commit_transaction()
            else:
                producer.flush()
                producer.abort_transaction()
    finally:
        producer.close(timeout=10)
    check_topic(bootstrap, "kp-txn")


def test_franz_go_producer(moldau_broker):
    go = need_executable("go")
    binary = ROOT / "build" / "clients" / "franztxn"
    binary.parent.mkdir(parents=True, exist_ok=True)
    built = subprocess.run([go, "build", "-o", str(binary), "./franztxn"], cwd=ROOT / "tests" / "clients" / "go",
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "franz-txn")
    started = time.monotonic()
    finished = subprocess.run([str(binary), bootstrap, "franz-txn-1", "franz-txn", str(TRANSACTIONS), str(PARTITIONS)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0 and "DONE" in finished.stdout, finished.stderr[-3000:]
    assert time.monotonic() - started < 60
    check_topic(bootstrap, "franz-txn")
