"""Many partitions on one node: create them, write to every one, restart — Moldau vs Kafka.

Issue 13 item 6: creating 3,000 partitions used to block the whole broker for 21.7 s (every
other client waited) and 5,000 timed out. This measures, for N partitions (default 10,000) on
a single node of each system, with the same librdkafka client:

- create: CreateTopics answered, and until every partition has a leader (Metadata);
- the worst and median latency of a small Metadata request (one other topic) sent every 100 ms
  by another client meanwhile — what a second application sees while the partitions appear;
- produce: one record to every partition (acks=all), until all are acknowledged;
- restart: SIGTERM, start again on the same data, until every partition has a leader again.

    python benchmarks/many_partitions.py [--partitions 10000] [--systems moldau,kafka] [--out FILE]

Results print as JSON lines and go to benchmarks/results/many-partitions-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

TOPIC = "many"
PROBE_TOPIC = "probe"


class Probe(threading.Thread):
    """Asks for one small topic's metadata every 100 ms; records each answer's latency."""

    def __init__(self, bootstrap: str):
        super().__init__(daemon=True, name="metadata-probe")
        from confluent_kafka.admin import AdminClient

        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                self.admin.list_topics(PROBE_TOPIC, timeout=120)
                self.latencies.append(time.monotonic() - began)
            except Exception:
                self.failures += 1
            self.stop.wait(0.1)

    def summary(self) -> dict:
        values = sorted(self.latencies) or [float("nan")]
        return {"probe_requests": len(self.latencies), "probe_failures": self.failures,
                "probe_median_s": round(statistics.median(values), 4), "probe_max_s": round(values[-1], 4)}


def _all_led(bootstrap: str, partitions: int, timeout_s: float) -> float:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        try:
            topic = admin.list_topics(TOPIC, timeout=30).topics.get(TOPIC)
        except Exception:
            topic = None
        if topic is not None and topic.error is None and len(topic.partitions) == partitions \
                and all(p.leader >= 0 for p in topic.partitions.values()):
            return time.monotonic() - began
        time.sleep(0.2)
    raise TimeoutError(f"not every partition of {TOPIC} had a leader within {timeout_s:.0f} s")


def _create(bootstrap: str, name: str, partitions: int) -> float:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    began = time.monotonic()
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=600, request_timeout=600)[name].result(660)
    return time.monotonic() - began


def _produce_to_all(bootstrap: str, partitions: int) -> float:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "log_level": 0,
                         "message.timeout.ms": 600_000})
    acked = [0]
    errors: list[str] = []

    def delivered(error, _message):
        if error is None:
            acked[0] += 1
        else:
            errors.append(str(error))

    began = time.monotonic()
    for partition in range(partitions):
        while True:
            try:
                producer.produce(TOPIC, b"v", partition=partition, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(600)
    if errors or acked[0] != partitions:
        raise RuntimeError(f"{acked[0]} of {partitions} acknowledged; errors: {errors[:3]}")
    return time.monotonic() - began


class MoldauNode:
    name = "moldau"

    def __init__(self, directory: str):
        from moldau.testing.server_process import ServerProcess

        self.server = ServerProcess(os.path.join(directory, "data"))

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.terminate()

    def close(self) -> None:
        self.server.close()

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap_servers


class KafkaNode:
    name = "kafka"

    def __init__(self, directory: str):
        from moldau.testing.kafka_dist import KafkaServer

        self.server = KafkaServer(data_dir=directory, jvm_opts=("-Xmx2g", "-Xms256m", "-XX:+UseSerialGC"),
                                  start_timeout_s=600)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(timeout_s=600)

    def close(self) -> None:
        self.server.stop()

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap_servers


def measure(system: str, partitions: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"many-partitions-{system}-") as scratch:
        node = MoldauNode(scratch) if system == "moldau" else KafkaNode(scratch)
        node.start()
        try:
            _create(node.bootstrap, PROBE_TOPIC, 1)
            probe = Probe(node.bootstrap)
            probe.start()
            began = time.monotonic()
            answered = _create(node.bootstrap, TOPIC, partitions)
            _all_led(node.bootstrap, partitions, 900)
            led = time.monotonic() - began
            time.sleep(1)
            probe.stop.set()
            probe.join()
            result = {"system": system, "partitions": partitions, "create_answered_s": round(answered, 2),
                      "create_all_led_s": round(led, 2), **probe.summary()}
            result["produce_to_all_s"] = round(_produce_to_all(node.bootstrap, partitions), 2)
            began = time.monotonic()
            node.stop()
            result["stop_s"] = round(time.monotonic() - began, 2)
            began = time.monotonic()
            node.start()
            result["restart_ready_s"] = round(time.monotonic() - began, 2)
            result["restart_all_led_s"] = round(result["restart_ready_s"] + _all_led(node.bootstrap, partitions, 900), 2)
            return result
        finally:
            node.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--systems", default="moldau,kafka")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = []
    for system in args.systems.split(","):
        result = measure(system.strip(), args.partitions)
        print(json.dumps(result), flush=True)
        results.append(result)
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / time.strftime(
        "many-partitions-%Y%m%d-%H%M%S.json")
    out.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                               "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M"),
                               "results": results}, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
