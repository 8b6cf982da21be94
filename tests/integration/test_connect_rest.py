"""The standalone worker's REST API, each endpoint, and connectors that fail while others run."""

from __future__ import annotations

import pytest

from moldau.connect.standalone import StandaloneWorker
from moldau.connect.testing import read_topic, rest, shared_cluster, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def bootstrap(request):
    return shared_cluster(request, request.param)


@pytest.fixture
def worker(tmp_path, bootstrap):
    config = {"bootstrap.servers": bootstrap, "offset.storage.file.filename": str(tmp_path / "offsets"),
              "listeners": "http://127.0.0.1:0", "offset.flush.interval.ms": "100",
              "key.converter": "org.apache.kafka.connect.storage.StringConverter",
              "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
    with StandaloneWorker(config) as running:
        yield running


def lines_of(path):
    return path.read_text().splitlines() if path.exists() else []


def state_of(url, name):
    status = rest(url, "GET", f"/connectors/{name}/status")[1]
    return status["connector"]["state"], [t["state"] for t in status["tasks"]]


def test_endpoints(worker, tmp_path, bootstrap):
    url, source, sink = worker.rest_url, tmp_path / "in.txt", tmp_path / "out.txt"
    topic = f"rest-{tmp_path.name[-12:]}"
    source.write_text("one\n")
    status, root = rest(url, "GET", "/")
    assert status == 200 and root["version"] and root["kafka_cluster_id"]
    assert rest(url, "GET", "/connectors") == (200, [])
    plugins = rest(url, "GET", "/connector-plugins")[1]
    assert {p["class"] for p in plugins} == {"org.apache.kafka.connect.file.FileStreamSourceConnector",
                                             "org.apache.kafka.connect.file.FileStreamSinkConnector"}

    source_config = {"connector.class": "FileStreamSource", "file": str(source), "topic": topic}
    status, info = rest(url, "PUT", "/connectors/src/config", source_config)
    assert status == 201
    assert info == {"name": "src", "config": dict(source_config, name="src"), "tasks": [{"connector": "src", "task": 0}],
                    "type": "source"}
    status, created = rest(url, "POST", "/connectors", {"name": "snk", "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "file": str(sink), "topics": topic}})
    assert status == 201 and created["type"] == "sink"
    assert rest(url, "POST", "/connectors", {"name": "snk", "config": {"connector.class": "FileStreamSink", "topics": topic}}) == (
        409, {"error_code": 409, "message": "Connector snk already exists"})
    wait_until(lambda: lines_of(sink), lambda l: l == ["one"], what="the first line")

    assert rest(url, "GET", "/connectors") == (200, ["snk", "src"])
    assert rest(url, "GET", "/connectors/src")[1] == info
    assert rest(url, "GET", "/connectors/src/config") == (200, dict(source_config, name="src"))
    assert rest(url, "GET", "/connectors/src/tasks")[1] == [{"id": {"connector": "src", "task": 0},
                                                             "config": dict(source_config, name="src", **{
        "task.class": "org.apache.kafka.connect.file.FileStreamSourceTask"})}]
    status, body = rest(url, "GET", "/connectors/src/status")
    assert status == 200 and body["connector"]["state"] == "RUNNING" and body["tasks"][0]["state"] == "RUNNING"
    assert body["connector"]["worker_id"] == url.removeprefix("http://")
    assert rest(url, "GET", "/connectors/src/tasks/0/status")[1]["state"] == "RUNNING"
    expanded = rest(url, "GET", "/connectors?expand=status&expand=info")[1]
    assert set(expanded) == {"snk", "src"} and expanded["src"]["info"]["type"] == "source"

    assert rest(url, "GET", "/connectors/src/offsets") == (200, {"offsets": [
        {"partition": {"filename": str(source)}, "offset": {"position": 4}}]})
    wait_until(lambda: rest(url, "GET", "/connectors/snk/offsets")[1], lambda o: o == {"offsets": [
        {"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 1}}]}, what="sink offsets")

    # pause: nothing flows; resume: it does
    assert rest(url, "PUT", "/connectors/src/pause") == (202, None)
    wait_until(lambda: state_of(url, "src"), lambda s: s == ("PAUSED", ["PAUSED"]), what="PAUSED")
    with open(source, "a") as handle:
        handle.write("two\n")
    assert read_topic(bootstrap, topic, expect_at_least=1, quiet_s=0.5) == [(None, b"one")]
    assert rest(url, "PUT", "/connectors/src/resume") == (202, None)
    wait_until(lambda: lines_of(sink), lambda l: l == ["one", "two"], what="the line written while paused")
    assert state_of(url, "src") == ("RUNNING", ["RUNNING"])

    # restart and reconfigure keep the position: no duplicates
    assert rest(url, "POST", "/connectors/src/restart") == (204, None)
    assert rest(url, "POST", "/connectors/src/tasks/0/restart") == (204, None)
    status, body = rest(url, "POST", "/connectors/src/restart?includeTasks=true")
    assert status == 202 and body["name"] == "src"
    status, info = rest(url, "PUT", "/connectors/src/config", dict(source_config, **{"batch.size": "1"}))
    assert status == 200 and info["config"]["batch.size"] == "1"
    with open(source, "a") as handle:
        handle.write("three\n")
    wait_until(lambda: lines_of(sink), lambda l: l == ["one", "two", "three"], what="no duplicates after restarts")

    assert rest(url, "DELETE", "/connectors/snk") == (204, None)
    assert rest(url, "GET", "/connectors/snk") == (404, {"error_code": 404, "message": "Connector snk not found"})
    assert rest(url, "GET", "/connectors") == (200, ["src"])


def test_bad_requests(worker):
    url = worker.rest_url
    status, body = rest(url, "PUT", "/connectors/x/config", {"connector.class": "FileStreamSource", "tasks.max": "zero"})
    assert status == 400
    assert body["message"].startswith("Connector configuration is invalid and contains the following 2 error(s):\n")
    assert "Invalid value zero for configuration tasks.max: Not a number of type INT" in body["message"]
    assert 'Missing required configuration "topic" which has no default value.' in body["message"]
    status, body = rest(url, "PUT", "/connectors/x/config", {"connector.class": "NoSuch"})
    assert status == 400 and "Failed to find any class that implements Connector and which name matches NoSuch" in body["message"]
    status, body = rest(url, "PUT", "/connectors/x/config", {"name": "y", "connector.class": "FileStreamSink", "topics": "t"})
    assert (status, body["message"]) == (400, "Connector name configuration (y) doesn't match connector name in the URL (x)")
    assert rest(url, "GET", "/connectors/x/status")[0] == 404
    assert rest(url, "PUT", "/connectors/x/pause")[0] == 404
    assert rest(url, "GET", "/nothing") == (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    assert rest(url, "DELETE", "/connector-plugins")[0] == 405
    status, body = rest(url, "PUT", "/connector-plugins/FileStreamSink/config/validate", {"topics": "t"})
    assert status == 200 and body["error_count"] == 1  # name is missing
    assert rest(url, "GET", "/connectors") == (200, [])


def test_failures_stay_contained(worker, tmp_path):
    url = worker.rest_url
    topic = f"contained-{tmp_path.name[-12:]}"
    good_in, good_out = tmp_path / "good.txt", tmp_path / "good.out"
    good_in.write_text("a\n")
    assert rest(url, "PUT", "/connectors/good-src/config", {"connector.class": "FileStreamSource", "file": str(good_in), "topic": topic})[0] == 201
    assert rest(url, "PUT", "/connectors/good-snk/config", {"connector.class": "FileStreamSink", "file": str(good_out), "topics": topic})[0] == 201
    # a sink that cannot open its file
    assert rest(url, "PUT", "/connectors/bad-snk/config", {"connector.class": "FileStreamSink", "file": str(tmp_path), "topics": topic})[0] == 201
    # a source whose file does not exist yet
    late = tmp_path / "late.txt"
    assert rest(url, "PUT", "/connectors/late-src/config", {"connector.class": "FileStreamSource", "file": str(late), "topic": topic})[0] == 201

    status = wait_until(lambda: rest(url, "GET", "/connectors/bad-snk/status")[1], lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED",
                        what="bad-snk FAILED")
    assert status["connector"]["state"] == "RUNNING"
    assert status["tasks"][0]["trace"] == f"ConnectError: cannot open sink file {tmp_path} for appending: Is a directory"
    assert state_of(url, "late-src") == ("RUNNING", ["RUNNING"])
    wait_until(lambda: lines_of(good_out), lambda l: l == ["a"], what="the good pipeline")
    late.write_text("b\n")
    wait_until(lambda: lines_of(good_out), lambda l: sorted(l) == ["a", "b"], what="the late file's line")

    # fixing the bad sink through the REST API brings it up
    fixed = tmp_path / "fixed.out"
    assert rest(url, "PUT", "/connectors/bad-snk/config", {"connector.class": "FileStreamSink", "file": str(fixed), "topics": topic})[0] == 200
    wait_until(lambda: sorted(lines_of(fixed)), lambda l: l == ["a", "b"], what="the fixed sink")
    assert state_of(url, "bad-snk") == ("RUNNING", ["RUNNING"])


def test_undecodable_record_fails_the_sink_task_clearly(worker, tmp_path, bootstrap):
    import confluent_kafka

    topic = f"poison-{tmp_path.name[-10:]}"
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"plain text, not a JSON envelope")
    assert producer.flush(10) == 0
    out = tmp_path / "out.txt"
    config = {"connector.class": "FileStreamSink", "file": str(out), "topics": topic,
              "value.converter": "org.apache.kafka.connect.json.JsonConverter"}  # overrides the worker's
    assert rest(worker.rest_url, "PUT", "/connectors/poisoned/config", config)[0] == 201
    status = wait_until(lambda: rest(worker.rest_url, "GET", "/connectors/poisoned/status")[1],
                        lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED", what="the sink task to fail")
    assert status["tasks"][0]["trace"].startswith(
        "DataError: Converting byte[] to Kafka Connect data failed due to serialization error: ")
    assert lines_of(out) == []


def test_oversized_body_is_refused_in_kafkas_shape(worker):
    """The REST API (on aiohttp) answers a body over 1 MiB with 413 and Kafka's JSON error."""
    status, body = rest(worker.rest_url, "PUT", "/connectors/big/config", {"x": "y" * (2 * 1024 * 1024)})
    assert status == 413 and body["error_code"] == 413
    assert rest(worker.rest_url, "GET", "/connectors") == (200, [])
