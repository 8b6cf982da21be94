"""Dynamic broker configs as Apache Kafka 4.1.1 takes them: every key its docs mark per-broker or
cluster-wide is accepted, stored and described; read-only keys, bad values and per-broker keys
at the cluster-wide level are refused with Kafka's error and sentence. The same raw requests
run against Moldau and Kafka, and must get the same answers."""

from __future__ import annotations

import pytest
from kio.schema.alter_configs.v2.request import AlterableConfig as LegacyConfig
from kio.schema.alter_configs.v2.request import AlterConfigsRequest
from kio.schema.alter_configs.v2.request import AlterConfigsResource as LegacyResource
from kio.schema.describe_configs.v4.request import DescribeConfigsRequest, DescribeConfigsResource
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kio.static.primitive import i8

import rawclient
from moldau.connect.testing import wait_until
from moldau.testing.kafka_dist import KafkaServer, need_kafka

pytestmark = pytest.mark.integration

BROKER = 4
DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG = 2, 3


class _Address:
    def __init__(self, bootstrap: str):
        host, port = bootstrap.rsplit(":", 1)
        self.host, self.port = host, int(port)


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def backend(request):
    if request.param == "kafka":
        need_kafka()
        with KafkaServer() as kafka:
            yield _Address(kafka.bootstrap_servers)
    else:
        import moldau

        with moldau.Broker() as broker:
            yield _Address(broker.bootstrap_servers)


def _set(address, entity: str, key: str, value: str | None) -> tuple[str, str | None]:
    operation = i8(0 if value is not None else 1)  # SET, DELETE
    request = IncrementalAlterConfigsRequest(validate_only=False, resources=(AlterConfigsResource(
        resource_type=i8(BROKER), resource_name=entity,
        configs=(AlterableConfig(name=key, config_operation=operation, value=value),)),))
    response = rawclient.call(address, 44, 1, request).responses[0]
    return response.error_code.name, response.error_message


def _describe(address, entity: str) -> dict:
    request = DescribeConfigsRequest(include_synonyms=False, include_documentation=False, resources=(
        DescribeConfigsResource(resource_type=i8(BROKER), resource_name=entity, configuration_keys=None),))
    return {entry.name: entry for entry in rawclient.call(address, 32, 4, request).results[0].configs}


ACCEPTED = [
    ("1", "sasl.kerberos.min.time.before.relogin", "60000", 5),  # per-broker (the example)
    ("", "log.cleaner.threads", "2", 3),  # cluster-wide
    ("1", "num.io.threads", "4", 3),
    ("1", "compression.gzip.level", "5", 3),
    ("1", "max.connections.per.ip.overrides", "127.0.0.1:100", 2),
    ("1", "listener.name.plaintext.sasl.enabled.mechanisms", "PLAIN", 7),
    ("1", "log.retention.ms", "123456", 5),
    ("", "max.connections", "100", 3),
]


@pytest.mark.parametrize("entity, key, value, config_type", ACCEPTED)
def test_dynamic_keys_are_accepted_stored_and_described(backend, entity, key, value, config_type):
    dynamic = DYNAMIC_BROKER_CONFIG if entity else DYNAMIC_DEFAULT_BROKER_CONFIG
    assert _set(backend, entity, key, value) == ("none", None)
    # Kafka applies the committed record a moment later: describe until it shows.
    entry = wait_until(lambda: _describe(backend, entity).get(key),
                       lambda e: e is not None and e.config_source == dynamic and e.value == value,
                       timeout_s=10, what=key)
    assert entry.config_type == config_type
    assert _set(backend, entity, key, None) == ("none", None)
    wait_until(lambda: _describe(backend, entity).get(key), lambda e: e is None or e.config_source != dynamic,
               timeout_s=10, what=f"{key} deleted")


REFUSED = [
    ("1", "num.partitions", "3", "Cannot update these configs dynamically: Set(num.partitions)"),
    ("1", "log.dirs", "/x", "Cannot update these configs dynamically: Set(log.dirs)"),
    ("1", "broker.id", "3", "Cannot update these configs dynamically: Set(broker.id)"),
    ("", "sasl.kerberos.min.time.before.relogin", "60000", "Cannot update these configs at default cluster level, "
     "broker id must be specified: Set(sasl.kerberos.min.time.before.relogin)"),
    ("1", "sasl.kerberos.min.time.before.relogin", "abc",
     "Invalid value abc for configuration sasl.kerberos.min.time.before.relogin: Not a number of type LONG"),
    ("1", "background.threads", "0", "Invalid value 0 for configuration background.threads: Value must be at least 1"),
    ("1", "ssl.keystore.password", "secret", "These security configs can be dynamically updated only per-listener "
     "using the listener prefix: HashSet(ssl.keystore.password)"),
    ("2", "log.cleaner.threads", "3", "Unexpected broker id, expected 1, but received 2"),
]


@pytest.mark.parametrize("entity, key, value, message", REFUSED)
def test_read_only_keys_and_bad_values_get_kafkas_answer(backend, entity, key, value, message):
    assert _set(backend, entity, key, value) == ("invalid_request", message)


def test_legacy_alter_configs_refuses_read_only_keys_too(backend):
    request = AlterConfigsRequest(validate_only=False, resources=(LegacyResource(
        resource_type=i8(BROKER), resource_name="1", configs=(LegacyConfig(name="log.cleaner.threads", value="4"),
                                                              LegacyConfig(name="num.partitions", value="2"))),))
    response = rawclient.call(backend, 33, 2, request).responses[0]
    assert (response.error_code.name, response.error_message) == (
        "invalid_request", "Cannot update these configs dynamically: Set(num.partitions)")
    assert _describe(backend, "1")["num.partitions"].read_only
