"""The CLI's pure parts: argument spellings, key=value and properties parsing, line formats,
message printing, tables — no broker needed."""

from __future__ import annotations

import argparse
import io
import json
import time

import pytest

from moldau.cli import common, consume, groups, produce, topics
from moldau.cli.main import CliError, build_parser


def parse(*argv: str) -> argparse.Namespace:
    args, extras = build_parser().parse_known_args(list(argv))
    if extras:
        args.words = list(args.words) + extras
    return args


def test_topics_both_spellings_parse_to_the_same_request():
    moldau_style = topics.parse_request(parse("topics", "create", "events", "-p", "3", "-c", "retention.ms=10"))
    kafka_style = topics.parse_request(
        parse("topics", "--create", "--topic", "events", "--partitions", "3", "--config", "retention.ms=10")
    )
    assert moldau_style == kafka_style == topics.TopicsRequest("create", ["events"], {"retention.ms": "10"})


def test_topics_alter_config_takes_key_values_after_the_name():
    request = topics.parse_request(parse("topics", "alter-config", "events", "a=1", "b=2"))
    assert request == topics.TopicsRequest("alter-config", ["events"], {"a": "1", "b": "2"})


def test_topics_default_action_is_list_and_conflicts_are_errors():
    assert topics.parse_request(parse("topics")).action == "list"
    with pytest.raises(CliError, match="choose one"):
        topics.parse_request(parse("topics", "--create", "--delete", "--topic", "x"))
    with pytest.raises(CliError, match="unknown topics action 'frobnicate'"):
        topics.parse_request(parse("topics", "frobnicate"))


def test_global_options_before_or_after_the_subcommand():
    before = parse("--bootstrap-server", "h:1", "-o", "json", "topics", "list")
    after = parse("topics", "list", "--bootstrap-server", "h:1", "--output", "json")
    assert common.settings(before) == common.settings(after)
    assert common.settings(after).bootstrap_servers == "h:1" and common.settings(after).output == "json"


def test_bootstrap_default_and_environment(monkeypatch):
    monkeypatch.delenv(common.BOOTSTRAP_ENV, raising=False)
    assert common.settings(parse("topics")).bootstrap_servers == "localhost:9092"
    monkeypatch.setenv(common.BOOTSTRAP_ENV, "env:9")
    assert common.settings(parse("topics")).bootstrap_servers == "env:9"
    assert common.settings(parse("topics", "-b", "flag:1")).bootstrap_servers == "flag:1"


def test_key_values_accept_commas_and_kafka_list_syntax():
    assert common.parse_key_values(["a=1,b=2", "c = 3"]) == {"a": "1", "b": "2", "c": "3"}
    assert common.parse_key_values(["follower.replication.throttled.replicas=[0:1,1:2]"]) == {
        "follower.replication.throttled.replicas": "0:1,1:2"
    }
    with pytest.raises(CliError, match="expected key=value"):
        common.parse_key_values(["novalue"])


def test_properties_file_is_read_as_java_reads_it(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text(
        "# comment\n! also a comment\n\nsecurity.protocol=SASL_SSL\nsasl.mechanism: PLAIN\nx = a=b\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required \\\n"
        '    username="u" password="p";\n'
    )
    loaded = common.read_properties(str(path))
    assert loaded["security.protocol"] == "SASL_SSL" and loaded["sasl.mechanism"] == "PLAIN"
    assert loaded["x"] == "a=b"
    assert common.java_client_properties(loaded)["sasl.username"] == "u"
    with pytest.raises(CliError, match="cannot read"):
        common.read_properties(str(tmp_path / "missing"))


def test_bad_bootstrap_address():
    with pytest.raises(CliError, match="expected HOST:PORT"):
        common.check_reachable("localhost")


def test_table_alignment_and_missing_values():
    out = io.StringIO()
    common.emit_table(("A", "LONGER"), [(1, None), ("wide value", [1, 2])], file=out)
    assert out.getvalue().splitlines() == ["A           LONGER", "1           -", "wide value  1,2"]


def test_producer_line_formats():
    fmt = produce.LineFormat(key_separator=":", static_headers=[("h", b"v")])
    assert fmt.parse("k:v:w") == (b"k", b"v:w", [("h", b"v")])
    with pytest.raises(CliError, match="no key separator"):
        fmt.parse("novalue")
    kafka = produce.line_format(parse("produce", "t", "--property", "parse.key=true", "--property",
                                      "parse.headers=true", "--property", "headers.delimiter=|"))
    assert kafka.parse("a:1,b:2|key\tvalue") == (b"key", b"value", [("a", b"1"), ("b", b"2")])
    assert produce.line_format(parse("produce", "t")).parse("plain") == (None, b"plain", [])


class QueueingProducer:
    """A producer that only delivers on flush (as librdkafka with a long linger.ms)."""

    def __init__(self) -> None:
        self.queued: list[bytes] = []
        self.delivered: list[bytes] = []
        self.callbacks: list = []

    def produce(self, topic, value, key=None, headers=None, on_delivery=None, **extra) -> None:
        self.queued.append(value)
        self.callbacks.append(on_delivery)

    def poll(self, timeout=0) -> int:
        return 0

    def flush(self, timeout=None) -> int:
        for value, callback in zip(self.queued, self.callbacks):
            self.delivered.append(value)
            callback(None, None)
        self.queued, self.callbacks = [], []
        return 0


def test_produce_flushes_the_lines_before_a_malformed_one(monkeypatch, tmp_path):
    """A line without the key separator stops the input; the lines before it are still queued in
    the producer and must be delivered before the command exits (Kafka's console producer closes,
    so flushes, its producer), and the error says where the input stopped."""
    producer = QueueingProducer()
    monkeypatch.setattr(produce, "make_producer", lambda current, args: producer)
    monkeypatch.setattr(produce, "check_topic", lambda *args: None)
    source = tmp_path / "lines.txt"
    source.write_text("a:1\nb:2\nno separator\nc:3\n")
    with pytest.raises(CliError) as caught:
        produce.run(parse("produce", "t", "--file", str(source), "--key-separator", ":", "--no-progress"))
    assert producer.delivered == [b"1", b"2"]
    assert str(caught.value) == "line 3: no key separator ':' in 'no separator' (2 sent before it, 2 acknowledged)"


class FakeMessage:
    def __init__(self, key, value, headers=None):
        self._key, self._value, self._headers = key, value, headers

    def topic(self):
        return "t"

    def partition(self):
        return 2

    def offset(self):
        return 41

    def timestamp(self):
        return (1, 1700000000000)

    def key(self):
        return self._key

    def value(self):
        return self._value

    def headers(self):
        return self._headers


def test_consumer_text_format_follows_kafkas_formatter():
    args = parse("consume", "t", "--property", "print.key=true", "--property", "print.timestamp=true",
                 "--print-offset", "--print-partition", "--print-headers")
    printer = consume.printer(args, common.settings(args))
    assert printer.line(FakeMessage(None, b"v", [("h", b"1")])) == \
        "CreateTime:1700000000000\tPartition:2\tOffset:41\th:1\tnull\tv"
    assert consume.printer(parse("consume", "t"), common.settings(parse("consume", "t"))).line(
        FakeMessage(b"k", b"only value")) == "only value"


def test_consumer_json_format_is_stable_and_binary_safe():
    args = parse("consume", "t", "--format", "json")
    line = consume.printer(args, common.settings(args)).line(FakeMessage(b"k", b"\xff\x00", [("h", None)]))
    assert json.loads(line) == {
        "topic": "t", "partition": 2, "offset": 41, "timestamp": 1700000000000, "timestamp_type": "CreateTime",
        "key": "k", "value": "/wA=", "value_encoding": "base64", "headers": [["h", None]],
    }


def test_consumer_start_offsets():
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

    assert consume.start_offset(parse("consume", "t")) is None
    assert consume.start_offset(parse("consume", "t", "--from-beginning")) == OFFSET_BEGINNING
    assert consume.start_offset(parse("consume", "t", "--offset", "latest")) == OFFSET_END
    assert consume.start_offset(parse("consume", "t", "--offset", "7")) == 7
    with pytest.raises(CliError):
        consume.start_offset(parse("consume", "t", "--offset", "-3"))


def test_groups_spellings_and_dry_run_defaults():
    assert groups.parse_action(parse("groups", "describe", "g")) == ("describe", ["g"], False)
    assert groups.parse_action(parse("groups", "--describe", "--group", "g")) == ("describe", ["g"], True)
    assert groups.parse_action(parse("groups")) == ("list", [], False)
    assert groups.parse_datetime("2024-01-02T03:04:05Z") == 1704164645000
    assert groups.parse_datetime("2024-01-02T03:04:05.500+01:00") == 1704161045500
    with pytest.raises(CliError, match="bad --to-datetime"):
        groups.parse_datetime("yesterday")


def test_unreachable_message_names_the_address():
    assert common.unreachable_message("localhost:9092") == \
        "cannot reach localhost:9092 — is `moldau server` running?"


def test_java_sasl_jaas_config_becomes_librdkafka_credentials():
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'username="alice" password="s3c\\"ret";')
    converted = common.java_client_properties({"sasl.jaas.config": jaas, "sasl.mechanism": "PLAIN"})
    assert converted == {"sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": 's3c"ret'}
    with pytest.raises(CliError, match="no username"):
        common.java_client_properties({"sasl.jaas.config": "SomeModule required;"})


@pytest.mark.parametrize("argv", [
    ["server", "--port", "70000"],
    ["server", "--port", "-1"],
    ["topics", "create", "t", "--partitions", "2147483648"],  # the broker explains 0 and -5
    ["topics", "create", "t", "--replication-factor", "40000"],
    ["consume", "t", "--partition", "-1"],
    ["consume", "t", "--max-messages", "0"],
    ["produce", "t", "--linger-ms", "-5"],
    ["perf", "produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "0"],
    ["perf", "produce", "--topic", "t", "--num-records", "1", "--record-size", "1", "--throughput", "nan"],
])
def test_number_options_are_range_checked(argv, capsys):
    from moldau.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "expected" in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("command", [["produce"], ["consume"], ["perf", "consume", "--messages", "1", "--topic"]])
def test_illegal_topic_names_are_refused_before_connecting(command, capsys):
    from moldau.cli.main import main

    started = time.monotonic()
    assert main([*command, "my topic", "--bootstrap-server", "127.0.0.1:1"]) == 1
    assert time.monotonic() - started < 2
    err = capsys.readouterr().err
    assert err.startswith('moldau: Topic name "my topic" is illegal') and "leader" not in err


def test_a_server_still_starting_is_waited_for(tmp_path):
    """`moldau server &` then a command at once: the listener appears a moment later."""
    import socket
    import threading

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    listener = socket.socket()

    def start_late():
        time.sleep(0.5)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()

    thread = threading.Thread(target=start_late)
    thread.start()
    try:
        common.check_reachable(f"127.0.0.1:{port}", timeout_s=5)
    finally:
        thread.join()
        listener.close()


@pytest.mark.parametrize("words, expected", [
    (["perf", ""], {"produce", "consume", "end-to-end"}),
    (["perf", "produce", "--num"], {"--num-records"}),
    (["connect", ""], {"standalone"}),
    # an option's value before the command (bash splits host:port at the colon)
    (["--bootstrap-server", "localhost", ":", "9092", "to"], {"topics"}),
    (["-b", "localhost", ":", "9092", "topics", "cr"], {"create"}),
    (["--output", "json", "groups", "--to-e"], {"--to-earliest"}),
])
def test_bash_completion(words, expected, tmp_path):
    import shutil
    import subprocess

    from moldau.cli.completion import bash_script

    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "moldau.bash"
    script.write_text(bash_script(build_parser()))
    quoted = " ".join(f"'{w}'" for w in ["moldau", *words])
    shell = f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _moldau; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30)
    assert set(result.stdout.split()) >= expected and result.stdout.strip(), (result.stdout, result.stderr)


def test_every_option_of_every_command_says_what_it_does():
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif action.help is None:
                yield " ".join(path), action.option_strings or action.dest

    assert list(walk(build_parser(), ["moldau"])) == []


def test_every_number_option_is_range_checked():
    """A bare int/float type lets `--port 70000` through (the OS wraps it): use common.integer
    (or common.rate) with the option's real bounds."""
    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            elif action.type in (int, float):
                yield " ".join(path), action.option_strings or action.dest

    assert list(walk(build_parser(), ["moldau"])) == []
