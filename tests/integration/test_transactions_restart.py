"""Transactions across a SIGKILL of the broker process: what was committed stays committed
and atomic, an open transaction is still open after the restart (its producer state was
rebuilt from the log, its coordinator state from `__transaction_state`) and is then aborted at
its transaction.timeout.ms, and a new producer with the same transactional id fences it."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from moldau.testing.server_process import ServerProcess
from test_transactions_confluent import create_topics, read_all

pytestmark = pytest.mark.integration

OVERRIDES = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3"}


def last_stable_offsets(bootstrap: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": "read_committed"})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
                for p in range(3)]
    finally:
        consumer.close()


def test_transactions_survive_a_kill_9(tmp_path):
    data_dir = str(tmp_path / "data")
    server = ServerProcess(data_dir, overrides=OVERRIDES).start()
    try:
        bootstrap = server.bootstrap_servers
        create_topics(bootstrap, "crash-txn")
        done = Producer({"bootstrap.servers": bootstrap, "transactional.id": "crash-done"})
        done.init_transactions(30)
        for txn in range(5):
            done.begin_transaction()
            for i in range(30):
                done.produce("crash-txn", f"done-{txn}-{i}".encode(), partition=i % 3)
            done.commit_transaction(30)
        hanging = Producer({"bootstrap.servers": bootstrap, "transactional.id": "crash-open",
                            "transaction.timeout.ms": 8000})
        hanging.init_transactions(30)
        hanging.begin_transaction()
        for i in range(30):
            hanging.produce("crash-txn", f"open-{i}".encode(), partition=i % 3)
        assert hanging.flush(30) == 0
        server.kill()  # the broker dies with a transaction open in all three partitions
        server = ServerProcess(data_dir, port=server.port, overrides=OVERRIDES).start()
        restarted = time.monotonic()

        committed = sorted(f"done-{t}-{i}".encode() for t in range(5) for i in range(30))
        assert sorted(v for _, _, v in read_all(bootstrap, "crash-txn", "read_committed", len(committed))) == committed
        stuck = last_stable_offsets(bootstrap, "crash-txn")
        # per partition: 5 committed transactions of 10 records and a marker each (offsets 0-54),
        # then the open transaction's 10 records from offset 55
        assert stuck == [55, 55, 55], f"the open transaction holds the LSO: {stuck}"

        deadline = restarted + 30
        while last_stable_offsets(bootstrap, "crash-txn") != [66, 66, 66] and time.monotonic() < deadline:
            time.sleep(0.5)  # aborted at its timeout: its ABORT marker at 65
        assert last_stable_offsets(bootstrap, "crash-txn") == [66, 66, 66]
        assert time.monotonic() - restarted < 8 + 10, "aborted within its transaction.timeout.ms"
        seen = [v for _, _, v in read_all(bootstrap, "crash-txn", "read_committed", len(committed))]
        assert sorted(seen) == committed, "nothing of the aborted transaction is visible"

        again = Producer({"bootstrap.servers": bootstrap, "transactional.id": "crash-open"})
        again.init_transactions(30)
        again.begin_transaction()
        again.produce("crash-txn", b"after", partition=0)
        again.commit_transaction(30)
        seen = [v for _, _, v in read_all(bootstrap, "crash-txn", "read_committed", len(committed) + 1)]
        assert b"after" in seen and not [v for v in seen if v.startswith(b"open-")]
    finally:
        server.close()
