#!/usr/bin/env python3
"""How long the first consumer group waits for its assignment on a fresh server, and the second.

    python benchmarks/micro/first_group.py [moldau] [kafka]

The first FindCoordinator creates __consumer_offsets (50 partitions on both systems here); the
second group finds it there. Prints seconds from subscribe() to the first assignment and to the
first message, for each group.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "src")]

from bench.systems import make_runner  # noqa: E402
from bench.workloads import create_topic  # noqa: E402

TIMEOUT_S = 60.0


def time_group(bootstrap: str, topic: str, group: str) -> tuple[float, float]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "log_level": 0})
    assigned: list[float] = []
    began = time.monotonic()
    consumer.subscribe([topic], on_assign=lambda _c, _p: assigned.append(time.monotonic()))
    first = None
    try:
        while first is None and time.monotonic() - began < TIMEOUT_S:
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                first = time.monotonic()
    finally:
        consumer.close()
    return assigned[0] - began, (first or float("nan")) - began


def main(kinds: list[str]) -> int:
    from confluent_kafka import Producer

    for kind in kinds or ["moldau", "kafka"]:
        runner = make_runner(kind, 3)
        system = runner.start()
        try:
            create_topic(system, "first-group", 3)
            producer = Producer({"bootstrap.servers": system.bootstrap_servers, "log_level": 0})
            producer.produce("first-group", b"x")
            producer.flush(30)
            for group in ("group-1", "group-2"):
                assign_s, message_s = time_group(system.bootstrap_servers, "first-group", group)
                print(f"{kind} {group}: assigned after {assign_s:.3f} s, first message after {message_s:.3f} s")
            del producer
        finally:
            runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
