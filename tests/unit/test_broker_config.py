"""server.properties parsing: Kafka's keys, alternative units, unknown keys, bad values."""

import pytest

from moldau.broker.config import BrokerConfig, ConfigFileError


def test_kafka_keys_apply():
    config = BrokerConfig.from_properties({
        "node.id": "7", "listeners": "PLAINTEXT://127.0.0.1:19092,CONTROLLER://:9093",
        "advertised.listeners": "PLAINTEXT://localhost:19092", "log.dirs": "/tmp/a,/tmp/b",
        "num.partitions": "3", "auto.create.topics.enable": "false", "log.retention.hours": "2",
        "log.segment.bytes": "1048576", "message.max.bytes": "2000000", "flush.messages": "1",
        "process.roles": "broker,controller",
    })
    assert (config.node_id, config.host, config.port) == (7, "127.0.0.1", 19092)
    assert config.advertised == ("localhost", 19092)
    assert config.data_dir == "/tmp/a" and config.num_partitions == 3
    assert config.auto_create_topics_enable is False and config.message_max_bytes == 2000000
    assert config.log_defaults["log.retention.ms"] == str(2 * 3600 * 1000)
    assert config.log_defaults["log.flush.interval.messages"] == "1"
    assert config.warnings == []


def test_precedence_of_retention_units():
    config = BrokerConfig.from_properties({"log.retention.hours": "1", "log.retention.minutes": "5"})
    assert config.log_defaults["log.retention.ms"] == "300000"
    config = BrokerConfig.from_properties({"log.retention.minutes": "5", "log.retention.ms": "7"})
    assert config.log_defaults["log.retention.ms"] == "7"


def test_unknown_keys_warn_once():
    config = BrokerConfig.from_properties({"foo": "1", "bar.baz": "2"})
    assert config.warnings == ["ignoring unknown server.properties keys: bar.baz, foo"]


@pytest.mark.parametrize("key, value", [("num.partitions", "0"), ("node.id", "x"), ("auto.create.topics.enable", "yes")])
def test_bad_values_refuse_to_start(key, value):
    with pytest.raises(ConfigFileError):
        BrokerConfig.from_properties({key: value})


def test_group_keys():
    config = BrokerConfig.from_properties({"group.min.session.timeout.ms": "1000",
                                           "group.max.session.timeout.ms": "60000",
                                           "offsets.retention.minutes": "10",
                                           "group.initial.rebalance.delay.ms": "0"})
    assert (config.group_min_session_timeout_ms, config.group_max_session_timeout_ms) == (1000, 60000)
    assert config.offsets_retention_ms == 600_000 and config.group_initial_rebalance_delay_ms == 0
    assert config.warnings == []
