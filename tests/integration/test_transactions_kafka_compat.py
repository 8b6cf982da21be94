"""Moldau answers transactional requests exactly as Apache Kafka 4.1.1 does.

The same script of requests — the ordinary path, fencing, and bad input — runs against a real
Kafka 4.1.1 (started from the cached jars) and against Moldau, and the error codes must be
equal step by step; so must what the Java producer reports when a second producer fences it.
`moldau transactions` also runs against the Kafka broker (the tool works on both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

import rawclient
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch
from moldau.testing.kafka_dist import KafkaServer, need_kafka
from test_transactions_clients import java_workload, run_java  # noqa: F401 - java_workload is a fixture
from test_transactions_confluent import create_topics

pytestmark = pytest.mark.integration


@dataclass
class Endpoint:
    host: str
    port: int


@pytest.fixture(scope="module")
def kafka():
    need_kafka()
    # Kafka looks for timed-out transactions every 10 s by default; Moldau aborts each at its
    # deadline. A shorter interval keeps the timeout step short.
    with KafkaServer(overrides={"transaction.abort.timed.out.transaction.cleanup.interval.ms": 500}) as server:
        yield server


def endpoint(bootstrap: str) -> Endpoint:
    host, port = bootstrap.rsplit(":", 1)
    return Endpoint(host, int(port))


def call(target: Endpoint, key: int, version: int, data: dict):
    return rawclient.call(target, key, version, build(codec.request_schema(key, version), data))


def produce(target, pid: int, epoch: int, sequence: int, version: int = 9, transactional_id: str | None = "cmp-1"):
    batch = build_batch([Record(0, int(time.time() * 1000), None, b"v")], base_offset=0, producer_id=pid,
                        producer_epoch=epoch, base_sequence=sequence, transactional=True)
    response = call(target, 0, version, {"transactional_id": transactional_id, "acks": -1, "timeout": 5000,
                                         "topic_data": [{"name": "cmp", "partition_data": [
                                             {"index": 0, "records": batch}]}]})
    return response.responses[0].partition_responses[0].error_code


def init(target, transactional_id: str = "cmp-1", timeout_ms: int = 60_000):
    return call(target, 22, 4, {"transactional_id": transactional_id, "transaction_timeout": timeout_ms,
                                "producer_id": -1, "producer_epoch": -1})


def add(target, pid: int, epoch: int, partitions, transactional_id: str = "cmp-1"):
    response = call(target, 24, 3, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": pid,
        "v3_and_below_producer_epoch": epoch,
        "v3_and_below_topics": [{"name": n, "partitions": [p]} for n, p in partitions]})
    return sorted((t.name, r.partition_index, r.partition_error_code)
                  for t in response.results_by_topic_v3_and_below for r in t.results_by_partition)


def end(target, pid: int, epoch: int, commit: bool, transactional_id: str = "cmp-1"):
    return call(target, 26, 4, {"transactional_id": transactional_id, "producer_id": pid, "producer_epoch": epoch,
                                "committed": commit}).error_code


def describe(target, transactional_ids: list[str]) -> list[tuple]:
    """DescribeTransactions, read with the CLI's reader: kio refuses the start time -1 of an
    id with no open transaction, which Kafka sends as well."""
    from moldau.cli.wire import _describe_transactions_response

    request = build(codec.request_schema(65, 0), {"transactional_ids": transactional_ids})
    payload = rawclient.exchange(target, rawclient.frame(65, 0, rawclient.encode(request), True))
    return [(d.error_code, d.transaction_state, d.transaction_start_time_ms, d.producer_epoch)
            for d in _describe_transactions_response(payload, 5).transaction_states]


def markers(target, pid: int, topic: str):
    response = call(target, 27, 1, {"markers": [{"producer_id": pid, "producer_epoch": 0, "transaction_result": False,
                                                 "coordinator_epoch": 0,
                                                 "topics": [{"name": topic, "partition_indexes": [0]}]}]})
    return response.markers[0].topics[0].partitions[0].error_code


_RETRIABLE = (ErrorCode.concurrent_transactions, ErrorCode.coordinator_not_available, ErrorCode.not_coordinator,
              ErrorCode.coordinator_load_in_progress)


def until_none(step, timeout_s: float = 60.0):
    """Retry a step while it is answered with an error clients retry (Kafka creates and loads
    __transaction_state in the background; markers are written after EndTxn returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = step()
        code = getattr(result, "error_code", result)
        if code not in _RETRIABLE or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def script(bootstrap: str) -> list[tuple[str, object]]:
    """Run the request script; (step, answer) pairs with nothing broker-specific in them."""
    target = endpoint(bootstrap)
    create_topics(bootstrap, "cmp", partitions=1)
    steps: list[tuple[str, object]] = []
    found = until_none(lambda: call(target, 10, 3, {"key": "cmp-1", "key_type": 1}))
    steps.append(("find coordinator", found.error_code))
    until_none(lambda: call(target, 10, 3, {"key": "nobody", "key_type": 1}))
    first = until_none(lambda: init(target))
    pid, epoch = first.producer_id, first.producer_epoch
    steps.append(("init", (first.error_code, epoch)))
    steps.append(("end unknown id", end(target, 5, 0, True, "nobody")))
    steps.append(("init timeout too long", init(target, "cmp-2", 16 * 60_000).error_code))
    steps.append(("init empty id", init(target, "").error_code))
    steps.append(("produce outside a transaction v9", produce(target, pid, epoch, 0)))
    steps.append(("produce outside a transaction v11", produce(target, pid, epoch, 0, version=11)))
    steps.append(("produce without transactional id", produce(target, pid, epoch, 0, transactional_id=None)))
    steps.append(("commit with nothing", end(target, pid, epoch, True)))
    steps.append(("add unknown topic", add(target, pid, epoch, [("nope", 0), ("cmp", 0)])))
    steps.append(("add wrong producer id", add(target, pid + 1000, epoch, [("cmp", 0)])))
    steps.append(("markers unknown topic", markers(target, 999, "nope")))
    steps.append(("markers unknown producer", markers(target, 999, "cmp")))
    steps.append(("add", add(target, pid, epoch, [("cmp", 0)])))
    steps.append(("produce", produce(target, pid, epoch, 0)))
    steps.append(("fence", init(target).error_code))  # aborts the open transaction first
    second = until_none(lambda: init(target))
    steps.append(("init again", (second.error_code, second.producer_id == pid, second.producer_epoch - epoch)))
    steps.append(("produce fenced", produce(target, pid, epoch, 1)))
    steps.append(("end fenced", end(target, pid, epoch, True)))
    steps.append(("add fenced", add(target, pid, epoch, [("cmp", 0)])))
    steps.append(("describe", describe(target, ["nobody", "cmp-1"])))
    listed = call(target, 66, 1, {"state_filters": ["Ongoing", "Bogus"], "producer_id_filters": [],
                                  "duration_filter": -1})
    steps.append(("list", (listed.error_code, listed.unknown_state_filters)))
    return steps + v2_script(target)


def init_v2(target, transactional_id: str, timeout_ms: int = 60_000):
    return until_none(lambda: call(target, 22, 5, {"transactional_id": transactional_id,
                                                   "transaction_timeout": timeout_ms,
                                                   "producer_id": -1, "producer_epoch": -1}))


def v2_script(target) -> list[tuple[str, object]]:
    """Transactions V2 (Produce v12 adds the partition, EndTxn v5 bumps the epoch): commit,
    fencing and a timeout, with the epochs each step leaves."""
    until_none(lambda: call(target, 10, 3, {"key": "v2-1", "key_type": 1}))
    until_none(lambda: call(target, 10, 3, {"key": "v2-2", "key_type": 1}))
    first = init_v2(target, "v2-1")
    pid, epoch = first.producer_id, first.producer_epoch
    steps: list[tuple[str, object]] = [("v2 produce", produce(target, pid, epoch, 0, 12, "v2-1"))]
    ended = call(target, 26, 5, {"transactional_id": "v2-1", "producer_id": pid, "producer_epoch": epoch,
                                 "committed": True})
    steps.append(("v2 commit", (ended.error_code, ended.producer_id == pid, ended.producer_epoch - epoch)))
    epoch = ended.producer_epoch
    steps.append(("v2 produce next", produce(target, pid, epoch, 0, 12, "v2-1")))
    steps.append(("v2 fence", call(target, 22, 5, {"transactional_id": "v2-1", "transaction_timeout": 60_000,
                                                    "producer_id": -1, "producer_epoch": -1}).error_code))
    steps.append(("v2 epoch after fence", init_v2(target, "v2-1").producer_epoch - epoch))
    slow = init_v2(target, "v2-2", timeout_ms=1_000)
    steps.append(("v2 produce, then time out", produce(target, slow.producer_id, slow.producer_epoch, 0, 12, "v2-2")))
    time.sleep(3)
    steps.append(("v2 produce after timeout", produce(target, slow.producer_id, slow.producer_epoch, 1, 12, "v2-2")))
    late = call(target, 26, 5, {"transactional_id": "v2-2", "producer_id": slow.producer_id,
                                "producer_epoch": slow.producer_epoch, "committed": True})
    steps.append(("v2 commit after timeout", late.error_code))
    steps.append(("v2 epoch after timeout", init_v2(target, "v2-2", 1_000).producer_epoch - slow.producer_epoch))
    return steps


def test_error_codes_match_kafka(kafka, moldau_broker):
    expected = script(kafka.bootstrap_servers)
    actual = script(moldau_broker.bootstrap_servers)
    assert actual == expected


def test_java_producer_is_fenced_as_by_kafka(kafka, moldau_broker, java_workload):  # noqa: F811
    outputs = []
    for bootstrap in (kafka.bootstrap_servers, moldau_broker.bootstrap_servers):
        create_topics(bootstrap, "java-fence", partitions=1)
        outputs.append(run_java(java_workload, bootstrap, "java-fence-1", "java-fence", "fence"))
    assert outputs[1] == outputs[0]
    assert "SEND InvalidProducerEpochException" in outputs[1]


def test_moldau_transactions_works_against_kafka(kafka):
    from confluent_kafka import Producer

    bootstrap = kafka.bootstrap_servers
    create_topics(bootstrap, "cli-on-kafka", partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "on-kafka"})
    producer.init_transactions(60)
    producer.begin_transaction()
    producer.produce("cli-on-kafka", b"x", partition=0)
    producer.flush(30)
    listed = subprocess.run([sys.executable, "-m", "moldau", "transactions", "list", "--bootstrap-server", bootstrap,
                             "--output", "json"], capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert {"transactional_id": "on-kafka", "coordinator": 1, "producer_id": 0, "state": "Ongoing"} in \
        [dict(t, producer_id=0) for t in json.loads(listed.stdout)]
    described = subprocess.run([sys.executable, "-m", "moldau", "transactions", "describe", "on-kafka",
                                "--bootstrap-server", bootstrap, "-o", "json"], capture_output=True, text=True,
                               timeout=120)
    assert described.returncode == 0 and json.loads(described.stdout)["partitions"] == ["cli-on-kafka-0"]
    producer.abort_transaction(30)


def transaction_log(bootstrap: str, transactional_id: str) -> list[tuple]:
    """`__transaction_state` as Kafka's own TransactionLogMessageFormatter prints it, for one
    transactional id: per record (key version, value version, the value's fields) with
    timestamps reduced to whether they are set, and consecutive Ongoing records collapsed into
    the last (how many partition additions one transaction takes depends on batching)."""
    from moldau.testing.kafka_dist import kafka_tool

    printed = kafka_tool("kafka-console-consumer", [
        "--bootstrap-server", bootstrap, "--topic", "__transaction_state", "--from-beginning", "--timeout-ms", "10000",
        "--formatter", "org.apache.kafka.tools.consumer.TransactionLogMessageFormatter",
        "--consumer-property", "exclude.internal.topics=false"], timeout=180)
    assert "Processed a total of" in printed.stderr, printed.stderr[-3000:]
    rows = []
    producer_ids: dict[int, int] = {}
    for line in printed.stdout.replace("}}}{", "}}}\n{").splitlines():
        record = json.loads(line)
        if record["key"]["data"]["transactionalId"] != transactional_id:
            continue
        value = dict(record["value"]["data"])
        for name in ("producerId", "previousProducerId", "nextProducerId"):
            # which ids a broker hands out depends on what ran before (each node of a cluster
            # owns a block): compared by order of appearance
            if name in value and value[name] >= 0:
                value[name] = producer_ids.setdefault(value[name], len(producer_ids))
        for name in ("transactionLastUpdateTimestampMs", "transactionStartTimestampMs"):
            value[name] = value[name] >= 0
        if value["transactionPartitions"]:
            value["transactionPartitions"] = sorted((t["topic"], sorted(t["partitionIds"]))
                                                    for t in value["transactionPartitions"])
        row = (record["key"]["type"], record["value"]["version"], sorted(value.items()))
        if rows and value["transactionStatus"] == 1 and dict(rows[-1][2])["transactionStatus"] == 1:
            rows[-1] = row
        else:
            rows.append(row)
    return rows


def test_transaction_log_is_kafkas(kafka, moldau_broker, java_workload):  # noqa: F811
    """Kafka's formatter reads Moldau's `__transaction_state`, record for record what Kafka 4.1.1
    writes for the same clients: librdkafka (Transactions V1) and the Java producer (V2);
    kafka-dump-log's transaction-log decoder reads Moldau's segment files."""
    from confluent_kafka import Producer

    from moldau.testing.kafka_dist import kafka_tool

    logs = []
    for bootstrap in (kafka.bootstrap_servers, moldau_broker.bootstrap_servers):
        create_topics(bootstrap, "log-v1", partitions=2)
        producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "log-v1"})
        producer.init_transactions(60)
        for commit in (True, False):
            producer.begin_transaction()
            for partition in (0, 1):
                producer.produce("log-v1", b"x", partition=partition)
            assert producer.flush(30) == 0
            (producer.commit_transaction if commit else producer.abort_transaction)(60)
        Producer({"bootstrap.servers": bootstrap, "transactional.id": "log-v1"}).init_transactions(60)  # a fence
        create_topics(bootstrap, "log-v2")
        run_java(java_workload, bootstrap, "log-v2", "log-v2")
        logs.append((transaction_log(bootstrap, "log-v1"), transaction_log(bootstrap, "log-v2")))
    assert logs[1][0] == logs[0][0]
    assert logs[1][1] == logs[0][1]
    assert any(("clientTransactionVersion", 2) in row[2] for row in logs[1][1]), "the Java producer used V2"
    segments = sorted(str(f) for f in Path(moldau_broker.data_dir).glob("__transaction_state-*/*.log"))
    dumped = kafka_tool("kafka.tools.DumpLogSegments", ["--transaction-log-decoder", "--files", ",".join(segments)],
                        timeout=180)
    assert dumped.returncode == 0, dumped.stderr[-3000:]
    decoded = [line for line in dumped.stdout.splitlines() if '"transactionalId":"log-v' in line]
    assert len(decoded) >= len(logs[1][0]) + len(logs[1][1]) and all(" payload: {" in line for line in decoded)
