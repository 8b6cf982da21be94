"""Real clients over SASL_SSL with SCRAM-SHA-512 and over mutual TLS: confluent-kafka, kcat,
kafka-python, aiokafka, the Java client through Kafka's console tools, KafkaJS and franz-go.
Each produces the shared workload's keyed messages and reads them back in a consumer group.

Security settings reach the client programs of tests/clients/ through MOLDAU_TEST_* variables
(SECURITY_PROTOCOL, SSL_CA/SSL_CERT/SSL_KEY, SASL_MECHANISM/SASL_USERNAME/SASL_PASSWORD).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import workload
from moldau import Broker
from moldau.testing.tools import need, need_executable

pytestmark = pytest.mark.integration
COUNT = 1000
USERS = {"admin": "admin-secret", "alice": "alice-secret"}
CLIENTS = Path(__file__).resolve().parents[1] / "clients"


@pytest.fixture(scope="module", params=["SASL_SSL", "SSL"])
def broker(request, tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("data")), security=request.param, users=USERS,
                config={"num.partitions": str(workload.PARTITIONS)}) as broker:
        yield broker


def _env(broker) -> dict[str, str]:
    env = {"MOLDAU_TEST_SECURITY_PROTOCOL": broker.security, "MOLDAU_TEST_SSL_CA": broker.certs.ca}
    if broker.security == "SSL":
        env.update(MOLDAU_TEST_SSL_CERT=broker.certs.path("client.crt"), MOLDAU_TEST_SSL_KEY=broker.certs.path("client.key"))
    else:
        env.update(MOLDAU_TEST_SASL_MECHANISM="SCRAM-SHA-512", MOLDAU_TEST_SASL_USERNAME="alice",
                   MOLDAU_TEST_SASL_PASSWORD=USERS["alice"])
    return env


# --- librdkafka: confluent-kafka and kcat ----------------------------------------------------
def test_confluent_kafka(broker):
    from confluent_kafka import Consumer, Producer

    settings = broker.client_config("alice")
    topic = f"ck-{broker.security.lower()}"
    producer = Producer({**settings, "linger.ms": 5})
    for m in workload.messages(COUNT):
        producer.produce(topic, m.value, m.key, headers=list(m.headers), timestamp=m.timestamp_ms)
    assert producer.flush(30) == 0
    consumer = Consumer({**settings, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    consumed = []
    deadline = time.monotonic() + 60
    while len(consumed) < COUNT and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            consumed.append(workload.Consumed(message.partition(), message.offset(), message.key(), message.value(),
                                              tuple(message.headers() or ()), message.timestamp()[1]))
    consumer.close()
    workload.check(consumed, COUNT)


def test_kcat(broker):
    kcat = need_executable("kcat")
    settings = broker.client_config("alice")
    options = [arg for key, value in settings.items() if key != "bootstrap.servers" for arg in ("-X", f"{key}={value}")]
    topic = f"kcat-{broker.security.lower()}"
    lines = "".join(f"k{i}:v{i}\n" for i in range(200))
    subprocess.run([kcat, "-b", broker.bootstrap_servers, *options, "-P", "-t", topic, "-K:"], input=lines, text=True,
                   check=True, timeout=60, capture_output=True)
    out = subprocess.run([kcat, "-b", broker.bootstrap_servers, *options, "-G", f"g-{topic}", topic, "-o", "beginning",
                          "-c", "200", "-f", "%k:%s\n", "-X", "auto.offset.reset=earliest"],
                         text=True, check=True, timeout=90, capture_output=True).stdout
    assert sorted(out.splitlines()) == sorted(line for line in lines.splitlines())


# --- Python clients ----------------------------------------------------------------------------
def _python_ssl(broker) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=broker.certs.ca)
    context.check_hostname = False
    if broker.security == "SSL":
        context.load_cert_chain(broker.certs.path("client.crt"), broker.certs.path("client.key"))
    return context


def _python_settings(broker) -> dict:
    settings = {"bootstrap_servers": broker.bootstrap_servers, "security_protocol": broker.security,
                "ssl_context": _python_ssl(broker)}
    if broker.security == "SASL_SSL":
        settings.update(sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password=USERS["alice"])
    return settings


def test_kafka_python(broker):
    import kafka

    topic = f"kp-{broker.security.lower()}"
    producer = kafka.KafkaProducer(**_python_settings(broker))
    for m in workload.messages(COUNT):
        producer.send(topic, m.value, m.key, headers=list(m.headers), timestamp_ms=m.timestamp_ms)
    producer.flush(30)
    producer.close()
    consumer = kafka.KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                                   consumer_timeout_ms=20_000, **_python_settings(broker))
    consumed = []
    for message in consumer:
        consumed.append(workload.Consumed(message.partition, message.offset, message.key, message.value,
                                          tuple(message.headers), message.timestamp))
        if len(consumed) == COUNT:
            break
    consumer.close()
    workload.check(consumed, COUNT)


def test_aiokafka(broker):
    import aiokafka

    topic = f"aio-{broker.security.lower()}"

    async def run():
        producer = aiokafka.AIOKafkaProducer(**_python_settings(broker))
        await producer.start()
        try:
            for m in workload.messages(COUNT):
                await producer.send(topic, m.value, m.key, headers=list(m.headers), timestamp_ms=m.timestamp_ms)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                                             **_python_settings(broker))
        await consumer.start()
        consumed = []
        try:
            deadline = time.monotonic() + 60
            while len(consumed) < COUNT and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    consumed.extend(workload.Consumed(m.partition, m.offset, m.key, m.value, tuple(m.headers),
                                                      m.timestamp) for m in messages)
        finally:
            await consumer.stop()
        return consumed

    workload.check(asyncio.run(run()), COUNT)


# --- Java: Kafka's console tools ---------------------------------------------------------------
def test_java_console_tools(broker, tmp_path):
    from moldau.testing.kafka_dist import kafka_tool, need_kafka

    need_kafka()
    config = tmp_path / "client.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in broker.java_client_config("alice").items()
                              if k != "bootstrap.servers"))
    topic = f"java-{broker.security.lower()}"
    common = ["--bootstrap-server", broker.bootstrap_servers]
    created = kafka_tool("kafka-topics", [*common, "--command-config", str(config), "--create", "--topic", topic,
                                          "--partitions", "3", "--replication-factor", "1"], timeout=120)
    assert created.returncode == 0, created.stderr[-2000:]
    lines = "".join(f"event {i}\n" for i in range(100))
    produced = kafka_tool("kafka-console-producer", [*common, "--topic", topic, "--producer.config", str(config)],
                          input=lines, timeout=120)
    assert produced.returncode == 0, produced.stderr[-2000:]
    consumed = kafka_tool("kafka-console-consumer", [*common, "--topic", topic, "--consumer.config", str(config),
                                                     "--group", f"g-{topic}", "--from-beginning", "--max-messages",
                                                     "100", "--timeout-ms", "60000"], timeout=150)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    assert sorted(consumed.stdout.splitlines()) == sorted(lines.splitlines())


# --- KafkaJS and franz-go ------------------------------------------------------------------------
def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_kafkajs(broker):
    node = need_executable("node")
    need((CLIENTS / "kafkajs" / "node_modules" / "kafkajs" / "package.json").exists(),
         "KafkaJS (npm ci --prefix tests/clients/kafkajs)")
    script, env, topic = str(CLIENTS / "kafkajs" / "workload.js"), _env(broker), f"js-{broker.security.lower()}"
    _run([node, script, broker.bootstrap_servers, "create", topic, str(workload.PARTITIONS)], env)
    _run([node, script, broker.bootstrap_servers, "produce", topic, "0", str(COUNT)], env)
    out = _run([node, script, broker.bootstrap_servers, "consume", topic, str(COUNT), f"g-{topic}"], env)
    workload.check(workload.from_json_lines(out), COUNT)


@pytest.fixture(scope="module")
def franz(tmp_path_factory):
    go = need_executable("go")
    binary = tmp_path_factory.mktemp("go") / "franz"
    subprocess.run([go, "build", "-o", str(binary), "./franz"], cwd=CLIENTS / "go", check=True, timeout=600,
                   capture_output=True)
    return str(binary)


def test_franz_go(broker, franz):
    env, topic = _env(broker), f"franz-{broker.security.lower()}"
    _run([franz, broker.bootstrap_servers, "create", topic, str(workload.PARTITIONS)], env)
    _run([franz, broker.bootstrap_servers, "produce", topic, "0", str(COUNT), "none"], env)
    out = _run([franz, broker.bootstrap_servers, "consume", topic, str(COUNT), f"g-{topic}"], env)
    workload.check(workload.from_json_lines(out), COUNT)
