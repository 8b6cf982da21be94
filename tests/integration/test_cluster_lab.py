"""The classic Kafka replication lab on `moldau cluster up`, with Kafka 4.1's own scripts, and
what the cluster command says about bad input."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from moldau.testing.cluster_process import ProcessCluster, free_base_port, moldau
from moldau.testing.kafka_dist import kafka_tool, need_kafka

pytestmark = pytest.mark.integration


def _tool(name, *args, input=None, timeout=120):
    result = kafka_tool(name, list(args), input=input, timeout=timeout)
    assert result.returncode == 0, f"{name} exited {result.returncode}: {result.stderr[-3000:]}"
    return result.stdout


def _describe(bootstrap: str, topic: str) -> tuple[int, list[int], list[int]]:
    out = _tool("kafka-topics.sh", "--bootstrap-server", bootstrap, "--describe", "--topic", topic)
    match = re.search(r"Leader: (-?\d+)\s+Replicas: ([\d,]+)\s+Isr: ([\d,]*)", out)
    assert match, out
    return int(match.group(1)), [int(x) for x in match.group(2).split(",")], \
        [int(x) for x in match.group(3).split(",") if x]


@pytest.fixture
def cluster(tmp_path):
    with ProcessCluster(tmp_path / "cluster", brokers=3) as running:
        yield running


def test_the_replication_lab_with_kafkas_own_scripts(cluster):
    need_kafka()
    bootstrap = cluster.address(1)
    _tool("kafka-topics.sh", "--create", "--bootstrap-server", bootstrap, "--replication-factor", "3",
          "--partitions", "1", "--topic", "my-replicated-topic")
    leader, replicas, isr = cluster.wait_for(
        lambda: (lambda d: d if len(d[2]) == 3 else None)(_describe(bootstrap, "my-replicated-topic")),
        what="the topic's ISR")
    assert sorted(replicas) == [1, 2, 3] and sorted(isr) == [1, 2, 3] and leader in replicas
    messages = [f"my test message {i}" for i in range(1, 6)]
    _tool("kafka-console-producer.sh", "--bootstrap-server", bootstrap, "--topic", "my-replicated-topic",
          input="\n".join(messages) + "\n")

    cluster.kill(leader)
    survivor = cluster.address(next(n for n in (1, 2, 3) if n != leader))
    new_leader, _replicas, shrunk = cluster.wait_for(
        lambda: (lambda d: d if d[0] not in (-1, leader) and leader not in d[2] else None)(
            _describe(survivor, "my-replicated-topic")), what="a new leader and a shrunk ISR")
    assert new_leader != leader and sorted(shrunk) == sorted(set(replicas) - {leader})
    consumed = _tool("kafka-console-consumer.sh", "--bootstrap-server", survivor, "--topic", "my-replicated-topic",
                     "--from-beginning", "--max-messages", "5", "--timeout-ms", "60000")
    assert consumed.splitlines() == messages

    cluster.start(leader)
    cluster.wait_for(lambda: len(_describe(survivor, "my-replicated-topic")[2]) == 3, what="the whole ISR again")


def test_two_of_three_down_refuses_acks_all_and_still_serves_reads(cluster):
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic("safe", 1, 3, config={"min.insync.replicas": "2"})])["safe"].result(30)
    cluster.wait_for(lambda: len(cluster.partition_state("safe")[2]) == 3, what="a full ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True})
    for i in range(10):
        producer.produce("safe", value=f"before-{i}")
    assert producer.flush(30) == 0
    leader, replicas, _isr = cluster.partition_state("safe")
    others = [n for n in replicas if n != leader]
    cluster.kill(others[0])
    cluster.kill(others[1])
    cluster.wait_for(lambda: len(cluster.partition_state("safe")[2]) == 1, what="the ISR to shrink to the leader")

    errors: list = []
    strict = Producer({"bootstrap.servers": cluster.address(leader), "acks": "all", "message.timeout.ms": 8000})
    strict.produce("safe", value=b"refused", on_delivery=lambda err, msg: errors.append(err))
    strict.flush(20)
    assert errors and errors[0] is not None and errors[0].name() == "NOT_ENOUGH_REPLICAS", errors

    relaxed = Producer({"bootstrap.servers": cluster.address(leader), "acks": "1"})
    delivered: list = []
    relaxed.produce("safe", value=b"accepted", on_delivery=lambda err, msg: delivered.append(err))
    relaxed.flush(20)
    assert delivered == [None]

    consumed = moldau("consume", "safe", "--from-beginning", "--max-messages", "10", "--bootstrap-server",
                      cluster.address(leader), timeout=60)
    assert consumed.stdout.splitlines() == [f"before-{i}" for i in range(10)], consumed.stderr


def test_cluster_command_refuses_bad_input_with_one_line(tmp_path):
    blocker = socket.socket()
    base = free_base_port(3)
    blocker.bind(("127.0.0.1", base + 1))
    blocker.listen()
    try:
        busy = moldau("cluster", "up", "--data-dir", str(tmp_path / "busy"), "--base-port", str(base))
    finally:
        blocker.close()
    assert busy.returncode != 0 and f"port {base + 1}" in busy.stderr and "in use" in busy.stderr
    assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1

    missing = moldau("cluster", "status", "--data-dir", str(tmp_path / "nothing"))
    assert missing.returncode != 0 and "no cluster in" in missing.stderr

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "something").write_text("x")
    refused = moldau("cluster", "up", "--data-dir", str(foreign))
    assert refused.returncode != 0 and "not a Moldau cluster directory" in refused.stderr


def test_unknown_node_ids_and_a_replication_factor_above_the_brokers(cluster):
    for action in ("kill", "start", "stop"):
        result = cluster.cli(action, "7", check=False)
        assert result.returncode != 0 and "no node 7" in result.stderr and "Traceback" not in result.stderr
    created = moldau("topics", "create", "rf4", "-p", "1", "-r", "4", "--bootstrap-server", cluster.bootstrap_servers)
    assert created.returncode != 0
    assert "INVALID_REPLICATION_FACTOR" in created.stderr or "replication factor" in created.stderr.lower()
    assert len(created.stderr.strip().splitlines()) == 1, created.stderr


def test_a_data_dir_of_another_cluster_is_refused(cluster, tmp_path):
    """A node directory whose meta.properties names another cluster id must not start."""
    cluster.stop(3)
    meta = cluster.node_dir(3) / "meta.properties"
    meta.write_text(re.sub(r"cluster\.id=.*", "cluster.id=SomeOtherClusterId0000A", meta.read_text()))
    result = cluster.cli("start", "3", check=False)
    assert result.returncode != 0 and "SomeOtherClusterId0000A" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_node_with_the_wrong_quorum_voters_or_a_duplicate_node_id_says_so(cluster, tmp_path):
    props = (tmp_path / "cluster" / "node-1.properties").read_text()
    wrong = props.replace("node.id=1", "node.id=9")
    (tmp_path / "wrong.properties").write_text(wrong.replace(str(tmp_path / "cluster" / "node-1"), str(tmp_path / "n9")))
    result = moldau("server", str(tmp_path / "wrong.properties"), timeout=60)
    assert result.returncode != 0 and "controller.quorum.voters" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

    duplicate = re.sub(r"listeners=.*", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0", props)
    duplicate = duplicate.replace(str(tmp_path / "cluster" / "node-1"), str(tmp_path / "dup"))
    duplicate = re.sub(r"advertised\.listeners=.*\n", "", duplicate)
    (tmp_path / "dup.properties").write_text(duplicate)
    process = subprocess.run([*moldau_command(), "server", str(tmp_path / "dup.properties")],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode != 0 and "node.id 1" in process.stderr, process.stderr


def moldau_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "moldau"]
