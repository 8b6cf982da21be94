"""Kafka's listener model in server.properties: names, protocols, advertised, inter-broker."""

import pytest

from moldau.broker.config import BrokerConfig, ConfigFileError
from moldau.broker.listeners import Listener


def test_default_is_one_plaintext_listener():
    config = BrokerConfig.from_properties({})
    assert config.listeners == [Listener("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT")]
    assert (config.host, config.port, config.advertised) == ("127.0.0.1", 9092, ("127.0.0.1", 9092))
    assert config.inter_broker_listener_name == "PLAINTEXT"


def test_several_named_listeners_with_protocol_map_and_advertised():
    config = BrokerConfig.from_properties({
        "process.roles": "broker,controller",
        "listeners": "INTERNAL://127.0.0.1:9092,EXTERNAL://:9093,CONTROLLER://127.0.0.1:9094",
        "advertised.listeners": "INTERNAL://10.0.0.1:9092,EXTERNAL://kafka.example.com:443",
        "listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "internal",
        "controller.listener.names": "CONTROLLER", "sasl.enabled.mechanisms": "SCRAM-SHA-512",
    })
    assert [(l.name, l.security_protocol) for l in config.listeners] == [
        ("INTERNAL", "SASL_PLAINTEXT"), ("EXTERNAL", "SASL_SSL"), ("CONTROLLER", "SSL")]
    assert config.listeners[1].host == "" and config.host == "127.0.0.1"
    assert [str(l) for l in config.advertised_listeners] == [
        "INTERNAL://10.0.0.1:9092", "EXTERNAL://kafka.example.com:443", "CONTROLLER://127.0.0.1:9094"]
    assert config.inter_broker_listener_name == "INTERNAL"
    assert config.controller_listener_names == ("CONTROLLER",)
    assert [l.name for l in config.listener_settings.broker_listeners] == ["INTERNAL", "EXTERNAL"]
    assert config.warnings == []


def test_kafka4_maps_controller_listener_to_plaintext_by_default():
    config = BrokerConfig.from_properties({"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
                                           "controller.listener.names": "CONTROLLER", "process.roles": "broker,controller"})
    assert config.listener_settings.listener("CONTROLLER").security_protocol == "PLAINTEXT"
    # ...but not when something else uses SSL or SASL: then the map must name it (as Kafka).
    with pytest.raises(ConfigFileError, match="no security protocol for listener CONTROLLER"):
        BrokerConfig.from_properties({"listeners": "SASL_SSL://:9092,CONTROLLER://:9093",
                                      "controller.listener.names": "CONTROLLER"})


def test_security_inter_broker_protocol_names_the_listener():
    config = BrokerConfig.from_properties({"listeners": "PLAINTEXT://:9092,SSL://:9093",
                                           "security.inter.broker.protocol": "SSL"})
    assert config.inter_broker_listener_name == "SSL"


def test_per_listener_prefix_beats_the_plain_key():
    config = BrokerConfig.from_properties({
        "listeners": "A://:9092,B://:9093", "listener.security.protocol.map": "A:SSL,B:SSL",
        "ssl.keystore.location": "/global.p12", "listener.name.b.ssl.keystore.location": "/b.p12",
    })
    assert config.listener_value("A", "ssl.keystore.location") == "/global.p12"
    assert config.listener_value("B", "ssl.keystore.location") == "/b.p12"
    assert config.warnings == []


def test_host_and_port_setters_move_the_first_broker_listener():
    config = BrokerConfig.from_properties({"listeners": "CONTROLLER://:9093,PLAINTEXT://:9092",
                                           "controller.listener.names": "CONTROLLER"})
    config.host, config.port = "127.0.0.1", 0
    assert str(config.listeners[1]) == "PLAINTEXT://127.0.0.1:0" and str(config.listeners[0]) == "CONTROLLER://:9093"
    config.listener_settings.rebind("PLAINTEXT", port=4242)
    assert config.advertised == ("127.0.0.1", 4242)


@pytest.mark.parametrize("props, message", [
    ({"listeners": "PLAINTEXT:/localhost:9092"}, "listeners: expected NAME://host:port"),
    ({"listeners": "PLAINTEXT://localhost:99999"}, "port 99999 is out of range, expected 0-65535"),
    ({"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"}, "listener name PLAINTEXT appears twice"),
    ({"listeners": "PLAINTEXT://:9092,SSL://:9092"}, "both use port 9092"),
    ({"listeners": "CLIENT://:9092"}, "no security protocol for listener CLIENT"),
    ({"listener.security.protocol.map": "CLIENT=SSL"}, "listener.security.protocol.map: expected NAME:PROTOCOL"),
    ({"listener.security.protocol.map": "PLAINTEXT:TLS"}, "listener.security.protocol.map: expected NAME:PROTOCOL"),
    ({"advertised.listeners": "SSL://host:9093"}, "advertised.listeners names SSL, which is not in listeners"),
    ({"advertised.listeners": "PLAINTEXT://0.0.0.0:9092"}, "nonroutable meta-address"),
    ({"inter.broker.listener.name": "SSL"}, "inter.broker.listener.name SSL is not a broker listener"),
    ({"inter.broker.listener.name": "PLAINTEXT", "security.inter.broker.protocol": "PLAINTEXT"}, "only one of"),
    ({"security.inter.broker.protocol": "TLS"}, "security.inter.broker.protocol: expected one of"),
    ({"process.roles": "broker,controller", "controller.listener.names": "CTRL"}, "names no listener in listeners"),
])
def test_malformed_listener_settings_give_one_line_naming_the_key(props, message):
    with pytest.raises(ConfigFileError, match=message.replace("(", r"\(")) as error:
        BrokerConfig.from_properties(props)
    assert "\n" not in str(error.value)
