"""Kafka's admin tools whose APIs have one honest answer on a single node (4.x jars from Maven Central).

kafka-acls (no authorizer: SECURITY_DISABLED), kafka-leader-election (every partition already
led by its preferred replica: ELECTION_NOT_NEEDED), kafka-reassign-partitions --list (nothing
moving), kafka-transactions describe-producers (the idempotent producers a partition tracks).
"""

import pytest

from moldau.testing.kafka_dist import kafka_tool, need_kafka

ACLS = "org.apache.kafka.tools.AclCommand"
LEADER_ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
TRANSACTIONS = "org.apache.kafka.tools.TransactionsCommand"


@pytest.fixture
def bootstrap(moldau_broker):
    need_kafka()
    return moldau_broker.bootstrap_servers


def _create(bootstrap, topic, partitions=2):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def test_kafka_acls_says_security_is_disabled(bootstrap):
    listed = kafka_tool(ACLS, ["--bootstrap-server", bootstrap, "--list"])
    added = kafka_tool(ACLS, ["--bootstrap-server", bootstrap, "--add", "--allow-principal", "User:alice",
                              "--operation", "Read", "--topic", "orders"])
    removed = kafka_tool(ACLS, ["--bootstrap-server", bootstrap, "--remove", "--allow-principal", "User:alice",
                                "--operation", "Read", "--topic", "orders", "--force"])
    for result in (listed, added, removed):
        output = result.stdout + result.stderr
        assert "SecurityDisabledException" in output or "Security features are disabled" in output, output[-2000:]
        assert "UnsupportedVersion" not in output


def test_preferred_leader_election_is_not_needed(bootstrap):
    _create(bootstrap, "elect-me")
    named = kafka_tool(LEADER_ELECTION, ["--bootstrap-server", bootstrap, "--election-type", "preferred",
                                         "--topic", "elect-me", "--partition", "0"])
    assert "Valid replica already elected for partitions elect-me-0" in named.stdout, named.stdout + named.stderr
    every = kafka_tool(LEADER_ELECTION, ["--bootstrap-server", bootstrap, "--election-type", "preferred",
                                         "--all-topic-partitions"])
    assert every.returncode == 0, every.stderr[-2000:]
    assert "No election needed" in every.stdout or every.stdout.strip() == "", every.stdout
    unknown = kafka_tool(LEADER_ELECTION, ["--bootstrap-server", bootstrap, "--election-type", "preferred",
                                           "--topic", "no-such-topic", "--partition", "0"])
    assert unknown.returncode != 0 and "UnknownTopicOrPartition" in unknown.stdout + unknown.stderr


def test_no_reassignments_in_progress(bootstrap):
    _create(bootstrap, "stay-put")
    listed = kafka_tool(REASSIGN, ["--bootstrap-server", bootstrap, "--list"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "No partition reassignments found." in listed.stdout


def test_describe_producers_shows_the_idempotent_producer(bootstrap):
    from confluent_kafka import Producer

    _create(bootstrap, "tracked", 1)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(5):
        producer.produce("tracked", value=f"v{i}".encode())
        producer.flush(30)  # five batches: sequences 0..4
    described = kafka_tool(TRANSACTIONS, ["--bootstrap-server", bootstrap, "describe-producers",
                                          "--topic", "tracked", "--partition", "0"])
    assert described.returncode == 0, described.stderr[-2000:]
    header, *rows = [line.split() for line in described.stdout.strip().splitlines()]
    assert header[:3] == ["ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    assert row["ProducerEpoch"] == "0" and row["LastSequence"] == "4" and row["CurrentTransactionStartOffset"] == "None"
