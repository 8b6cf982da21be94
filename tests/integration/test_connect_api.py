"""The Python connector API: a user's source and sink connectors run by the standalone worker."""

from __future__ import annotations

import threading

import pytest

from moldau.connect.api import ConnectError, SinkConnector, SinkTask, SourceConnector, SourceRecord, SourceTask
from moldau.connect.config import ConfigDef, at_least
from moldau.connect.data import Schema, Struct
from moldau.connect.standalone import StandaloneWorker
from moldau.connect.testing import read_topic, rest, shared_cluster, wait_until

pytestmark = pytest.mark.integration

POINT = Schema.struct([("n", Schema.INT64), ("label", Schema.OPTIONAL_STRING)], name="example.Point")


class CounterTask(SourceTask):
    """Emits n = next, next+1, … up to `limit`, resuming after the last committed n."""

    def start(self, config):
        stored = self.context.offset_storage_reader.offset({"counter": config["name"]})
        self.next = stored["n"] + 1 if stored else 0
        self.limit, self.topic, self.name = int(config["limit"]), config["topic"], config["name"]

    def poll(self):
        if self.next >= self.limit:
            self.context.stopping.wait(0.05)
            return None
        n, self.next = self.next, self.next + 1
        value = Struct(POINT).put("n", n).put("label", f"#{n}")
        return [SourceRecord({"counter": self.name}, {"n": n}, self.topic, key=str(n), key_schema=Schema.STRING,
                             value=value, value_schema=POINT)]


class CounterConnector(SourceConnector):
    def config_def(self):
        return ConfigDef().define("topic").define("limit", "int", 5, validator=at_least(0))

    def task_class(self):
        return CounterTask


COLLECTED: dict[str, list] = {}
LOCK = threading.Lock()


class CollectTask(SinkTask):
    def start(self, config):
        if config.get("fail") == "true":
            raise ConnectError("refusing to start, as configured")
        self.name, self.buffer = config["name"], []

    def put(self, records):
        self.buffer += [(r.key, r.value) for r in records]

    def flush(self, offsets):
        with LOCK:
            COLLECTED.setdefault(self.name, []).extend(self.buffer)
        self.buffer = []


class CollectConnector(SinkConnector):
    def task_class(self):
        return CollectTask


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def bootstrap(request):
    return shared_cluster(request, request.param)


def worker_config(tmp_path, bootstrap):
    return {"bootstrap.servers": bootstrap, "offset.storage.file.filename": str(tmp_path / "offsets"),
            "listeners": "http://127.0.0.1:0", "offset.flush.interval.ms": "100",
            "key.converter": "StringConverter", "value.converter": "JsonConverter"}


def test_python_source_and_sink(tmp_path, bootstrap):
    topic, sink_name = f"points-{tmp_path.name[-10:]}", f"collect-{tmp_path.name[-10:]}"
    source = {"name": "counter", "connector.class": f"{__name__}.CounterConnector", "topic": topic, "limit": "3"}
    sink = {"name": sink_name, "connector.class": f"{__name__}:CollectConnector", "topics": topic}
    with StandaloneWorker(worker_config(tmp_path, bootstrap)) as worker:
        worker.add_connector(source)
        worker.add_connector(sink)
        wait_until(lambda: list(COLLECTED.get(sink_name, [])), lambda c: len(c) >= 3, what="3 points in the sink")
    expected = [(str(n), Struct(POINT).put("n", n).put("label", f"#{n}")) for n in range(3)]
    assert COLLECTED[sink_name] == expected

    with StandaloneWorker(worker_config(tmp_path, bootstrap)) as worker:  # resumes after n=2
        worker.add_connector(dict(source, limit="5"))
        worker.add_connector(sink)
        wait_until(lambda: list(COLLECTED[sink_name]), lambda c: len(c) >= 5, what="5 points in the sink")
    assert [key for key, _ in COLLECTED[sink_name]] == ["0", "1", "2", "3", "4"]
    records = read_topic(bootstrap, topic, expect_at_least=5)
    assert [key for key, _ in records] == [b"0", b"1", b"2", b"3", b"4"]
    assert records[0][1] == (b'{"schema":{"type":"struct","fields":[{"type":"int64","optional":false,"field":"n"},'
                             b'{"type":"string","optional":true,"field":"label"}],"optional":false,'
                             b'"name":"example.Point"},"payload":{"n":0,"label":"#0"}}')


def test_user_connector_errors(tmp_path, bootstrap):
    with StandaloneWorker(worker_config(tmp_path, bootstrap)) as worker:
        url = worker.rest_url
        status, body = rest(url, "PUT", "/connectors/c/config", {"connector.class": f"{__name__}.CounterConnector",
                                                                 "topic": "x", "limit": "-1"})
        assert status == 400 and "Invalid value -1 for configuration limit: Value must be at least 0" in body["message"]
        assert rest(url, "PUT", "/connectors/f/config", {"connector.class": f"{__name__}.CollectConnector",
                                                         "topics": "x", "fail": "true"})[0] == 201
        status = wait_until(lambda: rest(url, "GET", "/connectors/f/status")[1],
                            lambda s: s["tasks"] and s["tasks"][0]["state"] == "FAILED", what="task FAILED")
        assert status["tasks"][0]["trace"] == "ConnectError: refusing to start, as configured"
