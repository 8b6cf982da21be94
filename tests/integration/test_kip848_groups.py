"""KIP-848 consumer groups with real clients: the Java consumer (group.protocol=consumer, Kafka
4.1.1), librdkafka (confluent-kafka, group.protocol=consumer) and franz-go (ServerSideBalancer).

Each client runs as separate processes (tests/clients/kip848/GroupMember.java,
member_confluent.py, tests/clients/go/kip848member) that print what they own, with wall-clock
times, while a producer keeps writing. For each client: three members split six partitions;
a fourth joins and one leaves without the others losing a partition they keep; a SIGKILLed
member's partitions move after its session timeout; the committed offsets are where a new
member starts; every partition is owned by at most one member at every moment. Then: a regex
subscription picks up a topic created later, an empty classic group is taken over by a
new-protocol member with its offsets, bad heartbeats get Kafka's error codes, and Kafka's own
tools describe the group (kafka-consumer-groups) and decode its records (kafka-dump-log), and
a group and its offsets survive a kill -9 of the broker.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from moldau import Broker
from moldau.testing.kafka_dist import java_executable, kafka_classpath, log4j2_config, need_kafka
from moldau.testing.tools import need_executable

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SESSION_MS = 6_000
BROKER_CONFIG = {
    "group.consumer.session.timeout.ms": str(SESSION_MS), "group.consumer.min.session.timeout.ms": "2000",
    "group.consumer.heartbeat.interval.ms": "500", "group.consumer.min.heartbeat.interval.ms": "500",
    "group.initial.rebalance.delay.ms": "0",
}
PARTITIONS = 6
KINDS = ["java", "confluent", "franz"]
_built: dict[str, list[str]] = {}


def member_command(kind: str, tmp_root: Path) -> list[str]:
    """The argv prefix running one group member of this client kind (built once per session)."""
    if kind in _built:
        return _built[kind]
    if kind == "java":
        need_kafka()
        javac = need_executable("javac")
        classes = tmp_root / "kip848-java"
        classes.mkdir(exist_ok=True)
        source = ROOT / "tests" / "clients" / "kip848" / "GroupMember.java"
        built = subprocess.run([javac, "-d", str(classes), "-cp", kafka_classpath(), str(source)],
                               capture_output=True, text=True, timeout=300)
        assert built.returncode == 0, built.stderr[-3000:]
        command = [java_executable(), "-Xmx192m", f"-Dlog4j2.configurationFile={log4j2_config()}",
                   "-cp", f"{kafka_classpath()}{os.pathsep}{classes}", "GroupMember"]
    elif kind == "confluent":
        command = [sys.executable, str(ROOT / "tests" / "clients" / "kip848" / "member_confluent.py")]
    else:
        go = need_executable("go")
        binary = ROOT / "build" / "clients" / "kip848member"
        binary.parent.mkdir(parents=True, exist_ok=True)
        built = subprocess.run([go, "build", "-o", str(binary), "./kip848member"], cwd=ROOT / "tests" / "clients" / "go",
                               capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr[-3000:]
        command = [str(binary)]
    _built[kind] = command
    return command


class Member:
    """One member process; its events are read back from the JSON lines it printed."""

    def __init__(self, command: list[str], bootstrap: str, group: str, subscription: str, log: Path,
                 protocol: str = "consumer", regex: bool = False, settings: tuple[str, ...] = ()):
        self.name = log.stem
        self.log = log
        argv = [*command, bootstrap, group, protocol, subscription] + (["regex"] if regex else []) + list(settings)
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=log.open("w"),
                                        stderr=log.with_suffix(".err").open("w"), start_new_session=True)
        self.killed_ms: int | None = None

    def events(self) -> list[dict]:
        events = []
        for line in self.log.read_text().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except ValueError:
                    pass  # a line being written
        return events

    def owned(self) -> set[tuple[str, int]]:
        owned: set[tuple[str, int]] = set()
        for event in self.events():
            parts = {tuple(p) for p in event.get("partitions", ())}
            if event["ev"] == "assigned":
                owned |= parts
            elif event["ev"] in ("revoked", "lost"):
                owned -= parts
            elif event["ev"] == "closed":
                owned = set()
        return set() if self.killed_ms is not None else owned

    def count(self) -> int:
        counts = [e["n"] for e in self.events() if e["ev"] == "count"]
        return counts[-1] if counts else 0

    def stop(self) -> None:
        if self.process.poll() is None and self.killed_ms is None:
            self.process.stdin.close()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.killed_ms = int(time.time() * 1000)
            self.process.wait(30)


def ownership_intervals(member: Member) -> dict[tuple[str, int], list[tuple[int, int]]]:
    """(partition) -> [(from_ms, to_ms)] that this member owned it (open intervals end now)."""
    open_since: dict[tuple[str, int], int] = {}
    intervals: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for event in member.events():
        parts = [tuple(p) for p in event.get("partitions", ())]
        if event["ev"] == "assigned":
            for p in parts:
                open_since.setdefault(p, event["t"])
        elif event["ev"] in ("revoked", "lost", "closed"):
            for p in (parts if event["ev"] != "closed" else list(open_since)):
                if p in open_since:
                    intervals.setdefault(p, []).append((open_since.pop(p), event["t"]))
    end = member.killed_ms if member.killed_ms is not None else int(time.time() * 1000)
    for p, start in open_since.items():
        intervals.setdefault(p, []).append((start, end))
    return intervals


def assert_never_owned_twice(members: list[Member]) -> None:
    by_partition: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
    for member in members:
        for partition, spans in ownership_intervals(member).items():
            by_partition.setdefault(partition, []).extend((a, b, member.name) for a, b in spans)
    for partition, spans in by_partition.items():
        spans.sort()
        for (a1, b1, m1), (a2, b2, m2) in zip(spans, spans[1:]):
            assert a2 >= b1, f"{partition} owned by {m1} until {b1} and by {m2} from {a2}"


def wait_for(condition, timeout_s: float, what: str, members=()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    details = "; ".join(f"{m.name}: {sorted(m.owned())}" for m in members)
    raise AssertionError(f"timed out waiting for {what}: {details}")


class KeepProducing:
    """Writes to a topic's partitions in turn (about 200 records/s) until stopped."""

    def __init__(self, bootstrap: str, topic: str):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic = topic
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        i = 0
        while self.running:
            self.producer.produce(self.topic, str(i).encode(), partition=i % PARTITIONS)
            i += 1
            if i % 20 == 0:
                self.producer.poll(0)
                time.sleep(0.1)

    def stop(self) -> None:
        self.running = False
        self.thread.join(10)
        self.producer.flush(30)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(data_dir=str(tmp_path_factory.mktemp("kip848")), config=BROKER_CONFIG) as running:
        yield running


def create_topic(broker, name: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


def committed(broker, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group})
    try:
        result = consumer.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in result if tp.offset >= 0}


def revoked_partitions(member: Member, after_ms: int) -> set[tuple[str, int]]:
    return {tuple(p) for e in member.events() if e["ev"] in ("revoked", "lost") and e["t"] >= after_ms
            for p in e["partitions"]}


@pytest.mark.parametrize("kind", KINDS)
def test_group_of_three_over_six_partitions(broker, kind, tmp_path, tmp_path_factory):
    command = member_command(kind, tmp_path_factory.getbasetemp())
    topic, group = f"{kind}-orders", f"{kind}-group"
    create_topic(broker, topic)
    producer = KeepProducing(broker.bootstrap_servers, topic)
    members: list[Member] = []

    def start(name: str) -> Member:
        member = Member(command, broker.bootstrap_servers, group, topic, tmp_path / f"{name}.log")
        members.append(member)
        return member

    def spread(live: list[Member], sizes: list[int]) -> bool:
        owned = [m.owned() for m in live]
        return sorted(len(o) for o in owned) == sizes and len(set().union(*owned)) == PARTITIONS

    try:
        a, b, c = start("a"), start("b"), start("c")
        wait_for(lambda: spread([a, b, c], [2, 2, 2]), 90, "three members with two partitions each", members)
        assert_never_owned_twice(members)

        # A fourth member joins: the others keep consuming and lose only what moves to it.
        joined_ms = int(time.time() * 1000)
        kept = {m.name: m.owned() for m in (a, b, c)}
        counts = {m.name: m.count() for m in (a, b, c)}
        d = start("d")
        wait_for(lambda: spread([a, b, c, d], [1, 1, 2, 2]), 60, "four members", members)
        for m in (a, b, c):
            assert m.owned() <= kept[m.name], "a member gained partitions when another joined"
            assert revoked_partitions(m, joined_ms) == kept[m.name] - m.owned()
        wait_for(lambda: all(m.count() > counts[m.name] for m in (a, b, c)), 30, "consumption to go on", members)

        # One leaves: the others only gain.
        left_ms = int(time.time() * 1000)
        d.stop()
        wait_for(lambda: spread([a, b, c], [2, 2, 2]), 60, "three members again", members)
        assert all(not revoked_partitions(m, left_ms) for m in (a, b, c))

        # One dies: its partitions move once its session times out.
        c_partitions = c.owned()
        c.kill()
        wait_for(lambda: spread([a, b], [3, 3]), SESSION_MS / 1000 + 30, "the dead member's partitions", members)
        moved_ms = min(e["t"] for m in (a, b) for e in m.events() if e["ev"] == "assigned" and e["t"] >= c.killed_ms
                       and {tuple(p) for p in e["partitions"]} & c_partitions)
        assert moved_ms - c.killed_ms >= SESSION_MS - 1_500, "moved before the session timeout"
        assert_never_owned_twice(members)
    finally:
        producer.stop()
        for m in members:
            m.stop()
    assert_never_owned_twice(members)

    # The committed offsets are where the next member starts.
    positions = committed(broker, group, topic)
    assert len(positions) == PARTITIONS
    more = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(PARTITIONS * 5):
        more.produce(topic, b"after", partition=i % PARTITIONS)
    more.flush(30)
    e = start("e")
    try:
        wait_for(lambda: len([x for x in e.events() if x["ev"] == "first"]) == PARTITIONS, 60,
                 "records from every partition", members)
    finally:
        e.stop()
    firsts = {x["partition"]: x["offset"] for x in e.events() if x["ev"] == "first"}
    assert firsts == {p: positions[p] for p in range(PARTITIONS)}


@pytest.mark.parametrize("kind", KINDS)
def test_regex_subscription_picks_up_a_topic_created_later(broker, kind, tmp_path, tmp_path_factory):
    command = member_command(kind, tmp_path_factory.getbasetemp())
    create_topic(broker, f"{kind}-re-first", 2)
    member = Member(command, broker.bootstrap_servers, f"{kind}-regex-group", f"{kind}-re-.*",
                    tmp_path / "regex.log", regex=True)
    try:
        wait_for(lambda: {t for t, _ in member.owned()} == {f"{kind}-re-first"}, 60, "the first topic", [member])
        create_topic(broker, f"{kind}-re-second", 2)
        wait_for(lambda: {t for t, _ in member.owned()} == {f"{kind}-re-first", f"{kind}-re-second"}, 60,
                 "the topic created later", [member])
    finally:
        member.stop()


def test_an_empty_classic_group_converts_to_a_consumer_group_and_back(broker, tmp_path, tmp_path_factory):
    command = member_command("java", tmp_path_factory.getbasetemp())
    topic, group = "migrate-orders", "migrate-group"
    create_topic(broker, topic)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for i in range(60):
        producer.produce(topic, str(i).encode(), partition=i % PARTITIONS)
    producer.flush(30)
    classic = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                        "auto.offset.reset": "earliest", "enable.auto.commit": False})
    classic.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 30 and time.monotonic() < deadline:
        message = classic.poll(0.2)
        if message is not None and not message.error():
            seen += 1
            classic.commit(message, asynchronous=False)
    classic.close()
    positions = committed(broker, group, topic)
    assert positions
    member = Member(command, broker.bootstrap_servers, group, topic, tmp_path / "new.log")
    try:
        wait_for(lambda: member.count() >= 60 - sum(positions.values()), 60, "the rest of the records", [member])
    finally:
        member.stop()
    firsts = {x["partition"]: x["offset"] for x in member.events() if x["ev"] == "first"}
    for partition, offset in firsts.items():
        assert offset == positions.get(partition, 0)
    assert member.count() == 60 - sum(positions.values())

    # And back: the consumer group is empty again, a classic member takes it over, offsets kept.
    final = committed(broker, group, topic)
    assert sum(final.values()) == 60
    for i in range(PARTITIONS):
        producer.produce(topic, b"later", partition=i)
    producer.flush(30)
    classic = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                        "auto.offset.reset": "earliest", "enable.auto.commit": False})
    classic.subscribe([topic])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < PARTITIONS and time.monotonic() < deadline:
        message = classic.poll(0.2)
        if message is not None and not message.error():
            got.append((message.partition(), message.offset()))
    classic.close()
    assert sorted(got) == sorted(final.items())


def test_bad_heartbeats_get_kafkas_errors(broker):
    from kio.schema.consumer_group_heartbeat.v1.request import ConsumerGroupHeartbeatRequest
    from rawclient import call

    def beat(**fields):
        base = dict(group_id="bad-group", member_id="m-1", member_epoch=0, rebalance_timeout=30_000,
                    subscribed_topic_names=("bad-topic",), topic_partitions=())
        base.update(fields)
        base["rebalance_timeout"] = datetime.timedelta(milliseconds=base["rebalance_timeout"])
        return call(broker, 68, 1, ConsumerGroupHeartbeatRequest(**base))

    create_topic(broker, "bad-topic", 2)
    assert beat(server_assignor="nope").error_code == ErrorCode.unsupported_assignor
    assert beat(subscribed_topic_names=None, subscribed_topic_regex="a(").error_code == \
        ErrorCode.invalid_regular_expression
    ok = beat()
    assert ok.error_code == ErrorCode.none and ok.member_epoch == 1
    assert beat(member_epoch=7, topic_partitions=None).error_code == ErrorCode.fenced_member_epoch
    many = tuple(f"no-such-topic-{i}" for i in range(10_000)) + ("bad-topic",)
    other = beat(member_id="m-2", subscribed_topic_names=many)
    assert other.error_code == ErrorCode.none
    still = beat(member_epoch=ok.member_epoch, topic_partitions=None, subscribed_topic_names=None, rebalance_timeout=-1)
    assert still.error_code == ErrorCode.none


def test_kafka_tools_describe_a_consumer_group_and_read_its_records(broker, tmp_path, tmp_path_factory):
    """kafka-consumer-groups (ConsumerGroupDescribe) shows the member epochs and assignments;
    kafka-dump-log's offsets decoder decodes the KIP-848 records of __consumer_offsets."""
    from moldau.testing.kafka_dist import kafka_tool

    command = member_command("java", tmp_path_factory.getbasetemp())
    topic, group = "tools-848-orders", "tools-848-group"
    create_topic(broker, topic)
    members = [Member(command, broker.bootstrap_servers, group, topic, tmp_path / f"{n}.log") for n in "ab"]
    try:
        wait_for(lambda: len(members[0].owned() | members[1].owned()) == PARTITIONS and all(m.owned() for m in members),
                 90, "both members assigned", members)
        wait_for(lambda: sorted(len(m.owned()) for m in members) == [3, 3], 30, "a balanced group", members)
        described = kafka_tool("kafka-consumer-groups", ["--bootstrap-server", broker.bootstrap_servers, "--describe",
                                                          "--group", group, "--members", "--verbose"], timeout=120)
        assert described.returncode == 0, described.stderr
        rows = [line.split() for line in described.stdout.splitlines() if line.startswith(group)]
        assert len(rows) == 2, described.stdout
        header = next(line.split() for line in described.stdout.splitlines() if "CURRENT-EPOCH" in line)
        epochs = {row[header.index("CURRENT-EPOCH")] for row in rows}
        assert epochs and all(int(e) > 0 for e in epochs), described.stdout
        state = kafka_tool("kafka-consumer-groups", ["--bootstrap-server", broker.bootstrap_servers, "--describe",
                                                      "--group", group, "--state", "--verbose"], timeout=120)
        assert "Stable" in state.stdout and "uniform" in state.stdout, state.stdout + state.stderr
        listed = kafka_tool("kafka-consumer-groups", ["--bootstrap-server", broker.bootstrap_servers, "--list",
                                                       "--type"], timeout=120)
        assert any(group in line and "Consumer" in line for line in listed.stdout.splitlines()), listed.stdout
        # moldau groups describe: the protocol, member epochs and assignments.
        ours = subprocess.run([sys.executable, "-m", "moldau", "groups", "describe", group, "--output", "json",
                               "--bootstrap-server", broker.bootstrap_servers], capture_output=True, text=True,
                              timeout=120)
        assert ours.returncode == 0, ours.stderr
        described_group = json.loads(ours.stdout)[0]
        assert described_group["type"] == "consumer" and described_group["protocol"] == "uniform"
        assert described_group["state"] == "STABLE" and described_group["group_epoch"] >= 2
        assert all(m["member_epoch"] > 0 and len(m["assignment"]) == 3 and m["assignment"] == m["target_assignment"]
                   for m in described_group["members"]), described_group
        listed_json = subprocess.run([sys.executable, "-m", "moldau", "groups", "list", "--output", "json",
                                      "--bootstrap-server", broker.bootstrap_servers], capture_output=True, text=True,
                                     timeout=120)
        assert {"group": group, "state": "STABLE", "type": "consumer"} in json.loads(listed_json.stdout)
        table = subprocess.run([sys.executable, "-m", "moldau", "groups", "describe", group,
                                "--bootstrap-server", broker.bootstrap_servers], capture_output=True, text=True,
                               timeout=120)
        assert "protocol consumer" in table.stdout and "MEMBER-EPOCH" in table.stdout, table.stdout + table.stderr
    finally:
        for m in members:
            m.stop()
    # Kafka 4.1's console formatters print classic records only; kafka-dump-log's offsets
    # decoder decodes every coordinator record type with Kafka's own classes.
    from moldau.coordinator.offsets_topic import partition_for

    directory = Path(broker.data_dir) / f"__consumer_offsets-{partition_for(group, 50)}"
    dumped = kafka_tool("kafka.tools.DumpLogSegments", ["--offsets-decoder", "--files",
                                                        ",".join(str(f) for f in sorted(directory.glob("*.log")))],
                        timeout=120)
    assert dumped.returncode == 0, dumped.stderr
    ours = []
    for line in dumped.stdout.splitlines():
        if " key: " in line and f'"groupId":"{group}"' in line:
            key_text, _, payload = line.split(" key: ", 1)[1].partition(" payload: ")
            ours.append({"key": json.loads(key_text), "value": None if payload == "<DELETE>" else json.loads(payload)})
    # ConsumerGroupMetadata, MemberMetadata, TargetAssignmentMetadata, TargetAssignmentMember,
    # CurrentMemberAssignment: every kind decoded by Kafka's own classes.
    assert {r["key"]["type"] for r in ours} >= {"3", "5", "6", "7", "8"}, dumped.stdout[-3000:]
    epochs = [r["value"]["data"]["epoch"] for r in ours if r["key"]["type"] == "3" and r["value"]]
    assert epochs and epochs == sorted(epochs)
    assignments = [r["value"]["data"] for r in ours if r["key"]["type"] == "8" and r["value"]]
    assert any(a["assignedPartitions"] for a in assignments), assignments


def test_group_configs_with_kafka_configs(broker):
    """kafka-configs --entity-type groups: a group's session timeout within the broker's bounds."""
    from moldau.testing.kafka_dist import kafka_tool

    def configs(*args):
        return kafka_tool("kafka-configs", ["--bootstrap-server", broker.bootstrap_servers, "--entity-type", "groups",
                                            "--entity-name", "configured-group", *args], timeout=120)

    altered = configs("--alter", "--add-config", "consumer.session.timeout.ms=5000,consumer.heartbeat.interval.ms=1000")
    assert altered.returncode == 0, altered.stdout + altered.stderr
    described = configs("--describe")
    assert "consumer.session.timeout.ms=5000" in described.stdout, described.stdout + described.stderr
    assert "consumer.heartbeat.interval.ms=1000" in described.stdout
    refused = configs("--alter", "--add-config", "consumer.session.timeout.ms=999999")
    assert refused.returncode != 0 and "consumer.session.timeout.ms" in refused.stdout + refused.stderr
    assert "consumer.session.timeout.ms=5000" in configs("--describe").stdout
    deleted = configs("--alter", "--delete-config", "consumer.session.timeout.ms")
    assert deleted.returncode == 0, deleted.stderr
    assert "consumer.session.timeout.ms=5000" not in configs("--describe").stdout


def test_a_group_and_its_offsets_survive_a_broker_crash(tmp_path, tmp_path_factory):
    """kill -9 of the broker process: the consumer group comes back from __consumer_offsets (its
    records in Kafka's schemas) and a member resumes at the committed offsets."""
    from moldau.testing.server_process import ServerProcess

    command = member_command("confluent", tmp_path_factory.getbasetemp())
    topic, group = "crash-orders", "crash-group"
    server = ServerProcess(str(tmp_path / "data"), overrides=BROKER_CONFIG).start()
    try:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
        producer = KeepProducing(server.bootstrap_servers, topic)
        member = Member(command, server.bootstrap_servers, group, topic, tmp_path / "before.log")
        try:
            wait_for(lambda: member.count() > 100, 60, "records consumed before the crash", [member])
        finally:
            producer.stop()
            member.stop()
        positions = committed(server, group, topic)
        assert len(positions) == PARTITIONS
        port = server.port
        server.kill()
        server = ServerProcess(str(tmp_path / "data"), port=port, overrides=BROKER_CONFIG).start()
        assert committed(server, group, topic) == positions
        more = Producer({"bootstrap.servers": server.bootstrap_servers})
        for i in range(PARTITIONS * 3):
            more.produce(topic, b"after", partition=i % PARTITIONS)
        more.flush(30)
        after = Member(command, server.bootstrap_servers, group, topic, tmp_path / "after.log")
        try:
            wait_for(lambda: len([x for x in after.events() if x["ev"] == "first"]) == PARTITIONS, 60,
                     "records from every partition after the restart", [after])
        finally:
            after.stop()
        firsts = {x["partition"]: x["offset"] for x in after.events() if x["ev"] == "first"}
        assert firsts == positions
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})  # kept: futures need the handle
        described = admin.describe_consumer_groups([group])[group].result(30)
        assert str(described.type).lower().endswith("consumer")
    finally:
        server.close()


def test_a_static_member_restarts_within_its_session_and_gets_its_partitions_back(broker, tmp_path, tmp_path_factory):
    """Java members with group.instance.id: one closes (it leaves with epoch -2) and comes back
    under a new member id before its session expires; it gets the same partitions, the other
    member never revokes anything, and the group epoch does not move."""
    from moldau.testing.kafka_dist import kafka_tool

    command = member_command("java", tmp_path_factory.getbasetemp())
    topic, group = "static-orders", "static-group"
    create_topic(broker, topic)
    configured = kafka_tool("kafka-configs", ["--bootstrap-server", broker.bootstrap_servers, "--entity-type", "groups",
                                              "--entity-name", group, "--alter", "--add-config",
                                              "consumer.session.timeout.ms=40000"], timeout=120)
    assert configured.returncode == 0, configured.stderr
    def static_member(name: str, instance: str) -> Member:  # trailing k=v: consumer settings
        return Member(command, broker.bootstrap_servers, group, topic, tmp_path / f"{name}.log",
                      settings=(f"group.instance.id={instance}",))

    a, b = static_member("a", "instance-a"), static_member("b", "instance-b")
    members = [a, b]
    try:
        wait_for(lambda: sorted(len(m.owned()) for m in members) == [3, 3] and
                 len(a.owned() | b.owned()) == PARTITIONS, 90, "two static members", members)
        before = a.owned()
        epoch_before = _group_epoch(broker, group)
        left_ms = int(time.time() * 1000)
        a.stop()
        again = static_member("a-again", "instance-a")
        members.append(again)
        wait_for(lambda: again.owned() == before, 60, "the static member's partitions back", members)
        assert not revoked_partitions(b, left_ms), "the other member revoked partitions"
        assert len(b.owned()) == 3
        assert _group_epoch(broker, group) == epoch_before
    finally:
        for m in members:
            m.stop()
    assert_never_owned_twice(members)


def _group_epoch(broker, group: str) -> int:
    out = subprocess.run([sys.executable, "-m", "moldau", "groups", "describe", group, "--output", "json",
                          "--bootstrap-server", broker.bootstrap_servers], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]["group_epoch"]
