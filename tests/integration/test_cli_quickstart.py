"""Kafka's quickstart, verbatim with `moldau` in place of bin/kafka-*.sh, as real processes.

    moldau topics --create --topic quickstart-events --bootstrap-server B
    moldau topics --describe --topic quickstart-events --bootstrap-server B
    moldau produce --topic quickstart-events --bootstrap-server B        (three lines typed)
    moldau consume --topic quickstart-events --from-beginning --bootstrap-server B   (Ctrl-C)

then a consumer group: the second consumer resumes where the first committed. Run against
Apache Kafka 4.x and against Moldau's broker.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest

from moldau.cli.testing import cli_command, cli_environment, run_cli_process
from moldau.testing.kafka_dist import KafkaServer, need_kafka

pytestmark = pytest.mark.integration

EVENTS = ["This is my first event", "This is my second event", "This is my third event"]


@pytest.fixture(scope="module", params=["kafka", "moldau"])
def bootstrap(request):
    if request.param == "kafka":
        need_kafka()
        with KafkaServer() as kafka:
            yield kafka.bootstrap_servers
    else:
        from moldau import Broker

        with Broker(config={"group.initial.rebalance.delay.ms": "0"}) as broker:
            yield broker.bootstrap_servers


def moldau(*argv: str, stdin: str = ""):
    result = run_cli_process(argv, stdin=stdin)
    assert "Traceback" not in result.err
    return result


class Running:
    """A `moldau` subprocess read line by line; always stopped (by PID) at the end.

    Its output is unbuffered (as under many CI runners): each line reaches the pipe as it is
    written, so a Ctrl-C can land between a printed line and its bookkeeping — the consumer must
    still report and commit exactly what it printed.
    """

    def __init__(self, *argv: str, stdin=subprocess.DEVNULL):
        self.process = subprocess.Popen(cli_command(argv), stdin=stdin, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env=cli_environment({"PYTHONUNBUFFERED": "1"}))

    def read_lines(self, count: int, timeout_s: float = 30.0) -> list[str]:
        """The first `count` stdout lines (fewer if the process ends or time runs out)."""
        data, deadline = b"", time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while data.count(b"\n") < count and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 65536)  # unbuffered: select and a buffered reader disagree
                if not chunk:
                    break
                data += chunk
        return data.decode().splitlines()[:count]

    def interrupt(self, timeout_s: float = 20.0) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=timeout_s)
        finally:
            self.stop()
        return self.process.returncode, err

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def test_quickstart_verbatim(bootstrap):
    created = moldau("topics", "--create", "--topic", "quickstart-events", "--bootstrap-server", bootstrap)
    assert created.code == 0 and created.out == "Created topic quickstart-events.\n"

    described = moldau("topics", "--describe", "--topic", "quickstart-events", "--bootstrap-server", bootstrap)
    assert described.code == 0
    first_line = described.out.splitlines()[0]
    assert first_line.startswith("Topic: quickstart-events\tTopicId: ")
    assert "\tPartitionCount: 1\tReplicationFactor: 1\tConfigs: " in first_line

    produced = moldau("produce", "--topic", "quickstart-events", "--bootstrap-server", bootstrap,
                      stdin="".join(event + "\n" for event in EVENTS))
    assert produced.code == 0, produced.err

    consumer = Running("consume", "--topic", "quickstart-events", "--from-beginning", "--bootstrap-server", bootstrap)
    try:
        lines = consumer.read_lines(3)
    finally:
        code, err = consumer.interrupt()
    assert lines == EVENTS, err
    assert code == 0
    assert err.strip().splitlines()[-1] == "Processed a total of 3 messages"
    assert "Traceback" not in err


def test_second_consumer_in_group_resumes_where_first_committed(bootstrap):
    topic, group = "quickstart-group-events", "quickstart-group"
    assert moldau("topics", "create", topic, "--bootstrap-server", bootstrap).code == 0
    assert moldau("produce", topic, "--bootstrap-server", bootstrap,
                  stdin="".join(event + "\n" for event in EVENTS)).code == 0

    first = Running("consume", topic, "--group", group, "--from-beginning", "--bootstrap-server", bootstrap)
    try:
        lines = first.read_lines(3)
    finally:
        code, err = first.interrupt()  # Ctrl-C: commits what it printed, leaves the group
    assert lines == EVENTS, err
    assert code == 0 and err.strip().splitlines()[-1] == "Processed a total of 3 messages"

    more = ["This is my fourth event", "This is my fifth event"]
    assert moldau("produce", topic, "--bootstrap-server", bootstrap, stdin="".join(m + "\n" for m in more)).code == 0
    second = moldau("consume", topic, "--group", group, "--from-beginning", "--max-messages", "2",
                    "--timeout-ms", "15000",
                    "--bootstrap-server", bootstrap)
    assert second.code == 0 and second.out.splitlines() == more
    assert second.err.strip().splitlines()[-1] == "Processed a total of 2 messages"


def test_consumer_stops_cleanly_on_sigterm(bootstrap):
    topic = "quickstart-sigterm"
    assert moldau("topics", "create", topic, "--bootstrap-server", bootstrap).code == 0
    assert moldau("produce", topic, "--bootstrap-server", bootstrap, stdin="one\n").code == 0
    consumer = Running("consume", topic, "--from-beginning", "--bootstrap-server", bootstrap)
    try:
        assert consumer.read_lines(1) == ["one"]
        consumer.process.terminate()
        _, err = consumer.process.communicate(timeout=20)
    finally:
        consumer.stop()
    assert consumer.process.returncode == 0
    assert err.strip().splitlines()[-1] == "Processed a total of 1 messages"


def test_producer_prompts_on_a_terminal(bootstrap):
    topic = "quickstart-tty"
    assert moldau("topics", "create", topic, "--bootstrap-server", bootstrap).code == 0
    controller, terminal = pty.openpty()
    producer = Running("produce", topic, "--bootstrap-server", bootstrap, stdin=terminal)
    os.close(terminal)
    try:
        prompt = _read_some(producer.process.stderr, ">")
        assert prompt.startswith(">")
        os.write(controller, b"typed line\n")
        assert _read_some(producer.process.stderr, ">") == ">"
        os.write(controller, b"\x04")  # Ctrl-D: end of input
        producer.process.wait(timeout=20)
    finally:
        producer.stop()
        os.close(controller)
    assert producer.process.returncode == 0
    consumed = moldau("consume", topic, "--from-beginning", "--max-messages", "1", "--bootstrap-server", bootstrap)
    assert consumed.out == "typed line\n"


def _read_some(stream, until: str, timeout_s: float = 20.0) -> str:
    text, deadline = "", time.monotonic() + timeout_s
    fd = stream.fileno()
    while until not in text and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 1024).decode()
            if not chunk:
                break
            text += chunk
    return text


def test_unreachable_broker_process_prints_one_line(tmp_path):
    env = {"MOLDAU_BOOTSTRAP_SERVER": ""}
    for argv in (["topics", "--list"], ["consume", "--topic", "x"], ["groups", "--list"]):
        started = time.monotonic()
        result = run_cli_process(["--bootstrap-server", "127.0.0.1:1", *argv], env=env)
        assert time.monotonic() - started < 10
        assert result.code == 1
        assert result.err == "moldau: cannot reach 127.0.0.1:1 — is `moldau server` running?\n"
        assert result.out == ""


def test_produce_auto_creates_a_topic_when_the_broker_does(bootstrap):
    for topic in ("auto-created-1", "auto-created-2", "auto-created-3"):
        produced = moldau("produce", topic, "--bootstrap-server", bootstrap, stdin="hello\n")
        assert produced.code == 0, produced.err
        consumed = moldau("consume", topic, "--from-beginning", "--max-messages", "1", "--timeout-ms", "10000",
                          "--bootstrap-server", bootstrap)
        assert consumed.out == "hello\n", consumed.err


def test_bytes_that_are_not_utf8_round_trip_exactly(bootstrap, tmp_path):
    topic = "quickstart-binary"
    assert moldau("topics", "create", topic, "--bootstrap-server", bootstrap).code == 0
    data = b"plain\n\xff\xfe binary\ncaf\xc3\xa9 \x80\n"
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    assert moldau("produce", topic, "--file", str(path), "--bootstrap-server", bootstrap).code == 0
    consumed = subprocess.run(
        cli_command(["consume", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "15000",
                     "--bootstrap-server", bootstrap]),
        capture_output=True, timeout=60, env=cli_environment(),
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout == data
