"""Rebalance time and consumption pause: classic vs KIP-848 consumer groups, Moldau vs Kafka 4.1.1.

A group of N members (librdkafka processes, tests/clients/kip848/member_confluent.py) consumes
a topic of 2N partitions. Two events are measured, each from the members' own assignment
callbacks (wall-clock ms, printed as JSON lines):

- join: an (N+1)th member subscribes. Rebalance time = from its subscribe to the moment every
  partition is owned again and the new member owns its share. Pause = how long partitions were
  owned by nobody (revoked, not yet assigned again): the longest, and the number of partitions
  that paused at all.
- death: one member is SIGKILLed. Rebalance time = from the kill until every partition is owned
  again (bounded below by the session timeout, 6 s on both brokers). Pause = as above, for the
  partitions other than the dead member's (theirs are unowned until the session expires).

Protocols: `classic` (eager, librdkafka's default range/roundrobin: every member revokes
everything), `cooperative` (classic with cooperative-sticky: only moving partitions revoke),
`consumer` (KIP-848, group.protocol=consumer: the broker assigns, only moving partitions revoke).
Both brokers run as separate processes with the same group settings (session timeout 6 s,
heartbeat 1 s, no initial rebalance delay).

    python benchmarks/rebalance.py [--members 10] [--targets moldau,kafka] [--protocols classic,cooperative,consumer]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from moldau.testing.kafka_dist import KafkaServer, kafka_available  # noqa: E402
from moldau.testing.server_process import ServerProcess  # noqa: E402

MEMBER = REPO / "tests" / "clients" / "kip848" / "member_confluent.py"
SESSION_MS, HEARTBEAT_MS = 6_000, 1_000
BROKER_GROUP_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.session.timeout.ms": str(SESSION_MS), "group.consumer.min.session.timeout.ms": "2000",
    "group.consumer.heartbeat.interval.ms": str(HEARTBEAT_MS), "group.consumer.min.heartbeat.interval.ms": "500",
}
CLIENT_SETTINGS = {
    "classic": ["group.protocol=classic", f"session.timeout.ms={SESSION_MS}", f"heartbeat.interval.ms={HEARTBEAT_MS}"],
    "cooperative": ["group.protocol=classic", f"session.timeout.ms={SESSION_MS}", f"heartbeat.interval.ms={HEARTBEAT_MS}",
                    "partition.assignment.strategy=cooperative-sticky"],
    "consumer": ["group.protocol=consumer"],
}


class Member:
    def __init__(self, bootstrap: str, group: str, topic: str, protocol: str, log: Path):
        self.log = log
        self.killed_ms: int | None = None
        settings = CLIENT_SETTINGS[protocol]
        group_protocol = settings[0].split("=")[1]
        self.process = subprocess.Popen(
            [sys.executable, str(MEMBER), bootstrap, group, group_protocol, topic, *settings[1:]],
            stdin=subprocess.PIPE, stdout=log.open("w"), stderr=log.with_suffix(".err").open("w"),
            start_new_session=True)

    def events(self) -> list[dict]:
        out = []
        for line in self.log.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def owned(self) -> set[tuple[str, int]]:
        owned: set[tuple[str, int]] = set()
        for event in self.events():
            parts = {tuple(p) for p in event.get("partitions", ())}
            if event["ev"] == "assigned":
                owned |= parts
            elif event["ev"] in ("revoked", "lost"):
                owned -= parts
        return set() if self.killed_ms is not None else owned

    def started_ms(self) -> int | None:
        return next((e["t"] for e in self.events() if e["ev"] == "started"), None)

    def stop(self) -> None:
        if self.process.poll() is None and self.killed_ms is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.killed_ms = int(time.time() * 1000)
            self.process.wait(30)


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def settled(members: list[Member], partitions: int) -> bool:
    owned = [m.owned() for m in members if m.killed_ms is None]
    union = set().union(*owned) if owned else set()
    return len(union) == partitions and sum(len(o) for o in owned) == partitions and all(owned)


def pauses(members: list[Member], since_ms: int, until_ms: int, exclude=frozenset()) -> tuple[int, int]:
    """(longest time a partition was owned by nobody in the window, partitions that paused)."""
    gaps: dict[tuple[str, int], int] = {}
    released: dict[tuple[str, int], int] = {}
    timeline = sorted((e["t"], e["ev"], tuple(p)) for m in members for e in m.events()
                      if e["ev"] in ("assigned", "revoked", "lost") and since_ms <= e["t"] <= until_ms
                      for p in e["partitions"])
    for t, event, partition in timeline:
        if partition in exclude:
            continue
        if event in ("revoked", "lost"):
            released[partition] = t
        elif partition in released:
            gaps[partition] = max(gaps.get(partition, 0), t - released.pop(partition))
    for partition, t in released.items():  # never assigned again inside the window
        gaps[partition] = max(gaps.get(partition, 0), until_ms - t)
    return (max(gaps.values()) if gaps else 0), len(gaps)


def run_one(bootstrap: str, protocol: str, members_n: int, workdir: Path, tag: str) -> dict:
    topic, group = f"rebalance-{tag}", f"rebalance-{tag}"
    partitions = 2 * members_n
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(60)
    members = [Member(bootstrap, group, topic, protocol, workdir / f"{tag}-{i}.log") for i in range(members_n)]
    result: dict = {"protocol": protocol, "members": members_n, "partitions": partitions}
    try:
        if not wait_until(lambda: settled(members, partitions) and
                          sorted(len(m.owned()) for m in members) == [2] * members_n, 240):
            raise RuntimeError(f"{tag}: the group did not settle")
        time.sleep(3)
        # join
        newcomer = Member(bootstrap, group, topic, protocol, workdir / f"{tag}-new.log")
        members.append(newcomer)
        if not wait_until(lambda: newcomer.started_ms() is not None, 60):
            raise RuntimeError(f"{tag}: the new member did not start")
        began = newcomer.started_ms()
        if not wait_until(lambda: settled(members, partitions) and newcomer.owned(), 120):
            raise RuntimeError(f"{tag}: no rebalance after the join")
        done = max(e["t"] for m in members for e in m.events() if e["ev"] == "assigned")
        longest, paused = pauses(members, began, done)
        result["join"] = {"rebalance_ms": done - began, "longest_pause_ms": longest, "paused_partitions": paused}
        time.sleep(3)
        # death
        victim = members[0]
        victim_partitions = victim.owned()
        victim.kill()
        began = victim.killed_ms
        if not wait_until(lambda: settled(members, partitions), SESSION_MS / 1000 + 120):
            raise RuntimeError(f"{tag}: no rebalance after the death")
        done = max(e["t"] for m in members[1:] for e in m.events() if e["ev"] == "assigned")
        longest, paused = pauses(members[1:], began, done, exclude=victim_partitions)
        result["death"] = {"rebalance_ms": done - began, "longest_pause_ms_others": longest,
                           "paused_partitions_others": paused}
    finally:
        for m in members:
            m.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--targets", default="moldau,kafka")
    parser.add_argument("--protocols", default="classic,cooperative,consumer")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rebalance-") as scratch:
        workdir = Path(scratch)
        for target in args.targets.split(","):
            if target == "kafka" and not kafka_available():
                print("kafka: jars not available (scripts/fetch-kafka.sh)", file=sys.stderr)
                continue
            broker = (ServerProcess(str(workdir / "moldau-data"), overrides=BROKER_GROUP_SETTINGS) if target == "moldau"
                      else KafkaServer(overrides=BROKER_GROUP_SETTINGS))
            broker.start()
            try:
                for protocol in args.protocols.split(","):
                    outcome = run_one(broker.bootstrap_servers, protocol, args.members, workdir, f"{target}-{protocol}")
                    outcome["target"] = target
                    print(json.dumps(outcome), flush=True)
                    results.append(outcome)
            finally:
                broker.stop() if isinstance(broker, KafkaServer) else broker.close()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = REPO / "benchmarks" / "results" / f"rebalance-{stamp}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
