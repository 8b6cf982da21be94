"""Worker and connector config validation: every problem at once, in Kafka's words."""

import pytest

from moldau.connect.config import WORKER_CONFIG, ConfigDef, ConfigError, at_least
from moldau.connect.herder import invalid_config_message, validate_connector_config
from moldau.connect.plugins import connector_class, connector_plugins, converter_class
from moldau.connect.file import FileStreamSinkConnector, FileStreamSourceConnector
from moldau.connect.standalone import StandaloneWorker


def test_config_def_types_defaults_and_all_errors():
    definition = (ConfigDef().define("a", "int", 1, validator=at_least(1)).define("b", "boolean", False)
                  .define("c").define("d", "list", []))
    values, errors = definition.parse({"a": "0", "b": "maybe", "d": "x, y,,z", "extra": "kept"})
    assert errors == [
        "Invalid value 0 for configuration a: Value must be at least 1",
        "Invalid value maybe for configuration b: Expected value to be either true or false",
        'Missing required configuration "c" which has no default value.',
    ]
    assert values["d"] == ["x", "y", "z"] and values["extra"] == "kept"
    with pytest.raises(ConfigError):
        definition.validate({"a": "x"})
    assert definition.validate({"c": "v"})["a"] == 1


def test_worker_defaults_and_required_offsets_file():
    values, errors = WORKER_CONFIG.parse({})
    assert errors == ['Missing required configuration "offset.storage.file.filename" which has no default value.']
    assert values["listeners"] == ["http://:8083"] and values["offset.flush.interval.ms"] == 60000


def test_worker_rejects_bad_numbers(tmp_path):
    with pytest.raises(ConfigError, match="offset.flush.interval.ms"):
        StandaloneWorker({"offset.storage.file.filename": str(tmp_path / "o"), "offset.flush.interval.ms": "soon"})


@pytest.mark.parametrize("name", [
    "FileStreamSource", "FileStreamSourceConnector", "org.apache.kafka.connect.file.FileStreamSourceConnector",
])
def test_source_aliases(name):
    assert connector_class(name) is FileStreamSourceConnector


def test_sink_alias_and_python_path():
    assert connector_class("FileStreamSink") is FileStreamSinkConnector
    assert connector_class("moldau.connect.file:FileStreamSinkConnector") is FileStreamSinkConnector
    assert connector_class("moldau.connect.file.FileStreamSinkConnector") is FileStreamSinkConnector


def test_unknown_connector_class_lists_what_exists():
    with pytest.raises(ConfigError, match="Failed to find any class that implements Connector and which name matches Nope.*FileStreamSource"):
        connector_class("Nope")
    with pytest.raises(ConfigError):
        connector_class("moldau.connect.api.SinkRecord")  # importable, but not a connector


def test_converter_lookup():
    assert converter_class("org.apache.kafka.connect.storage.StringConverter").__name__ == "StringConverter"
    assert converter_class("JsonConverter").__name__ == "JsonConverter"
    with pytest.raises(ConfigError, match="cannot be found"):
        converter_class("com.example.Missing")


def test_valid_source_and_sink():
    source = {"name": "s", "connector.class": "FileStreamSource", "file": "in.txt", "topic": "t"}
    assert validate_connector_config(source)[1] == []
    sink = {"name": "k", "connector.class": "FileStreamSink", "file": "out.txt", "topics": "t"}
    assert validate_connector_config(sink)[1] == []


def test_source_errors_reported_together():
    _, errors = validate_connector_config({"name": "s", "connector.class": "FileStreamSource", "tasks.max": "0", "batch.size": "x"})
    assert "Invalid value 0 for configuration tasks.max: Value must be at least 1" in errors
    assert 'Missing required configuration "topic" which has no default value.' in errors
    assert any("batch.size" in e for e in errors)


def test_source_topic_must_be_single():
    _, errors = validate_connector_config({"name": "s", "connector.class": "FileStreamSource", "topic": "a,b"})
    assert errors == ["'topic' in FileStreamSourceConnector configuration requires definition of a single topic"]


def test_sink_needs_exactly_one_of_topics_and_regex():
    base = {"name": "k", "connector.class": "FileStreamSink"}
    assert validate_connector_config(base)[1] == ["Must configure one of topics or topics.regex"]
    both = dict(base, topics="t", **{"topics.regex": "t.*"})
    assert validate_connector_config(both)[1] == ["topics and topics.regex are mutually exclusive options, but both are set."]


def test_missing_name_and_class():
    _, errors = validate_connector_config({})
    assert errors == ['Missing required configuration "name" which has no default value.',
                      'Missing required configuration "connector.class" which has no default value.']


def test_bad_converter_override():
    _, errors = validate_connector_config({"name": "s", "connector.class": "FileStreamSource", "topic": "t",
                                           "value.converter": "JsonConverter", "value.converter.schemas.enable": "perhaps"})
    assert errors == ["value.converter: schemas.enable: expected true or false, got 'perhaps'"]


def test_invalid_message_shape():
    message = invalid_config_message(["one.", "two."])
    assert message.startswith("Connector configuration is invalid and contains the following 2 error(s):\none.\ntwo.\n")


def test_plugins_listing():
    plugins = connector_plugins()
    assert [p["class"] for p in plugins] == ["org.apache.kafka.connect.file.FileStreamSinkConnector",
                                             "org.apache.kafka.connect.file.FileStreamSourceConnector"]
    assert [p["type"] for p in plugins] == ["sink", "source"]


def test_listener_port_and_host_notice():
    from moldau.connect.rest import listener_port

    assert listener_port(["http://:8083"]) == (8083, None)
    assert listener_port(["http://localhost:9999"]) == (9999, None)
    assert listener_port(["127.0.0.1:0"]) == (0, None)
    port, notice = listener_port(["http://0.0.0.0:8084"])
    assert port == 8084 and notice == "listeners asks for host '0.0.0.0'; the REST API binds 127.0.0.1 only"
    with pytest.raises(ConfigError, match="only http is supported"):
        listener_port(["https://:8443"])


def test_plugin_path_is_accepted_with_a_notice(tmp_path, capfd):
    worker = StandaloneWorker({"offset.storage.file.filename": str(tmp_path / "o"), "plugin.path": "/usr/share/java",
                               "listeners": "http://:0"})
    assert worker.rest_port == 0
    assert "plugin.path is ignored" in capfd.readouterr().err


def test_unwritable_offsets_file_fails_the_source_connector_not_a_sink_only_worker(tmp_path, capfd):
    (tmp_path / "file").write_text("")
    offsets = str(tmp_path / "file" / "offsets")
    worker = StandaloneWorker({"offset.storage.file.filename": offsets, "listeners": "http://:0",
                               "bootstrap.servers": "127.0.0.1:1"})
    worker.add_connector({"name": "src", "connector.class": "FileStreamSource", "topic": "t",
                          "file": str(tmp_path / "in.txt")})
    status = worker.herder.connector_status("src")
    assert status["connector"]["state"] == "FAILED"
    assert f"offsets file {offsets}: Not a directory" in status["connector"]["trace"]
    assert f"connector src failed to start: cannot read offsets file {offsets}" in capfd.readouterr().err
    worker.stop()


def test_unknown_worker_keys_are_warned_about(tmp_path, capfd):
    StandaloneWorker({"offset.storage.file.filename": str(tmp_path / "o"), "bootstrap.server": "x:9092",
                      "producer.linger.ms": "5", "rest.advertised.port": "8083", "value.converter.schemas.enable": "false",
                      "tpyo": "1"})
    err = capfd.readouterr().err
    assert "ignoring unknown worker config keys: bootstrap.server (did you mean bootstrap.servers?), tpyo" in err
    assert "producer.linger.ms" not in err and "rest.advertised.port" not in err
