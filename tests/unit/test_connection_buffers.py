"""The connection's read buffers (runtime/server.py, runtime/memory.py) driven the way asyncio
drives a BufferedProtocol — get_buffer, bytes written into it, buffer_updated — with random
read sizes, produce requests from a few bytes to a few hundred KiB, quota mutes and a small
queued.max.request.bytes. A real Server and BrokerCore (on the in-memory file system); only
asyncio's transport and loop are stood in for. Seeded. After every step: the pool's bytes are
exactly what the connections' buffers hold, and a connection without an incomplete frame holds
nothing; at the end every record is in its partition, in order."""

from __future__ import annotations

import io
import random
import struct
import uuid

from kio.serial import entity_writer

from moldau.broker.config import BrokerConfig
from moldau.broker.core import BrokerCore
from moldau.log import MemoryFileSystem
from moldau.protocol import codec
from moldau.protocol.build import build
from moldau.records import Record, build_batch
from moldau.runtime.server import Server, _Connection

CONNECTIONS = 5


class FakeTransport:
    """asyncio's transport, as far as a protocol sees it."""

    def __init__(self) -> None:
        self.paused = False
        self.closed = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def writelines(self, frames) -> None:
        pass

    def abort(self) -> None:
        self.closed = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


class FakeLoop:
    """asyncio's loop: timers are kept and fired by the test."""

    def __init__(self) -> None:
        self.timers: list = []

    def call_later(self, delay, callback, *args):
        self.timers.append((callback, args))
        return self

    def cancel(self) -> None:
        pass


def make_server(bound: int) -> Server:
    config = BrokerConfig(data_dir="/data", queued_max_request_bytes=bound,
                          message_max_bytes=2 * 1024 * 1024)
    server = Server(config)
    counter = iter(range(1, 1_000_000))
    server.core = BrokerCore(config, MemoryFileSystem(), lambda: uuid.UUID(int=next(counter)), 0)
    server.core.controller.create_topic("t", CONNECTIONS, 1, {"max.message.bytes": str(2 * 1024 * 1024)})
    server.loop = FakeLoop()
    return server


def produce_frame(partition: int, value: bytes) -> bytes:
    schema = codec.request_schema(0, 9)
    body = io.BytesIO()
    entity_writer(schema)(body, build(schema, {"transactional_id": None, "acks": 1, "timeout": 5000, "topic_data": [
        {"name": "t", "partition_data": [{"index": partition, "records": build_batch([Record(0, 0, None, value)])}]}]}))
    payload = struct.pack(">hhih", 0, 9, 1, 1) + b"c" + b"\x00" + body.getvalue()
    return struct.pack(">i", len(payload)) + payload


def make_connection(server: Server, number: int) -> _Connection:
    connection = server._new_connection(server.config.first_listener)
    connection.connection_made(FakeTransport())
    return connection


def check(server: Server, connections: list[_Connection]) -> None:
    live = [c for c in connections if not c.closed]
    assert server.request_memory.used_bytes == sum(c.charged for c in live)
    for c in live:
        assert c.charged == len(c.buffer), (c.charged, len(c.buffer))
        if c.end == c.start and not c.paused_for_memory:
            assert len(c.buffer) == 0, "a connection without an incomplete frame holds no buffer"


def run(seed: int) -> None:
    rng = random.Random(seed)
    server = make_server(bound=rng.choice([64 * 1024, 512 * 1024, 4 * 1024 * 1024]))
    connections = [make_connection(server, n) for n in range(CONNECTIONS)]
    streams = {}
    for index, c in enumerate(connections):
        values = [b"%d-%d-" % (index, i) + b"x" * rng.choice([0, 10, 300, 5000, 70_000, 300_000])
                  for i in range(rng.randint(3, 10))]
        streams[c.connection_id] = (index, values, b"".join(produce_frame(index, v) for v in values), [0])
    for _step in range(20_000):
        if server.loop.timers and rng.random() < 0.2:
            callback, args = server.loop.timers.pop(0)
            for c in connections:
                c.session.muted_until_ms = 0
            callback(*args)
        readable = [c for c in connections if not c.transport.paused
                    and streams[c.connection_id][3][0] < len(streams[c.connection_id][2])]
        if not readable:
            if not server.loop.timers:
                break
            continue
        c = rng.choice(readable)
        if rng.random() < 0.02:
            c.session.muted_until_ms = 2**62  # a quota throttle (KIP-219): lifted by its timer
        _index, _values, data, sent = streams[c.connection_id]
        view = c.get_buffer(-1)
        count = min(len(view), len(data) - sent[0], rng.choice([1, 3, 100, 4096, 65536, 300_000]))
        view[:count] = data[sent[0] : sent[0] + count]
        sent[0] += count
        c.buffer_updated(count)
        check(server, connections)
    while server.loop.timers:  # lift the last mutes
        callback, args = server.loop.timers.pop(0)
        for c in connections:
            c.session.muted_until_ms = 0
        callback(*args)
    for c in connections:
        index, values, data, sent = streams[c.connection_id]
        assert not c.closed and sent[0] == len(data), f"seed {seed}: connection {index} was left waiting"
        stored = [r.value for r in server.core.partition("t", index).log.records()]
        assert stored == values, f"seed {seed}: partition {index}"
    assert server.request_memory.used_bytes == 0


def test_random_reads_mutes_and_a_small_bound() -> None:
    for seed in range(30):
        run(seed)
