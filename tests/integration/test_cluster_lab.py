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
    assert result.returncode == 0, f"{name} exited {result.returncode}: {result.stderr[:1500]}"
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
    cluster.kill(others[1])  # the quorum of controllers is gone too: nothing will be fenced

    def refused() -> str | None:
        errors: list = []
        # NOT_ENOUGH_REPLICAS is retriable: a producer retries it until its delivery timeout and
        # then reports only "timed out"; without retries it reports the broker's answer.
        strict = Producer({"bootstrap.servers": cluster.address(leader), "acks": "all", "message.timeout.ms": 5000,
                           "retries": 0})
        strict.produce("safe", value=b"refused", on_delivery=lambda err, msg: errors.append(err))
        strict.flush(15)
        return errors[0].name() if errors and errors[0] is not None and \
            errors[0].name() == "NOT_ENOUGH_REPLICAS" else None

    # Refused once the leader has not heard from its followers for a session (3 s here).
    assert cluster.wait_for(refused, timeout_s=60, what="acks=all to be refused") == "NOT_ENOUGH_REPLICAS"

    relaxed = Producer({"bootstrap.servers": cluster.address(leader), "acks": "1"})
    delivered: list = []
    relaxed.produce("safe", value=b"accepted", on_delivery=lambda err, msg: delivered.append(err))
    relaxed.flush(20)
    assert delivered == [None]

    consumed = moldau("consume", "safe", "--from-beginning", "--max-messages", "10", "--bootstrap-server",
                      cluster.address(leader), timeout=60)
    assert consumed.stdout.splitlines() == [f"before-{i}" for i in range(10)], consumed.stderr
    assert "refused" not in consumed.stdout


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
    duplicate = re.sub(r"metrics\.port=.*", "metrics.port=0", duplicate)  # node 1 serves its own
    (tmp_path / "dup.properties").write_text(duplicate)
    process = subprocess.run([*moldau_command(), "server", str(tmp_path / "dup.properties")],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode != 0 and "node.id 1" in process.stderr, process.stderr


def moldau_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "moldau"]


def test_kafkas_quorum_and_log_tools_read_a_moldau_cluster(cluster):
    """kafka-metadata-quorum describes the quorum (DescribeQuorum, forwarded to its leader) and
    kafka-dump-log decodes the metadata log: Kafka's record format, Kafka's control records."""
    need_kafka()
    status = _tool("kafka-metadata-quorum.sh", "--bootstrap-server", cluster.address(1), "describe", "--status")
    assert re.search(r"LeaderId:\s+[123]", status) and "CurrentVoters:" in status, status
    assert all(f'"id": {n}' in status or f'"id":{n}' in status for n in (1, 2, 3)), status
    replication = _tool("kafka-metadata-quorum.sh", "--bootstrap-server", cluster.address(2), "describe", "--replication")
    rows = [line for line in replication.splitlines()[1:] if line.strip()]
    assert len(rows) == 3 and all(("Leader" in r or "Follower" in r) for r in rows), replication
    moldau("topics", "create", "dumped", "-p", "2", "-r", "3", "--bootstrap-server", cluster.bootstrap_servers)
    segment = cluster.node_dir(1) / "__cluster_metadata-0" / "00000000000000000000.log"
    dump = _tool("kafka-dump-log.sh", "--cluster-metadata-decoder", "--files", str(segment))
    for kind in ("REGISTER_BROKER_RECORD", "TOPIC_RECORD", "PARTITION_RECORD", "LeaderChange"):
        assert kind in dump, f"{kind} not in kafka-dump-log's output:\n{dump[-3000:]}"
    assert '"name":"dumped"' in dump.replace(" ", "")


def test_preferred_leader_election_and_reassignment_with_kafkas_tools(cluster, tmp_path):
    need_kafka()
    bootstrap = cluster.address(1)
    _tool("kafka-topics.sh", "--create", "--bootstrap-server", bootstrap, "--topic", "moved",
          "--replica-assignment", "1:2")
    cluster.wait_for(lambda: cluster.partition_state("moved")[2] == [1, 2], what="ISR 1,2")
    plan = tmp_path / "plan.json"
    plan.write_text('{"version":1,"partitions":[{"topic":"moved","partition":0,"replicas":[3,1]}]}')
    _tool("kafka-reassign-partitions.sh", "--bootstrap-server", bootstrap, "--reassignment-json-file", str(plan), "--execute")
    cluster.wait_for(lambda: "is completed" in kafka_tool("kafka-reassign-partitions.sh", [
        "--bootstrap-server", bootstrap, "--reassignment-json-file", str(plan), "--verify"]).stdout,
        timeout_s=90, what="the reassignment to complete")
    leader, replicas, isr = cluster.partition_state("moved")
    assert replicas == [3, 1] and sorted(isr) == [1, 3]
    if leader != 3:  # the preferred leader (first replica) takes over on request
        _tool("kafka-leader-election.sh", "--bootstrap-server", bootstrap, "--election-type", "preferred",
              "--topic", "moved", "--partition", "0")
    cluster.wait_for(lambda: cluster.partition_state("moved")[0] == 3, what="node 3 leading")
    _tool("kafka-topics.sh", "--alter", "--bootstrap-server", bootstrap, "--topic", "moved", "--partitions", "3")
    assert "PartitionCount: 3" in _tool("kafka-topics.sh", "--describe", "--bootstrap-server", bootstrap, "--topic", "moved")


def test_moldau_topics_reassign(cluster):
    created = moldau("topics", "create", "shifted", "-p", "2", "-r", "2", "--bootstrap-server", cluster.bootstrap_servers)
    assert created.returncode == 0, created.stderr
    moved = moldau("topics", "reassign", "shifted", "--replicas", "2,3", "--wait",
                   "--bootstrap-server", cluster.bootstrap_servers, timeout=320)
    assert moved.returncode == 0 and "complete" in moved.stdout, moved.stderr
    for partition in (0, 1):
        assert cluster.partition_state("shifted", partition)[1] == [2, 3]
    idle = moldau("topics", "reassign", "--bootstrap-server", cluster.bootstrap_servers)
    assert "No reassignment in progress" in idle.stdout


def test_health_ready_waits_for_a_quorum_on_a_cluster(cluster):
    """A node without a quorum is live but not ready: /health/ready answers 503 with why, until
    it has registered with an active controller and caught up (BrokerCore.running)."""
    import json
    import time
    import urllib.error
    import urllib.request

    def get(node_id: int, path: str) -> tuple[int, dict | str]:
        url = f"http://127.0.0.1:{cluster.base_port + 200 + node_id - 1}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
                return response.status, json.loads(body) if path == "/health/ready" else body
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode())

    assert get(1, "/health/ready")[0] == 200
    for node_id in (1, 2, 3):
        cluster.kill(node_id)
    # Start node 1 alone, without waiting for it (it cannot become ready: 1 of 3 voters).
    log = open(cluster.directory + "/node-1.alone.log", "wb")
    process = subprocess.Popen([*moldau_command(), "server", cluster.directory + "/node-1.properties"],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(1, "/health/live")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(2)  # well past an election timeout: still no quorum
        status, body = get(1, "/health/ready")
        assert status == 503 and "controller" in body["reason"], body
        cluster.start(2)  # a majority again: node 1 registers and catches up
        deadline = time.monotonic() + 60
        while get(1, "/health/ready")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert get(1, "/health/ready")[0] == 200
    finally:
        process.terminate()
        process.wait(30)
        log.close()
