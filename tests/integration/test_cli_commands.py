"""Every `moldau` subcommand, in-process, against Apache Kafka 4.x and against Moldau's broker.

Each backend is started once for the module (auto-creation of topics off, so "unknown topic" is
an error on both); tests use their own topic and group names. Output is asserted in text and
JSON, and each error path is one line on stderr with exit code 1.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from moldau.cli.testing import run_cli, run_cli_process
from moldau.testing.kafka_dist import KafkaServer, kafka_tool, need_kafka

pytestmark = pytest.mark.integration

# Both backends: no auto-creation (so "unknown topic" is an error) and no initial rebalance delay
# (a first consumer in a group gets its partitions at once, as in Kafka's own test setups).
BROKER_CONFIG = {"auto.create.topics.enable": "false", "group.initial.rebalance.delay.ms": "0"}


class Backend:
    def __init__(self, name: str, bootstrap_servers: str):
        self.name = name
        self.bootstrap_servers = bootstrap_servers

    def run(self, *argv: str, stdin: str = ""):
        """`moldau ARGV --bootstrap-server B` (global options after the subcommand's own).

        A consume always gets a --timeout-ms, so a broker that never delivers fails the test
        instead of hanging the suite.
        """
        if argv[0] == "consume" and "--timeout-ms" not in argv:
            argv = (*argv, "--timeout-ms", "15000")
        return run_cli([*argv, "--bootstrap-server", self.bootstrap_servers], stdin=stdin)

    def ok(self, *argv: str, stdin: str = ""):
        result = self.run(*argv, stdin=stdin)
        assert result.code == 0, f"moldau {' '.join(argv)} -> {result.code}: {result.err}"
        return result


@pytest.fixture(scope="module", params=["kafka", "moldau"])
def backend(request):
    if request.param == "kafka":
        need_kafka()
        with KafkaServer(overrides=BROKER_CONFIG) as kafka:
            yield Backend("kafka", kafka.bootstrap_servers)
    else:
        from moldau import Broker

        with Broker(config=BROKER_CONFIG) as broker:
            yield Backend("moldau", broker.bootstrap_servers)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def one_line_error(result, *fragments: str) -> None:
    assert result.code == 1, (result.code, result.out, result.err)
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("moldau: "), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err_lines[0], result.err


def wait_until(condition, timeout_s: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# ---- topics ---------------------------------------------------------------------------------


def test_topics_create_list_describe_delete(backend):
    topic = name("cli-topics")
    created = backend.ok("topics", "create", topic, "-p", "3", "-r", "1", "-c", "retention.ms=3600000")
    assert created.out == f"Created topic {topic}.\n"

    assert topic in backend.ok("topics", "list").out.splitlines()
    listed = json.loads(backend.ok("topics", "list", "--output", "json").out)
    assert {"name": topic, "partitions": 3} in listed

    described = backend.ok("topics", "describe", topic).out.splitlines()
    assert re.fullmatch(rf"Topic: {topic}\tTopicId: [\w-]{{22}}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: .*",
                        described[0]), described[0]
    assert "retention.ms=3600000" in described[0]
    assert described[1].split() == ["PARTITION", "LEADER", "REPLICAS", "ISR", "EARLIEST", "LATEST"]
    rows = [line.split() for line in described[2:]]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    assert all(row[4:] == ["0", "0"] for row in rows), rows

    data = json.loads(backend.ok("-o", "json", "topics", "describe", topic).out)
    assert data[0]["name"] == topic and data[0]["partition_count"] == 3 and data[0]["replication_factor"] == 1
    assert data[0]["configs"] == {"retention.ms": "3600000"}
    assert re.fullmatch(r"[\w-]{22}", data[0]["topic_id"]) and data[0]["topic_id"] in described[0]
    if backend.name == "kafka":  # the same id Kafka's own kafka-topics prints
        tool = kafka_tool("kafka-topics", ["--bootstrap-server", backend.bootstrap_servers, "--describe",
                                           "--topic", topic])
        assert f"TopicId: {data[0]['topic_id']}\t" in tool.stdout, tool.stdout + tool.stderr
    for index, partition in enumerate(data[0]["partitions"]):
        assert partition["partition"] == index
        assert partition["leader"] is not None and partition["replicas"] == [partition["leader"]]
        assert partition["isr"] == partition["replicas"]
        assert partition["earliest_offset"] == 0 and partition["latest_offset"] == 0

    assert backend.ok("topics", "delete", topic).out == f"Deleted topic {topic}.\n"
    wait_until(lambda: topic not in backend.ok("topics", "list").out.splitlines(), what="topic deleted")


def test_topics_kafka_spelling(backend):
    topic = name("cli-kafka-spelling")
    created = backend.ok("topics", "--create", "--topic", topic, "--partitions", "2", "--replication-factor", "1")
    assert f"Created topic {topic}." in created.out
    assert topic in backend.ok("topics", "--list").out.splitlines()
    described = backend.ok("topics", "--describe", "--topic", topic).out
    assert described.startswith(f"Topic: {topic}\tTopicId: ") and "\tPartitionCount: 2\t" in described
    altered = backend.ok("topics", "--alter", "--topic", topic, "--partitions", "4")
    assert f"Altered topic {topic}." in altered.out
    data = wait_until(
        lambda: (d := json.loads(backend.ok("topics", "--describe", "--topic", topic, "-o", "json").out))
        and d[0]["partition_count"] == 4 and d,
        what="4 partitions",
    )
    assert [p["partition"] for p in data[0]["partitions"]] == [0, 1, 2, 3]
    assert f"Deleted topic {topic}." in backend.ok("topics", "--delete", "--topic", topic).out


def test_topics_alter_config(backend):
    topic = name("cli-alter")
    backend.ok("topics", "create", topic)
    backend.ok("topics", "alter-config", topic, "retention.ms=5000", "cleanup.policy=compact")
    configs = json.loads(backend.ok("topics", "describe", topic, "-o", "json").out)[0]["configs"]
    assert configs == {"retention.ms": "5000", "cleanup.policy": "compact"}


def test_topics_errors(backend):
    topic = name("cli-errors")
    backend.ok("topics", "create", topic)
    one_line_error(backend.run("topics", "create", topic), f"topic '{topic}' already exists")
    one_line_error(backend.run("topics", "create", name("bad"), "-p", "0"), "invalid partition count")
    one_line_error(backend.run("topics", "create", name("bad"), "-r", "5"), "invalid replication factor")
    one_line_error(backend.run("topics", "create", name("bad"), "-c", "no.such.config=1"), "bad config")
    missing = name("missing")
    one_line_error(backend.run("topics", "describe", missing), f"unknown topic '{missing}'")
    one_line_error(backend.run("topics", "delete", missing), f"unknown topic '{missing}'")
    one_line_error(backend.run("topics", "alter-config", missing, "retention.ms=1"), f"unknown topic '{missing}'")
    one_line_error(backend.run("topics", "--alter", "--topic", topic, "--partitions", "1"), "invalid partition count")
    assert backend.ok("topics", "create", topic, "--if-not-exists").out == ""


# ---- produce / consume ----------------------------------------------------------------------


def test_produce_consume_keys_headers_offsets(backend):
    topic = name("cli-produce")
    backend.ok("topics", "create", topic)
    lines = "".join(f"key{i}:value {i}\n" for i in range(5))
    produced = backend.ok("produce", topic, "--key-separator", ":", "--header", "source=cli", "--header", "n=1",
                          stdin=lines)
    assert produced.out == ""

    consumed = backend.ok("consume", topic, "--from-beginning", "--max-messages", "5", "--print-key",
                          "--print-offset", "--print-partition", "--print-headers")
    assert consumed.out.splitlines() == [
        f"Partition:0\tOffset:{i}\tsource:cli,n:1\tkey{i}\tvalue {i}" for i in range(5)
    ]
    assert consumed.err_lines[-1] == "Processed a total of 5 messages"

    records = [json.loads(line) for line in
               backend.ok("consume", topic, "--offset", "3", "--partition", "0", "--format", "json",
                          "--timeout-ms", "1500").out.splitlines()]
    assert [(r["offset"], r["key"], r["value"]) for r in records] == [(3, "key3", "value 3"), (4, "key4", "value 4")]
    assert records[0]["headers"] == [["source", "cli"], ["n", "1"]]
    assert records[0]["topic"] == topic and records[0]["partition"] == 0
    assert records[0]["timestamp_type"] == "CreateTime"
    assert abs(records[0]["timestamp"] / 1000 - time.time()) < 300


def test_consume_kafka_properties_and_timeout(backend):
    topic = name("cli-props")
    backend.ok("topics", "--create", "--topic", topic)
    backend.ok("produce", "--topic", topic, "--property", "parse.key=true", "--property", "key.separator=|",
               stdin="a|1\nb|2\n")
    started = time.monotonic()
    consumed = backend.ok("consume", "--topic", topic, "--from-beginning", "--timeout-ms", "2000",
                          "--property", "print.key=true", "--property", "key.separator=:")
    assert consumed.out.splitlines() == ["a:1", "b:2"]
    assert consumed.err_lines[-1] == "Processed a total of 2 messages"
    assert time.monotonic() - started < 20
    # Without --from-beginning a consumer starts at the end: nothing old is printed.
    latest = backend.ok("consume", topic, "--timeout-ms", "1000")
    assert latest.out == "" and latest.err_lines[-1] == "Processed a total of 0 messages"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_produce_compression_and_acks(backend, codec):
    topic = name(f"cli-{codec}")
    backend.ok("topics", "create", topic)
    lines = [f"{codec} message {i} " + "x" * 50 for i in range(200)]
    backend.ok("produce", topic, "--compression", codec, "--acks", "1", stdin="\n".join(lines) + "\n")
    consumed = backend.ok("consume", topic, "--from-beginning", "--max-messages", "200")
    assert consumed.out.splitlines() == lines


def test_produce_file_with_progress(backend, tmp_path):
    topic = name("cli-file")
    backend.ok("topics", "create", topic, "-p", "2")
    count = 20000
    path = tmp_path / "messages.txt"
    path.write_text("".join(f"message {i}\n" for i in range(count)))
    produced = backend.ok("produce", topic, "--file", str(path), "--progress", "-o", "json")
    assert json.loads(produced.out) == {"topic": topic, "sent": count, "acknowledged": count, "failed": 0,
                                        "errors": []}
    assert any(line.startswith("produced ") and "acknowledged" in line for line in produced.err_lines)
    assert f"produced {count} messages, {count} acknowledged" in produced.err_lines[-1]
    assert "100.0% of input" in produced.err_lines[-1]
    described = json.loads(backend.ok("topics", "describe", topic, "-o", "json").out)[0]
    assert sum(p["latest_offset"] for p in described["partitions"]) == count


def test_produce_consume_errors(backend):
    missing = name("missing")
    one_line_error(backend.run("produce", missing, stdin="x\n"), f"unknown topic '{missing}'")
    one_line_error(backend.run("consume", missing, "--timeout-ms", "500"), f"unknown topic '{missing}'")
    topic = name("cli-partition")
    backend.ok("topics", "create", topic)
    one_line_error(backend.run("produce", topic, "--partition", "7", stdin="x\n"), "no partition 7")
    one_line_error(backend.run("consume", topic, "--partition", "7", "--timeout-ms", "500"), "no partition 7")
    one_line_error(backend.run("consume", topic, "--offset", "soon"), "bad --offset")
    one_line_error(backend.run("produce", topic, "--key-separator", ":", stdin="no separator here\n"),
                   "no key separator")
    one_line_error(backend.run("produce", stdin="x\n"), "which topic")
    for command in ("produce", "consume"):  # the real cause, at once (not "no leader" after 30 s)
        started = time.monotonic()
        one_line_error(backend.run(command, "my topic", stdin="x\n"), 'Topic name "my topic" is illegal')
        assert time.monotonic() - started < 5


def test_produce_reports_failed_deliveries(backend):
    topic = name("cli-too-large")
    backend.ok("topics", "create", topic, "-c", "max.message.bytes=2000")
    result = backend.run("produce", topic, "--linger-ms", "0", stdin="small\n" + "x" * 10000 + "\nsmall again\n")
    one_line_error(result, f"of 3 messages to '{topic}' failed", "too large")
    assert result.err_lines[0].startswith(("moldau: 1 of 3", "moldau: 2 of 3", "moldau: 3 of 3")), result.err
    consumed = backend.ok("consume", topic, "--from-beginning", "--timeout-ms", "2000")
    assert "x" * 100 not in consumed.out


def test_produce_an_oversized_line_fails_alone(backend):
    """librdkafka refuses a message over its message.max.bytes before any broker sees it; like
    Kafka's console producer, that one line fails (with what to raise) and the rest are sent."""
    topic = name("cli-oversized")
    backend.ok("topics", "create", topic)
    result = backend.run("produce", topic, stdin="a\nb\n" + "x" * 1_100_000 + "\nc\n")
    one_line_error(result, f"1 of 4 messages to '{topic}' failed", "message 3", "-X message.max.bytes=")
    assert backend.ok("consume", topic, "--from-beginning", "--timeout-ms", "2000").out.split() == ["a", "b", "c"]


def test_produce_a_malformed_line_keeps_the_lines_before_it(backend):
    """Input that stops on a bad line must not drop the lines read before it, still queued in
    the producer (Kafka's console producer flushes on close); the error says where it stopped.
    A real process: at interpreter exit nothing flushes the producer for us."""
    topic = name("cli-bad-line")
    backend.ok("topics", "create", topic)
    lines = "".join(f"k{i}:v{i}\n" for i in range(20000)) + "no separator\nk:after\n"
    result = run_cli_process(["produce", topic, "--key-separator", ":",
                              "--bootstrap-server", backend.bootstrap_servers], stdin=lines)
    one_line_error(result, "line 20001: no key separator", "20000 sent before it, 20000 acknowledged")
    described = json.loads(backend.ok("-o", "json", "topics", "describe", topic).out)[0]
    assert described["partitions"][0]["latest_offset"] == 20000


# ---- groups ---------------------------------------------------------------------------------


def _produce_lines(backend: Backend, topic: str, count: int) -> list[str]:
    lines = [f"event {i}" for i in range(count)]
    backend.ok("produce", topic, stdin="".join(line + "\n" for line in lines))
    return lines


def test_group_consumer_resumes_where_the_first_committed(backend):
    topic, group = name("cli-group"), name("g")
    backend.ok("topics", "create", topic)
    lines = _produce_lines(backend, topic, 5)
    first = backend.ok("consume", topic, "--group", group, "--from-beginning", "--max-messages", "3")
    assert first.out.splitlines() == lines[:3]
    second = backend.ok("consume", topic, "--group", group, "--from-beginning", "--max-messages", "2")
    assert second.out.splitlines() == lines[3:]
    assert second.err_lines[-1] == "Processed a total of 2 messages"


def test_groups_list_describe_reset_delete(backend):
    topic, group = name("cli-groups"), name("g")
    backend.ok("topics", "create", topic, "-p", "2")
    backend.ok("produce", topic, "--partition", "0", stdin="a\nb\nc\n")
    backend.ok("produce", topic, "--partition", "1", stdin="d\n")
    backend.ok("consume", topic, "--group", group, "--from-beginning", "--max-messages", "4")

    wait_until(lambda: group in backend.ok("groups", "list").out.splitlines(), what="group listed")
    listed = json.loads(backend.ok("groups", "--list", "-o", "json").out)
    assert {"group": group, "state": "EMPTY"} in [{"group": g["group"], "state": g["state"]} for g in listed]
    assert all(g["type"] in ("classic", "consumer") for g in listed)

    described = json.loads(backend.ok("groups", "describe", group, "-o", "json").out)[0]
    assert described["group"] == group and described["state"] == "EMPTY" and described["members"] == []
    assert [(p["topic"], p["partition"], p["committed_offset"], p["log_end_offset"], p["lag"])
            for p in described["partitions"]] == [(topic, 0, 3, 3, 0), (topic, 1, 1, 1, 0)]
    table = backend.ok("groups", "--describe", "--group", group).out.splitlines()
    assert table[1].split()[:6] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]
    assert table[2].split()[:6] == [group, topic, "0", "3", "3", "0"]

    # Kafka's spelling without --execute is a dry run.
    dry = backend.ok("groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest")
    assert dry.out.startswith("Dry run")
    assert json.loads(backend.ok("groups", "describe", group, "-o", "json").out)[0]["partitions"][0]["lag"] == 0

    backend.ok("groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    lags = [p["lag"] for p in json.loads(backend.ok("groups", "describe", group, "-o", "json").out)[0]["partitions"]]
    assert lags == [3, 1]

    plan = json.loads(backend.ok("groups", "reset-offsets", group, "--topic", f"{topic}:0", "--to-offset", "2",
                                 "-o", "json").out)
    assert plan == [{"group": group, "executed": True, "offsets": [{"topic": topic, "partition": 0, "offset": 2}]}]
    resumed = backend.ok("consume", topic, "--group", group, "--partition", "0", "--offset", "2",
                         "--max-messages", "1")
    assert resumed.out == "c\n"

    backend.ok("groups", "reset-offsets", group, "--topic", topic, "--to-latest")
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    at_future = json.loads(backend.ok("groups", "reset-offsets", group, "--topic", topic, "--to-datetime", future,
                                      "--dry-run", "-o", "json").out)[0]
    assert [o["offset"] for o in at_future["offsets"]] == [3, 1] and at_future["executed"] is False
    at_past = json.loads(backend.ok("groups", "reset-offsets", group, "--topic", topic, "--to-datetime", past,
                                    "-o", "json").out)[0]
    assert [o["offset"] for o in at_past["offsets"]] == [0, 0]

    assert backend.ok("groups", "delete", group).out == f"Deleted consumer group '{group}'.\n"
    one_line_error(backend.run("groups", "describe", group), f"unknown group '{group}'")


def test_groups_errors(backend):
    missing = name("nogroup")
    one_line_error(backend.run("groups", "describe", missing), f"unknown group '{missing}'")
    one_line_error(backend.run("groups", "reset-offsets", missing, "--to-earliest"), "--topic")
    one_line_error(backend.run("groups", "describe"), "needs a group")


# ---- configs --------------------------------------------------------------------------------


def test_configs_topic_describe_alter(backend):
    topic = name("cli-configs")
    backend.ok("topics", "create", topic)
    assert backend.ok("configs", "alter", "--topic", topic, "retention.ms=60000").out == \
        f"Completed updating config for topic {topic}.\n"
    backend.ok("configs", "--alter", "--entity-type", "topics", "--entity-name", topic,
               "--add-config", "segment.bytes=1048576,cleanup.policy=compact")
    text = backend.ok("configs", "describe", "--topic", topic).out.splitlines()
    assert text[0] == f"Dynamic configs for topic {topic} are:"
    rows = {line.split()[0]: line.split()[1:] for line in text[2:]}
    assert rows["retention.ms"] == ["60000", "DYNAMIC_TOPIC_CONFIG"]
    assert rows["segment.bytes"] == ["1048576", "DYNAMIC_TOPIC_CONFIG"]

    backend.ok("configs", "alter", "--topic", topic, "--delete-config", "retention.ms")
    described = json.loads(backend.ok("configs", "--describe", "--entity-type", "topics", "--entity-name", topic,
                                      "-o", "json").out)
    names = {c["name"]: c["value"] for c in described["configs"] if c["source"] == "DYNAMIC_TOPIC_CONFIG"}
    assert names == {"segment.bytes": "1048576", "cleanup.policy": "compact"}
    everything = json.loads(backend.ok("configs", "describe", "--topic", topic, "--all", "-o", "json").out)
    by_name = {c["name"]: c for c in everything["configs"]}
    assert by_name["retention.ms"]["source"] == "DEFAULT_CONFIG"
    assert by_name["cleanup.policy"]["value"] == "compact"


def test_configs_broker(backend):
    brokers = json.loads(backend.ok("topics", "list", "-o", "json").out)  # connectivity
    assert isinstance(brokers, list)
    described = json.loads(backend.ok("configs", "describe", "--broker", _broker_id(backend), "--all",
                                      "-o", "json").out)
    assert described["entity_type"] == "broker"
    assert any(c["name"] == "log.retention.hours" or c["name"] == "log.retention.ms" for c in described["configs"])
    # log.retention.ms: dynamic per broker in Kafka (a long value, harmless to other tests).
    backend.ok("configs", "alter", "--broker", _broker_id(backend), "log.retention.ms=604800001")
    dynamic = json.loads(backend.ok("configs", "describe", "--broker", _broker_id(backend), "-o", "json").out)
    assert {"name": "log.retention.ms", "value": "604800001", "source": "DYNAMIC_BROKER_CONFIG",
            "read_only": False, "sensitive": False} in dynamic["configs"]
    backend.ok("configs", "alter", "--broker", _broker_id(backend), "--delete-config", "log.retention.ms")
    after = json.loads(backend.ok("configs", "describe", "--broker", _broker_id(backend), "-o", "json").out)
    assert "log.retention.ms" not in {c["name"] for c in after["configs"]}


def _broker_id(backend: Backend) -> str:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": backend.bootstrap_servers}).list_topics(timeout=10)
    return str(sorted(metadata.brokers)[0])


def test_configs_errors(backend):
    topic = name("cli-configs-bad")
    backend.ok("topics", "create", topic)
    one_line_error(backend.run("configs", "alter", "--topic", topic, "no.such.config=1"), "bad config")
    missing = name("missing")
    one_line_error(backend.run("configs", "describe", "--topic", missing), f"unknown topic '{missing}'")
    one_line_error(backend.run("configs", "describe"), "exactly one of")
    one_line_error(backend.run("configs", "alter", "--topic", topic), "alter needs key=value")


# ---- global options -------------------------------------------------------------------------


def test_bootstrap_from_environment_and_command_config(backend, tmp_path):
    topic = name("cli-env")
    result = run_cli(["topics", "create", topic], env={"MOLDAU_BOOTSTRAP_SERVER": backend.bootstrap_servers})
    assert result.code == 0, result.err
    properties = tmp_path / "client.properties"
    properties.write_text("# client settings\nclient.id=moldau-test\nsocket.keepalive.enable = true\n")
    listed = run_cli(["--bootstrap-server", backend.bootstrap_servers, "--command-config", str(properties),
                      "topics", "list"])
    assert listed.code == 0 and topic in listed.out.splitlines()
    properties.write_text("no.such.client.property=1\n")
    one_line_error(run_cli(["topics", "list", "--command-config", str(properties),
                            "--bootstrap-server", backend.bootstrap_servers]), "no.such.client.property")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("argv", [
    ["topics", "list"],
    ["topics", "--create", "--topic", "t"],
    ["produce", "t"],
    ["consume", "t", "--from-beginning"],
    ["groups", "list"],
    ["configs", "describe", "--topic", "t"],
])
def test_unreachable_broker_is_one_line_and_quick(argv):
    address = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = run_cli([*argv, "--bootstrap-server", address], stdin="x\n")
    assert time.monotonic() - started < 10
    one_line_error(result)
    assert result.err_lines == [f"moldau: cannot reach {address} — is `moldau server` running?"]


def test_unreachable_default_names_the_default_address(monkeypatch):
    # Independent of whatever listens on 9092: the default is checked, then swapped for a
    # closed port to see that the default (not some other address) is what the message names.
    from moldau.cli import common

    assert common.BOOTSTRAP_DEFAULT == "localhost:9092"
    closed = f"localhost:{_closed_port()}"
    monkeypatch.setattr(common, "BOOTSTRAP_DEFAULT", closed)
    result = run_cli(["topics", "list"], env={"MOLDAU_BOOTSTRAP_SERVER": None})
    assert result.err_lines == [f"moldau: cannot reach {closed} — is `moldau server` running?"]


def test_version_and_completion():
    from moldau import __version__

    version = run_cli(["--version"])
    assert version.code == 0 and version.out.strip() == f"moldau {__version__}"
    script = run_cli(["completion", "bash"])
    assert script.code == 0
    for word in ("topics", "produce", "consume", "groups", "configs", "--bootstrap-server", "--from-beginning"):
        assert word in script.out
    assert "complete -o default -F _moldau moldau" in script.out
    assert run_cli(["completion", "zsh"]).out.startswith("#compdef moldau")
