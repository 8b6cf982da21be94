"""Four client families run their workload against a 3-node cluster while the leader of a
partition is killed mid-stream: librdkafka (confluent-kafka), kafka-python, the Java client
(Kafka's VerifiableProducer) and franz-go. Every acknowledged message must be in the log once,
in order per partition."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

import workload
from moldau.testing.kafka_dist import java_command, need_kafka

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _create(cluster, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    from confluent_kafka import KafkaException

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    deadline = time.monotonic() + 60
    while True:  # a new cluster's quorum may still re-elect: NOT_CONTROLLER is retriable (Java's admin retries it)
        try:
            admin.create_topics([NewTopic(topic, workload.PARTITIONS, 3,
                                          config={"min.insync.replicas": "2"})])[topic].result(30)
            break
        except KafkaException as error:
            if error.args[0].name() == "TOPIC_ALREADY_EXISTS":
                break  # an earlier attempt was committed after all
            # (librdkafka does not flag an admin result's NOT_CONTROLLER retriable; Kafka's is)
            retriable = error.args[0].retriable() or error.args[0].name() == "NOT_CONTROLLER"
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    cluster.wait_for(lambda: all(len(cluster.isr(topic, p)) == 3 for p in range(workload.PARTITIONS)),
                     what="full ISRs")


def _fail_over(cluster, topic: str, after_s: float = 1.5) -> threading.Thread:
    """Kill the leader of partition 0 after `after_s`, start it again two seconds later."""

    def run() -> None:
        time.sleep(after_s)
        victim = cluster.leader(topic, 0)
        cluster.kill(victim)
        time.sleep(2)
        cluster.restart(victim)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _read_all(cluster, topic: str) -> list[workload.Consumed]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": f"verify-{topic}",
                         "enable.auto.commit": False})
    out: list[workload.Consumed] = []
    for partition in range(workload.PARTITIONS):
        end = workload.end_offset(consumer, topic, partition)
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + 60
        position = 0
        while position < end and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error():
                continue
            out.append(workload.Consumed(message.partition(), message.offset(), message.key(), message.value(),
                                         tuple(message.headers() or ()), message.timestamp()[1]))
            position = message.offset() + 1
    consumer.close()
    return out


def test_confluent_kafka_survives_a_leader_failover(moldau_cluster):
    from confluent_kafka import Producer

    cluster, topic = moldau_cluster, "failover-librdkafka"
    _create(cluster, topic)
    errors: list = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    killer = _fail_over(cluster, topic)
    for m in workload.messages():
        producer.produce(topic, key=m.key, value=m.value, headers=list(m.headers), timestamp=m.timestamp_ms,
                         on_delivery=lambda err, _msg: err and errors.append(err))
        producer.poll(0)
        time.sleep(0.0003)
    assert producer.flush(120) == 0
    killer.join()
    assert not errors, errors[:3]
    workload.check(_read_all(cluster, topic))


def test_kafka_python_survives_a_leader_failover(moldau_cluster):
    from kafka import KafkaProducer

    cluster, topic = moldau_cluster, "failover-kafka-python"
    _create(cluster, topic)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers.split(","), acks="all",
                             enable_idempotence=True, linger_ms=5, retries=1_000_000, request_timeout_ms=10_000)
    killer = _fail_over(cluster, topic)
    futures = []
    for m in workload.messages():
        futures.append(producer.send(topic, key=m.key, value=m.value, headers=list(m.headers),
                                     timestamp_ms=m.timestamp_ms))
        time.sleep(0.0003)
    producer.flush(120)
    killer.join()
    for future in futures:
        future.get(timeout=60)
    producer.close()
    workload.check(_read_all(cluster, topic))


def test_the_java_client_survives_a_leader_failover(moldau_cluster, tmp_path):
    """Kafka's own VerifiableProducer (the producer of Kafka's replication system tests): every
    send it reports acknowledged must be in the log at the offset it was told. The tool turns
    the producer's retries off; an application's producer has them (the Java default), so they
    are turned back on: every send must then succeed across the failover."""
    need_kafka()
    cluster, topic = moldau_cluster, "failover-java"
    _create(cluster, topic)
    config = tmp_path / "producer.properties"
    config.write_text("retries=2147483647\nenable.idempotence=true\ndelivery.timeout.ms=120000\n")
    command = java_command("org.apache.kafka.tools.VerifiableProducer", [
        "--bootstrap-server", cluster.bootstrap_servers, "--topic", topic, "--max-messages", "8000",
        "--throughput", "2000", "--acks", "-1", "--producer.config", str(config)])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killer = _fail_over(cluster, topic, after_s=3)
    try:
        stdout, stderr = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
    killer.join()
    acked = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("name") == "producer_send_success":
                acked[(event["partition"], event["offset"])] = event["value"]
    errors = sorted({json.loads(line).get("exception", "") + " " + json.loads(line).get("message", "")
                     for line in stdout.splitlines() if line.startswith("{") and "producer_send_error" in line})
    assert len(acked) == 8000, f"{len(acked)} of 8000 acknowledged; errors {errors[:5]}: {stderr[-2000:]}"
    in_log = {(c.partition, c.offset): c.value.decode() for c in _read_all(cluster, topic)}
    missing = [k for k, v in acked.items() if in_log.get(k) != v]
    assert not missing, f"{len(missing)} acknowledged sends missing, e.g. {missing[:5]}"


def test_franz_go_survives_a_leader_failover(moldau_cluster, tmp_path):
    from test_clients_go import _binary  # the Go workload binaries, built once per session

    binary = _binary("franz")
    cluster, topic = moldau_cluster, "failover-franz"
    _create(cluster, topic)
    killer = _fail_over(cluster, topic, after_s=0.5)
    workload.run_client(str(binary), cluster.bootstrap_servers, "produce", topic, "0", str(workload.MESSAGES), "none",
                        timeout_s=240)
    killer.join()
    workload.check(_read_all(cluster, topic))
