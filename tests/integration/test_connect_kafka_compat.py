"""Side by side with Apache Kafka's own Connect worker (4.1.1 jars): same bytes, same REST shapes.

Both workers read the same lines with the same connector file (`config/connect-file-source.properties`,
topic renamed per worker) against one Apache Kafka broker. The records Kafka's FileStreamSource +
JsonConverter write must equal ours byte for byte; each worker's FileStreamSink reads the other's
topic and must reproduce the source file; and the REST answers must have the same shape.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from moldau.properties import dumps, load_file
from moldau.connect.offsets import OffsetFileError, OffsetStore
from moldau.connect.standalone import StandaloneWorker
from moldau.connect.testing import read_topic, rest, shared_cluster, wait_until
from moldau.testing.kafka_dist import free_port, java_command

from test_connect_lab import CONFIG

pytestmark = pytest.mark.integration

LINES = ["plain", 'quote " back \\ tab\t ctl \x01 \x1f é € 𝄞', "", "  padded  ", "{\"json\": [1, 2.5]}"]


def worker_file(path, bootstrap, offsets, port):
    worker = load_file(str(CONFIG / "connect-standalone.properties"))
    worker.update({"bootstrap.servers": bootstrap, "offset.storage.file.filename": str(offsets),
                   "listeners": f"http://127.0.0.1:{port}", "offset.flush.interval.ms": "200"})
    path.write_text(dumps(worker))
    return worker


def connector_file(path, base, **changes):
    """A lab connector file with `changes`, named `compat-…` so no other test's group or offsets interfere."""
    config = load_file(str(CONFIG / base))
    config.update(changes, name="compat-" + config["name"])
    path.write_text(dumps(config))
    return config


def text_of(path):
    return path.read_text(encoding="utf-8") if path.exists() else ""


def test_same_bytes_as_kafka_connect(tmp_path, request):
    source_text = "".join(line + "\n" for line in LINES)
    (tmp_path / "test.txt").write_text(source_text, encoding="utf-8")
    bootstrap = shared_cluster(request, "kafka")
    ours_config = worker_file(tmp_path / "ours.properties", bootstrap, tmp_path / "ours.offsets", 0)
    with StandaloneWorker(ours_config) as ours:
        ours.add_connector(connector_file(tmp_path / "o-src.properties", "connect-file-source.properties",
                                          file=str(tmp_path / "test.txt"), topic="moldau-made"))
        ours_records = read_topic(bootstrap, "moldau-made", expect_at_least=len(LINES))
        kafka_port = free_port()
        worker_file(tmp_path / "kafka.properties", bootstrap, tmp_path / "kafka.offsets", kafka_port)
        connector_file(tmp_path / "k-src.properties", "connect-file-source.properties", topic="kafka-made")
        connector_file(tmp_path / "k-snk.properties", "connect-file-sink.properties",
                       file="kafka-sink.txt", topics="moldau-made")
        log = open(tmp_path / "kafka-connect.log", "w")
        java = subprocess.Popen(java_command("connect-standalone", ["kafka.properties", "k-src.properties", "k-snk.properties"]),
                                cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            kafka_records = read_topic(bootstrap, "kafka-made", expect_at_least=len(LINES), timeout_s=90)
            assert ours_records == kafka_records
            assert len(ours_records) == len(LINES)
            wait_until(lambda: text_of(tmp_path / "kafka-sink.txt"), lambda t: t == source_text, timeout_s=60,
                       what="Kafka's FileStreamSink writing our records")
            ours.add_connector(connector_file(tmp_path / "o-snk.properties", "connect-file-sink.properties",
                                              file=str(tmp_path / "ours-sink.txt"), topics="kafka-made"))
            wait_until(lambda: text_of(tmp_path / "ours-sink.txt"), lambda t: t == source_text,
                       what="our FileStreamSink writing Kafka's records")
            compare_rest(ours.rest_url, f"http://127.0.0.1:{kafka_port}")
        finally:
            os.killpg(java.pid, signal.SIGTERM)
            java.wait(30)
            log.close()
    # The offsets file Kafka's worker left (its own Java-serialized format): named and refused
    # in one line, never a UnicodeDecodeError.
    with pytest.raises(OffsetFileError, match="written by Apache Kafka's Connect worker") as caught:
        OffsetStore(str(tmp_path / "kafka.offsets")).open()
    assert str(tmp_path / "kafka.offsets") in str(caught.value)


def compare_rest(ours: str, theirs: str) -> None:
    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return type(value).__name__

    assert shape(rest(ours, "GET", "/")[1]) == shape(rest(theirs, "GET", "/")[1])
    plugins = [[{k: p[k] for k in ("class", "type")} for p in rest(url, "GET", "/connector-plugins")[1]] for url in (ours, theirs)]
    assert plugins[0] == plugins[1]
    connectors = [sorted(rest(url, "GET", "/connectors")[1]) for url in (ours, theirs)]  # Kafka's order is a set's
    assert connectors[0] == connectors[1] == ["compat-local-file-sink", "compat-local-file-source"]
    for path in ("/connectors/compat-local-file-source", "/connectors/compat-local-file-source/status",
                 "/connectors/compat-local-file-sink/tasks", "/connectors/compat-local-file-source/offsets"):
        mine, kafkas = rest(ours, "GET", path), rest(theirs, "GET", path)
        assert mine[0] == kafkas[0] == 200
        assert shape(mine[1]) == shape(kafkas[1]), path
    for url in (ours, theirs):
        assert rest(url, "GET", "/connectors/compat-local-file-source/status")[1]["tasks"][0]["state"] == "RUNNING"
    mine = rest(ours, "GET", "/connectors/compat-local-file-sink/tasks")[1][0]["config"]["task.class"]
    assert mine == rest(theirs, "GET", "/connectors/compat-local-file-sink/tasks")[1][0]["config"]["task.class"]
    bad = {"connector.class": "FileStreamSource", "tasks.max": "1"}
    mine, kafkas = rest(ours, "PUT", "/connectors/bad/config", bad), rest(theirs, "PUT", "/connectors/bad/config", bad)
    assert mine == kafkas
    for method, path in (("GET", "/connectors/nope"), ("GET", "/nothing"), ("DELETE", "/connector-plugins")):
        assert rest(ours, method, path) == rest(theirs, method, path)
