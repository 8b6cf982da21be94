"""One member of a consumer group on librdkafka (confluent-kafka), for Moldau's group tests.

The same protocol as GroupMember.java: JSON lines on stdout for assigned/revoked/lost
partitions (wall-clock ms), the first offset consumed per partition after each assignment,
and a running record count; commits after every poll; leaves the group when stdin closes.

usage: member_confluent.py <bootstrap> <group> <protocol> <topics-or-regex> [regex] [k=v ...]
"""

import json
import sys
import threading
import time

from confluent_kafka import Consumer


def emit(event, **fields):
    print(json.dumps({"ev": event, "t": int(time.time() * 1000), **fields}), flush=True)


def names(partitions):
    return [[p.topic, p.partition] for p in partitions]


def main():
    bootstrap, group, protocol, subscription = sys.argv[1:5]
    rest = sys.argv[5:]
    regex = bool(rest) and rest[0] == "regex"
    config = {"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": protocol,
              "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    for item in rest[1:] if regex else rest:
        key, value = item.split("=", 1)
        config[key] = value
    running = threading.Event()
    running.set()

    def watch_stdin():
        sys.stdin.read()
        running.clear()

    threading.Thread(target=watch_stdin, daemon=True).start()
    fresh = set()

    def on_assign(consumer, partitions):
        fresh.update((p.topic, p.partition) for p in partitions)
        emit("assigned", partitions=names(partitions))

    consumer = Consumer(config)
    topics = ["^" + subscription] if regex else subscription.split(",")
    consumer.subscribe(topics, on_assign=on_assign,
                       on_revoke=lambda c, p: emit("revoked", partitions=names(p)),
                       on_lost=lambda c, p: emit("lost", partitions=names(p)))
    emit("started")
    count = 0
    while running.is_set():
        messages = consumer.consume(500, 0.1)
        for message in messages:
            if message.error():
                continue
            key = (message.topic(), message.partition())
            if key in fresh:
                fresh.discard(key)
                emit("first", topic=key[0], partition=key[1], offset=message.offset())
            count += 1
        if messages:
            consumer.commit(asynchronous=False)
            emit("count", n=count)
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()
