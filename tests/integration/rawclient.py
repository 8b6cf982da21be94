"""A minimal raw Kafka client for tests: one request, one response, built and read with kio.

For APIs and bad inputs the client libraries cannot express (corrupt CRCs, old versions, APIs
without a high-level call)."""

from __future__ import annotations

import io
import socket
import struct

from kio.index import load_response_schema
from kio.serial import entity_reader, entity_writer


def frame(api_key: int, version: int, body: bytes, flexible: bool, correlation_id: int = 9) -> bytes:
    header = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test" + (b"\x00" if flexible else b"")
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def encode(request) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(request))(buffer, request)
    return buffer.getvalue()


def exchange(broker, data: bytes, timeout: float = 10) -> bytes | None:
    """Send one frame; the response frame's payload, or None if the broker closed the connection."""
    with socket.create_connection((broker.host, broker.port), timeout=timeout) as sock:
        sock.sendall(data)
        prefix = _recv(sock, 4)
        if prefix is None:
            return None
        return _recv(sock, struct.unpack(">i", prefix)[0])


def call(broker, api_key: int, version: int, request, response_header_flexible: bool | None = None):
    flexible = type(request).__flexible__
    payload = exchange(broker, frame(api_key, version, encode(request), flexible))
    assert payload is not None, "the broker closed the connection"
    header_flexible = flexible if response_header_flexible is None else response_header_flexible
    return entity_reader(load_response_schema(api_key, version))(payload, 4 + (1 if header_flexible else 0))[0]


def _recv(sock, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
