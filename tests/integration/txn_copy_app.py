"""Consume-transform-produce with exactly-once semantics, as an application tests can SIGKILL.

    python txn_copy_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID IDLE_S

Reads INPUT (read_committed) at the group's committed offsets and copies each record's key and
value to the same partition of OUTPUT, upper-casing the value, inside transactions that also
commit the consumed offsets (send_offsets_to_transaction): a batch's output and its input
position become visible together or not at all. It flushes the batch before committing and
pauses a moment, so a kill often lands inside a transaction whose records are already in the
log. Prints "COMMITTED n" per transaction; exits 0 after IDLE_S seconds without input.
Partitions are assigned by hand (no group membership to time out after a kill).
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

PARTITIONS = 3


def main(bootstrap: str, source: str, target: str, group: str, transactional_id: str, idle_s: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    producer.init_transactions(60)  # fences (and aborts) what an earlier instance left open
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    committed = consumer.committed([TopicPartition(source, i) for i in range(PARTITIONS)], timeout=60)
    consumer.assign([TopicPartition(source, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
                     for tp in committed])
    print("STARTED", flush=True)
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < idle_s:
        messages = [m for m in consumer.consume(25, 0.5) if m.error() is None]
        if not messages:
            continue
        idle_since = time.monotonic()
        producer.begin_transaction()
        for message in messages:
            producer.produce(target, key=message.key(), value=message.value().upper(), partition=message.partition())
        producer.flush(60)
        time.sleep(0.02)
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 60)
        producer.commit_transaction(60)
        print("COMMITTED", len(messages), flush=True)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:6], float(sys.argv[6]))
