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


@pytest.mark.parametrize("key, value, expected", [
    ("listeners", "garbage", "expected NAME://host:port"),
    ("listeners", "PLAINTEXT://:70000", "expected 0-65535"),
    ("advertised.listeners", "PLAINTEXT://host:port", "expected NAME://host:port"),
    ("metrics.port", "http", "expected a port number from 0 to 65535"),
    ("node.id", "one", "expected a 32-bit integer of at least 0"),
    ("num.partitions", "99999999999", "expected a 32-bit integer of at least 1"),
    ("default.replication.factor", "40000", "expected a 16-bit integer of at least 1"),
    ("connections.max.idle.ms", "soon", "expected a 64-bit integer"),
    ("auto.create.topics.enable", "yes", "expected true or false"),
    ("log.retention.ms", "a week", "expected a 64-bit integer of at least -1"),
    ("log.segment.bytes", "-5", "expected a 32-bit integer of at least 14"),
    ("log.cleanup.policy", "tidy", "expected a comma-separated list of delete, compact"),
    ("compression.type", "rar", "expected one of uncompressed, zstd"),
    ("log.cleaner.min.cleanable.ratio", "2", "outside [0, 1]"),
    ("log.retention.hours", "1.5", "expected a 64-bit integer"),
    ("log.roll.hours", "0", "once converted to log.roll.ms"),
])
def test_every_bad_value_names_the_key_and_the_expected_form(key, value, expected):
    with pytest.raises(ConfigFileError) as caught:
        BrokerConfig.from_properties({key: value})
    message = str(caught.value)
    assert key in message and expected in message
    assert "literal" not in message and "\n" not in message


def test_negative_retention_in_hours_means_unlimited():
    assert BrokerConfig.from_properties({"log.retention.hours": "-1"}).log_defaults["log.retention.ms"] == "-1"


def _shipped_lines():
    """(key, value, active) of every `key=value` line of config/server.properties, commented or not."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "config" / "server.properties").read_text()
    for line in text.splitlines():
        stripped = line.lstrip("#").strip()
        if "=" in stripped and " " not in stripped.partition("=")[0]:
            key, _, value = stripped.partition("=")
            yield key, value, not line.startswith("#")


def test_shipped_server_properties_lists_every_key_with_its_default():
    from moldau.broker.config import known_keys
    from moldau.controller.configs import BROKER_KEY_CONFIGS

    lines = list(_shipped_lines())
    assert sorted(known_keys() - {key for key, _value, _active in lines}) == []
    defaults = BrokerConfig()
    for key, value, _active in lines:
        if key == "cluster.id":
            continue  # generated at the first start
        config = BrokerConfig.from_properties({key: value})
        assert config.warnings == [], key
        for field in ("node_id", "host", "port", "data_dir", "num_partitions", "default_replication_factor",
                      "auto_create_topics_enable", "delete_topic_enable", "message_max_bytes",
                      "socket_request_max_bytes", "connections_max_idle_ms", "log_retention_check_interval_ms",
                      "offsets_topic_num_partitions", "group_initial_rebalance_delay_ms",
                      "group_min_session_timeout_ms", "group_max_session_timeout_ms", "offsets_retention_ms"):
            if key != "advertised.listeners":
                assert getattr(config, field) == getattr(defaults, field), (key, field)
        for name, set_value in config.log_defaults.items():  # topic defaults: Kafka's, as documented
            assert set_value == BROKER_KEY_CONFIGS[name].default, (key, name, set_value)


def test_shipped_server_properties_starts_a_single_node():
    config = BrokerConfig.from_properties({key: value for key, value, active in _shipped_lines() if active})
    assert config.warnings == []
    assert (config.node_id, config.host, config.port, config.data_dir) == (1, "127.0.0.1", 9092, "./moldau-data")


def test_storage_and_request_memory_keys() -> None:
    config = BrokerConfig.from_properties({"log.dir.free.bytes.min": "0", "queued.max.request.bytes": "-1"})
    assert (config.log_dir_free_bytes_min, config.queued_max_request_bytes) == (0, -1)
    assert not config.warnings
    defaults = BrokerConfig()
    assert defaults.log_dir_free_bytes_min == 4 * 1024 * 1024
    assert defaults.queued_max_request_bytes == 128 * 1024 * 1024
    for key, value in (("log.dir.free.bytes.min", "-1"), ("queued.max.request.bytes", "-2")):
        with pytest.raises(ConfigFileError):
            BrokerConfig.from_properties({key: value})
