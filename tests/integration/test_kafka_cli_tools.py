"""Apache Kafka's own CLI tools (4.x jars from Maven Central) against moldau: the quickstart."""

import pytest

from moldau.testing.kafka_dist import kafka_tool, need_kafka


@pytest.fixture
def bootstrap(moldau_broker):
    need_kafka()
    return moldau_broker.bootstrap_servers


def _tool(name, *args, input=None, timeout=120):
    result = kafka_tool(name, list(args), input=input, timeout=timeout)
    assert result.returncode == 0, f"{name} exited {result.returncode}: {result.stderr[-3000:]}"
    return result.stdout


def test_quickstart_topics_console_producer_and_consumer(bootstrap):
    _tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "quickstart-events",
          "--partitions", "3", "--replication-factor", "1")
    listed = _tool("kafka-topics", "--bootstrap-server", bootstrap, "--list")
    assert "quickstart-events" in listed.split()
    described = _tool("kafka-topics", "--bootstrap-server", bootstrap, "--describe", "--topic", "quickstart-events")
    assert "PartitionCount: 3" in described and "ReplicationFactor: 1" in described
    assert described.count("Leader: 1") == 3
    _tool("kafka-console-producer", "--bootstrap-server", bootstrap, "--topic", "quickstart-events",
          input="This is my first event\nThis is my second event\n")
    consumed = _tool("kafka-console-consumer", "--bootstrap-server", bootstrap, "--topic", "quickstart-events",
                     "--from-beginning", "--max-messages", "2", "--timeout-ms", "30000")
    assert sorted(consumed.splitlines()) == ["This is my first event", "This is my second event"]


def test_topics_errors_come_back_as_kafka_errors(bootstrap):
    _tool("kafka-topics", "--bootstrap-server", bootstrap, "--create", "--topic", "dup", "--partitions", "1")
    again = kafka_tool("kafka-topics", ["--bootstrap-server", bootstrap, "--create", "--topic", "dup"])
    assert again.returncode != 0 and "already exists" in (again.stdout + again.stderr)
