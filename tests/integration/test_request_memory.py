"""Connection buffers and queued.max.request.bytes (issue 14, finding 5), in an embedded broker:
idle connections hold no read buffer, an announced 100 MiB frame costs what was sent, and
past the bound connections wait — nobody is dropped — and all finish once memory frees."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time

from kio.serial import entity_writer

from moldau import Broker
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch

_API_VERSIONS = struct.pack(">hhih", 18, 0, 7, 4) + b"idle"
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


def _exchange(sock: socket.socket, frame: bytes) -> bytes:
    sock.sendall(frame)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    return _recv(sock, size)


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the broker closed the connection"
        data += chunk
    return data


def _produce_frame(topic: str, value_bytes: int) -> bytes:
    schema = codec.request_schema(0, 9)
    records = build_batch([Record(0, int(time.time() * 1000), None, b"v" * value_bytes)])
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, {"transactional_id": None, "acks": 1, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": records}]}]}))
    header = struct.pack(">hhih", 0, 9, 11, 4) + b"big!" + b"\x00"
    payload = header + body.getvalue()
    return struct.pack(">i", len(payload)) + payload


def _server(broker: Broker):
    return broker._server


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_idle_connections_hold_no_read_buffer():
    with Broker() as broker:
        sockets = [socket.create_connection((broker.host, broker.port), timeout=10) for _ in range(50)]
        try:
            for sock in sockets:
                _exchange(sock, _API_VERSIONS_FRAME)
            server = _server(broker)
            _wait_for(lambda: len(server.connections) == 50)
            assert all(len(c.buffer) == 0 and c.charged == 0 for c in list(server.connections))
            assert server.request_memory.used_bytes == 0
        finally:
            for sock in sockets:
                sock.close()


def test_an_announced_huge_frame_costs_only_what_was_sent():
    with Broker() as broker:
        server = _server(broker)
        announcers = []
        try:
            for _ in range(3):
                sock = socket.create_connection((broker.host, broker.port), timeout=10)
                sock.sendall(struct.pack(">i", 100 * 1024 * 1024 - 16) + b"\x00" * 2048)
                announcers.append(sock)
            _wait_for(lambda: sum(c.end for c in list(server.connections)) == 3 * 2052)
            assert server.request_memory.used_bytes <= 3 * 64 * 1024
            probe = socket.create_connection((broker.host, broker.port), timeout=10)
            _exchange(probe, _API_VERSIONS_FRAME)  # everyone else is served
            probe.close()
        finally:
            for sock in announcers:
                sock.close()
        _wait_for(lambda: server.request_memory.used_bytes == 0)


def test_past_queued_max_request_bytes_connections_wait_and_then_all_finish():
    bound = 1024 * 1024
    with Broker(config={"queued.max.request.bytes": str(bound), "message.max.bytes": str(3 * 1024 * 1024)}) as broker:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        admin.create_topics([NewTopic("big", 1, 1)])["big"].result(10)
        server = _server(broker)
        frame = _produce_frame("big", 2 * 1024 * 1024)
        clients = [socket.create_connection((broker.host, broker.port), timeout=30) for _ in range(4)]
        answers: list[bytes] = []

        def send_all(sock: socket.socket) -> None:
            sock.sendall(frame[: len(frame) // 2])
            time.sleep(0.5)  # every client is half-way through before any finishes
            answers.append(_exchange(sock, frame[len(frame) // 2 :]))

        threads = [threading.Thread(target=send_all, args=(sock,)) for sock in clients]
        for thread in threads:
            thread.start()
        try:
            _wait_for(lambda: server.request_memory.waits > 0)
            # Memory stays within the bound plus one frame (the holder's), and nobody is dropped.
            assert server.request_memory.peak_bytes <= bound + len(frame) + 256 * 1024
            assert len(server.connections) >= 4
            for thread in threads:
                thread.join(60)
            assert len(answers) == 4, "every client got its answer"
            _wait_for(lambda: server.request_memory.used_bytes == 0)
        finally:
            for sock in clients:
                sock.close()
