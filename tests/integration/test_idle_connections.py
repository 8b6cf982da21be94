"""connections.max.idle.ms: a connection that sends nothing for that long is closed; one that
keeps talking is not."""

import socket
import struct
import time

from moldau import Broker

# ApiVersions v0 with correlation id 7 and client id "idle"
_API_VERSIONS = struct.pack(">hhih", 18, 0, 7, 4) + b"idle"
_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


def _exchange(sock: socket.socket) -> None:
    sock.sendall(_FRAME)
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    assert len(sock.recv(size, socket.MSG_WAITALL)) == size


def test_idle_connection_is_closed_and_a_busy_one_is_not():
    with Broker(config={"connections.max.idle.ms": "1000"}) as broker:
        idle = socket.create_connection((broker.host, broker.port), timeout=10)
        busy = socket.create_connection((broker.host, broker.port), timeout=10)
        try:
            _exchange(idle)
            started = time.monotonic()
            while time.monotonic() - started < 3.0:  # well past the idle limit, ticks are 0.5 s
                _exchange(busy)
                time.sleep(0.2)
            assert idle.recv(1) == b"", "the idle connection was closed by the broker"
            _exchange(busy)  # still served
        finally:
            idle.close()
            busy.close()
