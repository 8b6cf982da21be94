"""Kafka's own tools against a secured Moldau: kafka-configs creates SCRAM users and quotas,
kafka-acls manages ACLs, all over SASL_SSL with --command-config."""

import pytest
from confluent_kafka.admin import AdminClient

from moldau import Broker
from moldau.testing.kafka_dist import kafka_tool, need_kafka

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    need_kafka()
    directory = tmp_path_factory.mktemp("kafka-tools")
    with Broker(data_dir=str(directory / "data"), security="SASL_SSL", users={"admin": "admin-secret"},
                authorizer=True, super_users=["admin"]) as broker:
        config = directory / "admin.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in broker.java_client_config("admin").items()
                                  if k != "bootstrap.servers"))
        yield broker, ["--bootstrap-server", broker.bootstrap_servers, "--command-config", str(config)]


def _tool(name, args):
    result = kafka_tool({"kafka-acls": "org.apache.kafka.tools.AclCommand"}.get(name, name), args, timeout=150)
    assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    return result.stdout


def test_kafka_configs_scram_users_and_quotas(secured):
    broker, common = secured
    _tool("kafka-configs", [*common, "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=bob-secret]",
                            "--entity-type", "users", "--entity-name", "bob"])
    described = _tool("kafka-configs", [*common, "--describe", "--entity-type", "users", "--entity-name", "bob"])
    assert "SCRAM-SHA-512=iterations=8192" in described
    bob = {**broker.client_config("admin"), "sasl.username": "bob", "sasl.password": "bob-secret"}
    assert AdminClient(bob).list_topics(timeout=15).cluster_id  # bob can log in now
    _tool("kafka-configs", [*common, "--alter", "--add-config", "producer_byte_rate=1024,consumer_byte_rate=2048",
                            "--entity-type", "users", "--entity-name", "bob"])
    described = _tool("kafka-configs", [*common, "--describe", "--entity-type", "users", "--entity-name", "bob"])
    assert "producer_byte_rate=1024" in described and "consumer_byte_rate=2048" in described
    _tool("kafka-configs", [*common, "--alter", "--delete-config", "SCRAM-SHA-512", "--entity-type", "users",
                            "--entity-name", "bob"])
    assert "SCRAM" not in _tool("kafka-configs", [*common, "--describe", "--entity-type", "users", "--entity-name", "bob"])


def test_kafka_acls_add_list_remove(secured):
    _broker, common = secured
    _tool("kafka-acls", [*common, "--add", "--allow-principal", "User:carol", "--operation", "Read",
                         "--topic", "reports", "--resource-pattern-type", "prefixed"])
    listed = _tool("kafka-acls", [*common, "--list", "--topic", "reports", "--resource-pattern-type", "prefixed"])
    assert "User:carol" in listed and "READ" in listed.upper()
    _tool("kafka-acls", [*common, "--remove", "--force", "--allow-principal", "User:carol", "--operation", "Read",
                         "--topic", "reports", "--resource-pattern-type", "prefixed"])
    assert "User:carol" not in _tool("kafka-acls", [*common, "--list"])
