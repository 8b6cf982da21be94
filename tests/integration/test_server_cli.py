"""`moldau server`: one listening line, server.properties keys, warnings, clean SIGTERM exit,
one-line errors."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

from moldau.testing.server_process import ServerProcess, free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env():
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_server_properties_one_line_and_clean_sigterm(tmp_path):
    port = free_port()
    properties = tmp_path / "server.properties"
    properties.write_text(
        "# Kafka's quickstart keys\nnode.id=4\nprocess.roles=broker,controller\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:9093\n"
        f"log.dirs={tmp_path / 'data'}\nnum.partitions=2\nsome.unknown.key=1\n"
    )
    process = subprocess.Popen([sys.executable, "-m", "moldau", "server", str(properties)], env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line == f"moldau server listening on 127.0.0.1:{port}\n"
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        metadata = admin.list_topics("auto", timeout=10)
        assert len(metadata.topics["auto"].partitions) == 2 and metadata.brokers[4].port == port
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert process.stdout.read() == ""
        stderr = process.stderr.read()
        assert stderr.strip().splitlines() == ["moldau: warning: ignoring unknown server.properties keys: some.unknown.key"]
        assert (tmp_path / "data" / "auto-0").is_dir()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _fails(*args, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "moldau", "server", *args], env=_env(), capture_output=True,
                            text=True, timeout=30, cwd=cwd)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_one_line_errors(tmp_path):
    assert "cannot read" in _fails("--config", str(tmp_path / "missing.properties")).stderr
    assert "num.partitions" in _fails("--override", "num.partitions=zero", "--port", "0").stderr
    assert "KEY=VALUE" in _fails("--override", "novalue").stderr
    with ServerProcess(str(tmp_path / "first")) as running:
        taken = _fails("--port", str(running.port), "--data-dir", str(tmp_path / "second"))
        assert "cannot listen" in taken.stderr


def test_restart_keeps_topics_and_ids(tmp_path):
    data_dir = str(tmp_path / "data")
    with ServerProcess(data_dir) as server:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        from confluent_kafka.admin import NewTopic

        admin.create_topics([NewTopic("kept", 3, 1, config={"retention.ms": "12345"})])["kept"].result(10)
        before = admin.list_topics(timeout=10)
        assert server.terminate() == 0
    with ServerProcess(data_dir, port=server.port) as server:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        after = admin.list_topics(timeout=10)
        assert sorted(after.topics["kept"].partitions) == [0, 1, 2]
        assert after.cluster_id == before.cluster_id
        from confluent_kafka.admin import ConfigResource

        resource = ConfigResource("topic", "kept")
        assert admin.describe_configs([resource])[resource].result(10)["retention.ms"].value == "12345"
