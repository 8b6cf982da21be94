"""Connect against a secured broker: the worker's security settings (Java's spelling, as in
connect-standalone.properties) reach its clients; a file source feeds a file sink through an
ACL-protected topic over SASL_SSL."""

from __future__ import annotations

import pytest

from moldau import Broker
from moldau.connect.standalone import StandaloneWorker
from moldau.connect.testing import rest, wait_until

pytestmark = pytest.mark.integration


def test_file_source_to_file_sink_over_sasl_ssl(tmp_path):
    users = {"admin": "admin-secret", "connect": "connect-secret"}
    with Broker(data_dir=str(tmp_path / "data"), security="SASL_SSL", users=users, authorizer=True,
                super_users=["connect"]) as broker:
        client = broker.java_client_config("connect")
        worker_config = {**{k: v for k, v in client.items()},
                         "offset.storage.file.filename": str(tmp_path / "offsets"), "listeners": "http://127.0.0.1:0",
                         "offset.flush.interval.ms": "100",
                         "key.converter": "org.apache.kafka.connect.storage.StringConverter",
                         "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
        # the connectors' clients take the same settings with Kafka's prefixes
        for prefix in ("producer.", "consumer.", "admin."):
            worker_config.update({prefix + k: v for k, v in client.items() if k != "bootstrap.servers"})
        source, sink = tmp_path / "in.txt", tmp_path / "out.txt"
        source.write_text("one\ntwo\n")
        with StandaloneWorker(worker_config) as worker:
            url = worker.rest_url
            status, root = rest(url, "GET", "/")
            assert status == 200 and root["kafka_cluster_id"]  # the REST server's client authenticated too
            assert rest(url, "PUT", "/connectors/src/config", {"connector.class": "FileStreamSource",
                                                                "file": str(source), "topic": "secured"})[0] == 201
            assert rest(url, "PUT", "/connectors/snk/config", {"connector.class": "FileStreamSink",
                                                                "file": str(sink), "topics": "secured"})[0] == 201
            wait_until(lambda: sink.read_text().splitlines() if sink.exists() else [],
                       lambda lines: lines == ["one", "two"], what="the lines in the sink file")
