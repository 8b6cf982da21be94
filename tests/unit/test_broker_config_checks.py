"""Dynamic broker configs: Kafka's checks (controller/broker_configs.py) and the keys Moldau
applies at once — topic defaults, and connection limits."""

import pytest
from kio.schema.errors import ErrorCode

from moldau.controller import broker_configs
from moldau.controller.configs import ConfigError
from moldau.log.memory_fs import MemoryFileSystem
from moldau.testing.node import LocalNode


@pytest.mark.parametrize("changes, per_broker, message", [
    ({"num.partitions": "3"}, True, "Cannot update these configs dynamically: Set(num.partitions)"),
    ({"listener.name.plaintext.num.partitions": "3"}, True,
     "Cannot update these configs dynamically: Set(listener.name.plaintext.num.partitions)"),
    ({"ssl.truststore.location": "/x"}, True, "only per-listener using the listener prefix"),
    ({"background.threads": "x"}, True, "Invalid value x for configuration background.threads: Not a number of type INT"),
    ({"compression.zstd.level": "23"}, True, "Value must be no more than 22"),
    ({"compression.gzip.level": "0"}, True, "Value must be between 1 and 9, or -1"),
    ({"ssl.client.auth": "maybe"}, True, "String must be one of: required, requested, none"),
    ({"transaction.partition.verification.enable": "yes"}, True, "Expected value to be either true or false"),
    ({"listener.name.sasl_ssl.ssl.keystore.password": "p"}, False, "broker id must be specified"),
])
def test_refusals_use_kafkas_error_and_sentence(changes, per_broker, message):
    with pytest.raises(ConfigError) as caught:
        broker_configs.validate(changes, per_broker)
    assert caught.value.error_code == ErrorCode.invalid_request and message in str(caught.value)


def test_accepted_keys_and_what_describe_reports():
    accepted = {"compression.gzip.level": "-1", "listener.name.sasl_ssl.ssl.keystore.password": "p",
                "leader.replication.throttled.rate": "100", "my.custom.key": "anything", "num.io.threads": None}
    assert broker_configs.validate(accepted, per_broker=True) == accepted
    assert broker_configs.is_sensitive("listener.name.sasl_ssl.ssl.keystore.password")
    assert broker_configs.is_read_only("log.dirs") and not broker_configs.is_read_only("log.cleaner.threads")
    assert broker_configs.config_type("sasl.kerberos.min.time.before.relogin") == 5  # LONG


def test_dynamic_connection_limits_apply_at_once_and_after_a_restart():
    """max.connections (and the per-IP limits) are dynamic broker configs Moldau implements."""
    fs = MemoryFileSystem()
    node = LocalNode(fs)
    core = node.core
    assert core.connection_limits.admit("10.0.0.1", 2_000) is None
    core.controller.alter_configs(4, "", {"max.connections": "1", "max.connections.per.ip.overrides": "10.0.0.9:0"})
    node.pump()  # committed by the metadata quorum (of one) and applied
    assert core.connection_limits.admit("10.0.0.2", 2_001) == "max.connections (1) reached"
    core.controller.alter_configs(4, "1", {"max.connections": "5"})  # this broker's beats the default
    node.pump()
    assert core.connection_limits.admit("10.0.0.2", 2_002) is None
    assert "10.0.0.9" in core.connection_limits.admit("10.0.0.9", 2_003)
    core.close()
    reopened = LocalNode(fs).core
    assert reopened.connection_limits.max_connections == 5
    assert reopened.connection_limits.per_ip_overrides == {"10.0.0.9": 0}
