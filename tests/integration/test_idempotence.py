"""Idempotent producers: a retried batch is written once.

The fault: a small TCP proxy in this test sits between client and broker (the broker
advertises the proxy's port, so every connection goes through it). The first Produce request
it sees is forwarded to the broker — which writes the batch — and then the connection is
dropped before the response can reach the client. The client retries the same batch (same
producer id, epoch and sequence) on a new connection; the broker must recognise it and answer
with the original offset, so the topic holds every record exactly once.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from moldau import Broker
from moldau.testing.server_process import ServerProcess

PRODUCE = 0


class DroppingProxy:
    """Forwards 127.0.0.1 connections to the broker; drops the connection after forwarding the
    first `drops` Produce requests, so their responses never arrive."""

    def __init__(self, drops: int = 1, on_drop=None):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.target_port: int | None = None
        self.drops_left = drops
        self.on_drop = on_drop  # called (in the proxy thread) after forwarding a doomed request
        self.produce_requests = 0
        self.requests_at_drop = -1  # produce requests seen when the dropped connection closed
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the broker is restarting: the client reconnects
                _close(client)
                continue
            self.sockets += [client, upstream]
            doomed = threading.Event()
            threading.Thread(target=self._requests, args=(client, upstream, doomed), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client, doomed), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, doomed: threading.Event) -> None:
        try:
            while True:
                size_bytes = _read_exactly(client, 4)
                frame = _read_exactly(client, struct.unpack(">i", size_bytes)[0])
                api_key = struct.unpack_from(">h", frame)[0]
                drop = False
                if api_key == PRODUCE:
                    with self.lock:
                        self.produce_requests += 1
                        if self.drops_left > 0:
                            self.drops_left -= 1
                            drop = True
                if drop:
                    doomed.set()  # before forwarding: the response must not get through
                upstream.sendall(size_bytes + frame)
                if drop:
                    time.sleep(0.5)  # the broker writes the batch and answers into the void
                    if self.on_drop is not None:
                        self.on_drop()
                    self.requests_at_drop = self.produce_requests
                    raise ConnectionError("dropped after the produce request")
        except (OSError, ConnectionError):
            _close(client, upstream)

    @staticmethod
    def _responses(upstream: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if doomed.is_set():
                    return  # swallow the answer; the request side closes the client when it is done
                if not data:
                    break
                client.sendall(data)
        except OSError:
            pass
        _close(client, upstream)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        _close(*self.sockets)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        data = sock.recv(size - len(chunks))
        if not data:
            raise ConnectionError("peer closed")
        chunks += data
    return bytes(chunks)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


@pytest.fixture
def proxied_broker(tmp_path):
    proxy = DroppingProxy()
    config = {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}", "num.partitions": "1"}
    try:
        with Broker(data_dir=str(tmp_path / "data"), config=config) as broker:
            proxy.target_port = broker.port
            yield broker, proxy
    finally:
        proxy.close()


def consume_all(broker, topic: str) -> list[bytes]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.port}", "group.id": "check",
                         "enable.auto.commit": False, "client.id": "checker"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = time.monotonic() + 30
        while len(values) < high and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                values.append(message.value())
        return values
    finally:
        consumer.close()


def test_confluent_retry_after_dropped_response_writes_once(proxied_broker):
    from confluent_kafka import Producer

    broker, proxy = proxied_broker
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True,
                         "linger.ms": 20, "message.timeout.ms": 30000})
    failures = []
    for i in range(20):
        producer.produce("idem", value=f"v{i}".encode(),
                         on_delivery=lambda error, message: error and failures.append(error))
    assert producer.flush(30) == 0 and not failures
    assert proxy.drops_left == 0 and proxy.produce_requests >= 2  # dropped, then retried
    assert consume_all(broker, "idem") == [f"v{i}".encode() for i in range(20)]


def test_kafka_python_default_producer_retry_writes_once(proxied_broker):
    pytest.importorskip("kafka")
    from kafka import KafkaProducer

    broker, proxy = proxied_broker
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{proxy.port}", linger_ms=20)  # idempotent by default
    futures = [producer.send("idem-kp", value=f"v{i}".encode()) for i in range(20)]
    producer.flush(30)
    offsets = [future.get(30).offset for future in futures]
    producer.close()
    assert proxy.drops_left == 0 and proxy.produce_requests >= 2
    assert offsets == list(range(20))
    assert consume_all(broker, "idem-kp") == [f"v{i}".encode() for i in range(20)]


def test_retry_after_a_crash_and_restart_is_still_recognised(tmp_path):
    """The dropped Produce is followed by kill -9 and a restart before the client retries: the
    producer state is rebuilt from the log (no snapshot after a crash) and the retry is still
    answered as a duplicate."""
    from confluent_kafka import Producer

    server: list[ServerProcess] = []

    def crash_and_restart() -> None:
        server[0].kill()
        server[0].start()

    proxy = DroppingProxy(on_drop=crash_and_restart)
    overrides = {"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}", "num.partitions": "1"}
    server.append(ServerProcess(str(tmp_path / "data"), overrides=overrides))
    try:
        server[0].start()
        proxy.target_port = server[0].port
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{proxy.port}", "enable.idempotence": True,
                             "linger.ms": 20, "message.timeout.ms": 60000})
        failures = []
        for i in range(20):
            producer.produce("idem-crash", value=f"v{i}".encode(),
                             on_delivery=lambda error, message: error and failures.append(error))
        assert producer.flush(60) == 0 and not failures
        assert proxy.drops_left == 0 and proxy.produce_requests > proxy.requests_at_drop > 0  # retried after restart

        class Direct:
            port = server[0].port

        assert consume_all(Direct, "idem-crash") == [f"v{i}".encode() for i in range(20)]
    finally:
        proxy.close()
        server[0].close()
