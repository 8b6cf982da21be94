"""One broker per data directory: a second `moldau server` (or embedded broker) on a directory
in use is refused in one line naming the directory and the process holding `.lock`, and the
first one's topics survive; a data directory that cannot be used says why, not "cannot listen"."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import moldau
from moldau.runtime.data_dir import DataDirError
from moldau.testing.server_process import ServerProcess, free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _server(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "moldau", "server", *args], env=env, capture_output=True,
                          text=True, timeout=30)


def _one_line_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_second_server_on_a_data_dir_in_use_is_refused_and_topics_survive(tmp_path):
    data_dir = str(tmp_path / "data")
    with ServerProcess(data_dir) as first:
        admin = AdminClient({"bootstrap.servers": first.bootstrap_servers})
        admin.create_topics([NewTopic("kept", 2, 1)])["kept"].result(10)
        line = _one_line_failure(_server("--data-dir", data_dir, "--port", str(free_port())))
        assert data_dir in line and str(first.process.pid) in line and ".lock" in line
        assert "kept" in admin.list_topics(timeout=10).topics  # the first one is untouched
        assert first.terminate() == 0
    with ServerProcess(data_dir) as again:  # the lock went with the process
        topics = AdminClient({"bootstrap.servers": again.bootstrap_servers}).list_topics(timeout=10).topics
        assert sorted(topics["kept"].partitions) == [0, 1]


def test_lock_of_a_killed_server_does_not_outlive_it(tmp_path):
    data_dir = str(tmp_path / "data")
    with ServerProcess(data_dir) as first:
        first.kill()
    with ServerProcess(data_dir):
        assert (tmp_path / "data" / ".lock").exists()


def test_two_embedded_brokers_on_one_data_dir(tmp_path):
    with moldau.Broker(data_dir=str(tmp_path)) as broker:
        with pytest.raises(DataDirError, match="already in use by this process"):
            moldau.Broker(data_dir=str(tmp_path)).start()
        broker.restart()  # the lock is released on stop and taken again on start


def test_unusable_data_dir_names_the_real_cause(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    line = _one_line_failure(_server("--data-dir", str(a_file), "--port", "0"))
    assert "is a file, not a directory" in line and str(a_file) in line and "listen" not in line
    line = _one_line_failure(_server("--data-dir", str(a_file / "below"), "--port", "0"))
    assert "cannot create data directory" in line and "listen" not in line
