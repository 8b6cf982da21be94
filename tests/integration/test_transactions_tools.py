"""Transaction tools against Moldau: Kafka's kafka-transactions.sh (list, describe,
describe-producers, find-hanging, abort), `moldau transactions` (tables and JSON) and
`moldau consume --isolation-level`, on a transaction left open by a producer that went away."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from confluent_kafka import Producer

from moldau.testing.kafka_dist import kafka_tool, need_kafka
from test_transactions_confluent import create_topics, read_all

pytestmark = pytest.mark.integration


def hang_a_transaction(bootstrap: str, topic: str, transactional_id: str) -> Producer:
    """A producer opens a transaction in partition 0 of `topic` (at offset 1, after one plain
    record) and does nothing more: the partition's last stable offset stays at 1."""
    plain = Producer({"bootstrap.servers": bootstrap})
    plain.produce(topic, b"before", partition=0)
    assert plain.flush(30) == 0
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 600_000})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"hanging", partition=0)
    assert producer.flush(30) == 0
    return producer


def moldau(bootstrap: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moldau", *args, "--bootstrap-server", bootstrap],
                          capture_output=True, text=True, timeout=120)


def test_kafka_transactions_tool(moldau_broker):
    need_kafka()
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "tool-txn", partitions=1)
    hang_a_transaction(bootstrap, "tool-txn", "tool-1")

    def tool(*args: str) -> str:
        result = kafka_tool("kafka-transactions", ["--bootstrap-server", bootstrap, *args], timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    listed = tool("list").splitlines()
    assert listed[0].split() == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
    assert listed[1].split()[0] == "tool-1" and listed[1].split()[3] == "Ongoing"
    described = tool("describe", "--transactional-id", "tool-1").splitlines()[1].split()
    assert described[1] == "tool-1" and described[4] == "Ongoing" and described[-1] == "tool-txn-0"
    producers = tool("describe-producers", "--topic", "tool-txn", "--partition", "0").splitlines()
    assert producers[0].split()[-1] == "CurrentTransactionStartOffset" and producers[1].split()[-1] == "1"
    hanging = tool("find-hanging", "--broker-id", "1").splitlines()
    assert len(hanging) == 1, "an open transaction its coordinator knows is not hanging"
    tool("abort", "--topic", "tool-txn", "--partition", "0", "--start-offset", "1")
    producers = tool("describe-producers", "--topic", "tool-txn", "--partition", "0").splitlines()
    assert producers[1].split()[-1] == "None"
    assert [v for _, _, v in read_all(bootstrap, "tool-txn", "read_committed", 1, partitions=1)] == [b"before"]


def test_moldau_transactions_and_consume_isolation(moldau_broker):
    bootstrap = moldau_broker.bootstrap_servers
    create_topics(bootstrap, "cli-txn", partitions=1)
    hang_a_transaction(bootstrap, "cli-txn", "cli-1")

    listed = moldau(bootstrap, "transactions", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"transactional_id": "cli-1", "coordinator": 1, "producer_id": 0,
                                          "state": "Ongoing"}]
    table = moldau(bootstrap, "transactions", "describe", "cli-1")
    assert table.returncode == 0 and "Ongoing" in table.stdout and "cli-txn-0" in table.stdout, table.stderr
    missing = moldau(bootstrap, "transactions", "describe", "nobody")
    assert missing.returncode == 1 and "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr

    def consume(isolation: str) -> list[str]:
        result = moldau(bootstrap, "consume", "cli-txn", "--from-beginning", "--isolation-level", isolation,
                        "--timeout-ms", "2000")
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert consume("read_uncommitted") == ["before", "hanging"]
    assert consume("read_committed") == ["before"]  # and not past the open transaction
    producers = moldau(bootstrap, "transactions", "describe-producers", "--topic", "cli-txn", "--partition", "0",
                       "-o", "json")
    assert json.loads(producers.stdout)[0]["current_transaction_start_offset"] == 1
    aborted = moldau(bootstrap, "transactions", "abort", "--topic", "cli-txn", "--partition", "0",
                     "--start-offset", "1")
    assert aborted.returncode == 0, aborted.stderr
    assert consume("read_committed") == ["before"]
    assert consume("read_uncommitted") == ["before", "hanging"]
    again = moldau(bootstrap, "transactions", "abort", "--topic", "cli-txn", "--partition", "0", "--start-offset", "1")
    assert again.returncode == 1 and "no open transaction starts at offset 1" in again.stderr
