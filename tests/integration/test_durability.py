"""Durability: acks=all producing while the server is killed with SIGKILL; on restart every
acknowledged message is there exactly once and offsets continue without a gap."""

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from moldau.testing.server_process import ServerProcess


def _produce_until_killed(server: ServerProcess, acknowledged: list, stop: threading.Event) -> None:
    producer = Producer({"bootstrap.servers": server.bootstrap_servers, "acks": "all", "linger.ms": 1,
                         "message.timeout.ms": 3000, "retries": 0, "enable.idempotence": False})

    def on_delivery(err, msg):
        if err is None:
            acknowledged.append((msg.value(), msg.offset()))

    i = 0
    while not stop.is_set():
        try:
            producer.produce("durable", value=f"m-{i}".encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            pass
        producer.poll(0.0005 if i % 50 else 0.002)
    producer.flush(5)


def test_kill_9_mid_stream_loses_nothing_acknowledged(tmp_path):
    data_dir = str(tmp_path / "data")
    server = ServerProcess(data_dir).start()
    try:
        admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
        admin.create_topics([NewTopic("durable", 1, 1)])["durable"].result(10)
        acknowledged: list[tuple[bytes, int]] = []
        stop = threading.Event()
        thread = threading.Thread(target=_produce_until_killed, args=(server, acknowledged, stop))
        thread.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        stop.set()
        thread.join(30)
        assert len(acknowledged) >= 3000, "the producer should have been acknowledged a few thousand times"
        server = ServerProcess(data_dir, port=server.port).start()
        stored = _read_all(server.bootstrap_servers)
    finally:
        server.close()
    offsets = [offset for _value, offset in stored]
    assert offsets == list(range(len(stored))), "offsets continue with no gap"
    values = [value for value, _offset in stored]
    assert len(values) == len(set(values)), "no duplicate"
    by_value = dict(stored)
    for value, offset in acknowledged:
        assert by_value.get(value) == offset, f"acknowledged {value!r} at {offset} is missing"


def _read_all(bootstrap: str) -> list[tuple[bytes, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "durability-check",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    low, high = consumer.get_watermark_offsets(TopicPartition("durable", 0), timeout=10)
    consumer.assign([TopicPartition("durable", 0, 0)])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < high and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if not msg.error():
                out.append((msg.value(), msg.offset()))
    consumer.close()
    assert low == 0 and len(out) == high
    return out
