"""Kafka's Connect lab, end to end: `moldau connect standalone` with the three properties files.

The worker runs as a real subprocess (`python -m moldau connect standalone ...`) in a scratch
directory, with the connector files from `config/` unchanged (they name `test.txt` and
`test.sink.txt` relative to the working directory, as in Kafka's quickstart). Only the worker
file is adjusted: the broker address, the offsets file, a free REST port, a short flush interval.
Runs against the moldau broker and, when its jars are present, Apache Kafka.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moldau.properties import dumps, load_file
from moldau.connect.testing import read_topic, rest, shared_cluster, wait_until

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["moldau", "kafka"])
def bootstrap(request):
    return shared_cluster(request, request.param)


def envelope(line: str) -> bytes:
    escaped = line.replace("\\", "\\\\").replace('"', '\\"')
    return b'{"schema":{"type":"string","optional":false},"payload":"' + escaped.encode() + b'"}'


class WorkerProcess:
    """`moldau connect standalone` as a subprocess; stderr goes to a file we can read."""

    def __init__(self, directory: Path, args: list[str], stdin=subprocess.DEVNULL):
        self.directory = directory
        self.log_path = directory / f"worker-{time.monotonic_ns()}.log"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "moldau", "connect", "standalone", *args],
                                        cwd=directory, env=env, stdin=stdin, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def rest_url(self) -> str:
        text = wait_until(self.output, lambda t: "REST API at" in t or self.process.poll() is not None,
                          what="the REST API to start")
        match = re.search(r"REST API at (http://127\.0\.0\.1:\d+)", text)
        assert match, text
        return match.group(1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self.log.close()


def lab_directory(tmp_path: Path, bootstrap: str) -> Path:
    worker = load_file(str(CONFIG / "connect-standalone.properties"))
    worker.update({"bootstrap.servers": bootstrap, "offset.storage.file.filename": str(tmp_path / "connect.offsets"),
                   "listeners": "http://localhost:0", "offset.flush.interval.ms": "200"})
    (tmp_path / "worker.properties").write_text(dumps(worker))
    return tmp_path


LAB_ARGS = ["worker.properties", str(CONFIG / "connect-file-source.properties"), str(CONFIG / "connect-file-sink.properties")]


def sink_text(directory: Path) -> str:
    path = directory / "test.sink.txt"
    return path.read_text() if path.exists() else ""


def test_lab_pipeline(tmp_path, bootstrap):
    directory = lab_directory(tmp_path, bootstrap)
    lines = ["foo", "bar", 'with "quotes" and \\ and é']
    (directory / "test.txt").write_text("".join(line + "\n" for line in lines))
    worker = WorkerProcess(directory, LAB_ARGS)
    try:
        url = worker.rest_url()
        assert read_topic(bootstrap, "connect-test", expect_at_least=len(lines)) == [(None, envelope(l)) for l in lines]
        wait_until(lambda: sink_text(directory), lambda t: t == "".join(l + "\n" for l in lines), what="the sink file")
        with open(directory / "test.txt", "a") as handle:
            handle.write("Another line\n")
        lines.append("Another line")
        wait_until(lambda: sink_text(directory), lambda t: t.splitlines() == lines, what="the appended line")
        assert rest(url, "GET", "/connectors")[1] == ["local-file-sink", "local-file-source"]
    finally:
        assert worker.stop() == 0, worker.output()
    assert read_topic(bootstrap, "connect-test", expect_at_least=len(lines)) == [(None, envelope(l)) for l in lines]

    with open(directory / "test.txt", "a") as handle:  # written while no worker runs
        handle.write("while stopped\n")
    lines.append("while stopped")
    restarted = WorkerProcess(directory, LAB_ARGS)
    try:
        restarted.rest_url()
        wait_until(lambda: sink_text(directory), lambda t: t.splitlines() == lines, what="the sink after restart")
    finally:
        assert restarted.stop() == 0, restarted.output()
    assert read_topic(bootstrap, "connect-test", expect_at_least=len(lines)) == [(None, envelope(l)) for l in lines]
    assert sink_text(directory).splitlines() == lines


def test_bad_worker_file_is_one_line_error(tmp_path):
    (tmp_path / "worker.properties").write_text("bootstrap.servers=127.0.0.1:1\n")
    worker = WorkerProcess(tmp_path, ["worker.properties"])
    code = worker.process.wait(30)
    worker.log.close()
    output = worker.output().strip()
    assert code == 1
    assert output == ('moldau: worker.properties: worker configuration: Missing required configuration '
                      '"offset.storage.file.filename" which has no default value.')


def test_missing_worker_file(tmp_path):
    worker = WorkerProcess(tmp_path, ["nope.properties"])
    assert worker.process.wait(30) == 1
    worker.log.close()
    assert worker.output().strip() == "moldau: cannot read worker config nope.properties: No such file or directory"


def test_bad_connector_file_reported_others_keep_running(tmp_path, bootstrap):
    directory = lab_directory(tmp_path, bootstrap)
    (directory / "test.txt").write_text("still flows\n")
    (directory / "bad.properties").write_text("name=bad\nconnector.class=com.example.NoSuchConnector\n")
    for name, key in (("source", "topic"), ("sink", "topics")):  # the lab files, on a topic of this test's own
        config = load_file(str(CONFIG / f"connect-file-{name}.properties"))
        (directory / f"{name}.properties").write_text(dumps(dict(config, **{key: "connect-test-bad-file"})))
    worker = WorkerProcess(directory, ["worker.properties", "bad.properties", "missing.properties",
                                       "source.properties", "sink.properties"])
    try:
        url = worker.rest_url()
        wait_until(lambda: sink_text(directory), lambda t: "still flows\n" in t, what="the good pipeline")
        output = worker.output()
        assert ("connector config bad.properties was not started: Connector configuration is invalid and contains "
                "the following 1 error(s):\nFailed to find any class that implements Connector and which name "
                "matches com.example.NoSuchConnector") in output
        assert "cannot read connector config missing.properties: No such file or directory" in output
        assert rest(url, "GET", "/connectors")[1] == ["local-file-sink", "local-file-source"]
    finally:
        assert worker.stop() == 0, worker.output()


def test_killed_worker_leaves_no_gap(tmp_path, bootstrap):
    """SIGKILL skips the final commit: a restart may repeat the lines since the last commit
    (at-least-once), but every line reaches the topic and the order is kept."""
    directory = lab_directory(tmp_path, bootstrap)
    topic = f"connect-test-kill-{tmp_path.name[-8:]}"
    source = load_file(str(CONFIG / "connect-file-source.properties"))
    (directory / "source.properties").write_text(dumps(dict(source, topic=topic)))
    lines = [f"line {n}" for n in range(200)]
    (directory / "test.txt").write_text("".join(line + "\n" for line in lines[:100]))
    worker = WorkerProcess(directory, ["worker.properties", "source.properties"])
    try:
        worker.rest_url()
        committed = len("".join(line + "\n" for line in lines[:100]).encode())
        wait_until(lambda: (directory / "connect.offsets").read_text() if (directory / "connect.offsets").exists() else "",
                   lambda text: f'"position": {committed}' in text, what="the first 100 lines committed")
        with open(directory / "test.txt", "a") as handle:
            handle.write("".join(line + "\n" for line in lines[100:150]))
        time.sleep(0.05)  # some of these may be produced, few (or none) committed
    finally:
        worker.process.kill()
        worker.process.wait(10)
        worker.log.close()
    with open(directory / "test.txt", "a") as handle:
        handle.write("".join(line + "\n" for line in lines[150:]))
    restarted = WorkerProcess(directory, ["worker.properties", "source.properties"])
    try:
        restarted.rest_url()
        values = wait_until(lambda: [v for _, v in read_topic(bootstrap, topic, quiet_s=0.2)],
                            lambda v: v and v[-1] == envelope(lines[-1]), what="the last line")
    finally:
        assert restarted.stop() == 0, restarted.output()
    first_seen = list(dict.fromkeys(values))
    assert first_seen == [envelope(line) for line in lines]  # nothing lost, order kept
    assert all(values.count(envelope(line)) == 1 for line in lines[:100])  # committed lines are not repeated


def test_without_file_source_reads_stdin_and_sink_writes_stdout(tmp_path, bootstrap):
    """Kafka's file connectors without `file`: standard input in, standard output out."""
    directory = lab_directory(tmp_path, bootstrap)
    topic = f"connect-test-stdio-{tmp_path.name[-8:]}"
    (directory / "in.properties").write_text(dumps({"name": "stdin-source", "connector.class": "FileStreamSource",
                                                    "topic": topic}))
    (directory / "out.properties").write_text(dumps({"name": "stdout-sink", "connector.class": "FileStreamSink",
                                                     "topics": topic}))
    worker = WorkerProcess(directory, ["worker.properties", "in.properties", "out.properties"], stdin=subprocess.PIPE)
    try:
        worker.rest_url()
        worker.process.stdin.write(b"from stdin\n")
        worker.process.stdin.flush()
        wait_until(worker.output, lambda text: "\nfrom stdin\n" in text, what="the line on standard output")
    finally:
        worker.process.stdin.close()
        assert worker.stop() == 0, worker.output()
    assert read_topic(bootstrap, topic, expect_at_least=1) == [(None, envelope("from stdin"))]


def test_appended_line_reaches_the_sink_in_milliseconds_not_at_the_offset_commit(tmp_path, bootstrap):
    """The stock worker file (offset commits every 10 s; Kafka's default is 60 s): a line
    appended to test.txt must show up in test.sink.txt long before the next commit. Kafka's own
    worker takes about 0.3 s on this machine; the bound is generous for a loaded CI host."""
    worker = load_file(str(CONFIG / "connect-standalone.properties"))
    worker.update({"bootstrap.servers": bootstrap, "listeners": "http://localhost:0"})
    worker.pop("offset.flush.interval.ms", None)  # Kafka's default, 60 s
    (tmp_path / "worker.properties").write_text(dumps(worker))
    (tmp_path / "test.txt").write_text("warm up\n")
    topic = f"connect-latency-{tmp_path.name[-8:]}"
    for name, key in (("source", "topic"), ("sink", "topics")):
        config = load_file(str(CONFIG / f"connect-file-{name}.properties"))
        (tmp_path / f"{name}.properties").write_text(dumps(dict(config, **{key: topic, "name": f"latency-{name}"})))
    process = WorkerProcess(tmp_path, ["worker.properties", "source.properties", "sink.properties"])
    latencies = []
    try:
        process.rest_url()
        wait_until(lambda: sink_text(tmp_path), lambda t: t == "warm up\n", timeout_s=30, what="the first line")
        for n in range(5):
            with open(tmp_path / "test.txt", "a") as handle:
                handle.write(f"line {n}\n")
            began = time.monotonic()
            wait_until(lambda: sink_text(tmp_path), lambda t: t.endswith(f"line {n}\n"), interval_s=0.005,
                       timeout_s=30, what=f"line {n} in the sink")
            latencies.append(time.monotonic() - began)
    finally:
        assert process.stop() == 0, process.output()
    print(f"append-to-sink latency (s): {', '.join(f'{v:.3f}' for v in latencies)}")
    assert max(latencies) < 3.0, latencies  # was 4-10 s (the commit interval) before the sink flushed on put


def test_offsets_file_of_another_format_spares_sinks_and_names_itself(tmp_path, bootstrap):
    """/tmp/connect.offsets left by Kafka's worker (Java serialization): a sink-only worker runs;
    a source connector fails in one line naming the file; the worker itself keeps running."""
    directory = lab_directory(tmp_path, bootstrap)
    offsets = directory / "connect.offsets"
    offsets.write_bytes(b"\xac\xed\x00\x05sr\x00\x11java.util.HashMap\x05\x07\xda\xc1\xc3\x16`\xd1\x03\x00\x02F")
    topic = f"connect-foreign-{tmp_path.name[-8:]}"
    sink = load_file(str(CONFIG / "connect-file-sink.properties"))
    (directory / "sink.properties").write_text(dumps(dict(sink, topics=topic, name="foreign-sink")))
    source = load_file(str(CONFIG / "connect-file-source.properties"))
    (directory / "source.properties").write_text(dumps(dict(source, topic=topic, name="foreign-source")))
    worker = WorkerProcess(directory, ["worker.properties", "sink.properties", "source.properties"])
    try:
        url = worker.rest_url()
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(topic, b'{"schema":{"type":"string","optional":false},"payload":"from a producer"}')
        producer.flush(10)
        wait_until(lambda: sink_text(directory), lambda t: t == "from a producer\n", what="the sink-only pipeline")
        assert rest(url, "GET", "/connectors/foreign-source/status")[1]["connector"]["state"] == "FAILED"
        lines = [line for line in worker.output().splitlines() if "foreign-source failed to start" in line]
        assert len(lines) == 1 and str(offsets) in lines[0] and "Apache Kafka's Connect worker" in lines[0]
        assert "UnicodeDecodeError" not in worker.output()
    finally:
        assert worker.stop() == 0, worker.output()
