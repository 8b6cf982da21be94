#!/usr/bin/env python3
"""The broker's resident memory (RSS) with 10,000 idle connections, and before, during and
after a connection storm (issue 14, finding 5).

    python benchmarks/memory.py [--connections 10000] [--src PATH] [--out results/memory-….json]

Starts `moldau server` (uvloop, as users run it) on a fresh data directory and reads VmRSS from
/proc/<pid>/status:

1. idle: after start and a short warm-up; then with N connections open, each having sent one
   ApiVersions request (what a client does before it idles); then after they closed.
2. storm: a producer (acks=all) producing throughout; 200 connections held idle; one client
   stalled half-way through a 512 KiB request; three clients that announced 100 MiB requests
   and sent 2 KiB; 2,000 connections opened and dropped. RSS before, the largest sample during,
   and after everything closed (plus two broker ticks).

`--src` runs the server from another source tree (e.g. a checkout of an older commit) to
compare. Needs `ulimit -n` above 2 × N. Timing-free: only memory is measured, but a loaded
machine still shifts the numbers a little (allocator, page cache).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

MIB = 1024 * 1024
_API_VERSIONS = struct.pack(">hhih", 18, 0, 7, 5) + b"bench"
_API_VERSIONS_FRAME = struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def exchange(sock: socket.socket, frame: bytes = _API_VERSIONS_FRAME) -> None:
    sock.sendall(frame)
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    assert len(sock.recv(size, socket.MSG_WAITALL)) == size


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def produce_frame(topic: str, value_bytes: int) -> bytes:
    import io

    from kio.serial import entity_writer

    from moldau.protocol import codec
    from moldau.protocol.build import build
    from moldau.records import Record, build_batch

    schema = codec.request_schema(0, 9)
    body = io.BytesIO()
    records = build_batch([Record(0, int(time.time() * 1000), None, b"v" * value_bytes)])
    entity_writer(schema)(body, build(schema, {"transactional_id": None, "acks": 1, "timeout": 5000,
                                               "topic_data": [{"name": topic, "partition_data": [
                                                   {"index": 0, "records": records}]}]}))
    payload = struct.pack(">hhih", 0, 9, 11, 5) + b"bench" + b"\x00" + body.getvalue()
    return struct.pack(">i", len(payload)) + payload


class Producing(threading.Thread):
    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        self.acked = 0
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        def delivered(err, _msg):
            if err is None:
                self.acked += 1
            else:
                self.errors += 1

        while not self.stop.is_set():
            try:
                self.producer.produce("storm", value=b"s" * 200, on_delivery=delivered)
            except BufferError:
                pass
            self.producer.poll(0.001)
        self.producer.flush(10)


def idle_phase(pid: int, port: int, count: int) -> dict:
    started = rss(pid)
    sockets = []
    for number in range(count):
        sock = connect(port)
        try:
            exchange(sock)
        except OSError as error:
            raise RuntimeError(f"connection {number + 1} of {count} was not served: {error}") from None
        sockets.append(sock)
    time.sleep(1)
    held = rss(pid)
    for sock in sockets:
        exchange(sock)  # every one still served
    for sock in sockets:
        sock.close()
    time.sleep(2)
    return {"connections": count, "rss_before_mib": started / MIB, "rss_idle_mib": held / MIB,
            "per_connection_kib": (held - started) / count / 1024, "rss_after_close_mib": rss(pid) / MIB}


def storm_phase(pid: int, port: int, bootstrap: str) -> dict:
    before = rss(pid)
    producing = Producing(bootstrap)
    producing.start()
    samples = []
    held = [connect(port) for _ in range(200)]
    for sock in held:
        exchange(sock)
    stalled = connect(port)
    frame = produce_frame("storm", 512 * 1024)
    stalled.sendall(frame[: len(frame) // 2])
    announcers = [connect(port) for _ in range(3)]
    for sock in announcers:
        sock.sendall(struct.pack(">i", 100 * MIB - 16) + b"\x00" * 2048)
    samples.append(rss(pid))
    for _ in range(10):
        batch = [connect(port) for _ in range(200)]
        for sock in batch[::4]:
            sock.sendall(_API_VERSIONS_FRAME)
        for sock in batch:
            sock.close()
        samples.append(rss(pid))
    time.sleep(1)
    samples.append(rss(pid))
    for sock in held:
        exchange(sock)
    exchange(stalled, frame[len(frame) // 2 :])
    producing.stop.set()
    producing.join(30)
    for sock in held + announcers + [stalled]:
        sock.close()
    time.sleep(2)
    after = rss(pid)
    return {"rss_before_mib": before / MIB, "rss_during_max_mib": max(samples) / MIB,
            "rss_after_mib": after / MIB, "after_vs_before": after / before,
            "acked_during_storm": producing.acked, "produce_errors": producing.errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--src", help="run the server from this source tree (its src/ directory)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    if args.src:
        os.environ["PYTHONPATH"] = args.src
    from confluent_kafka.admin import AdminClient, NewTopic

    from moldau.testing.server_process import ServerProcess

    with tempfile.TemporaryDirectory() as directory:
        server = ServerProcess(str(Path(directory) / "data"))
        if args.src:  # ServerProcess puts its own tree first: start from the other one instead
            import moldau.testing.server_process as server_process

            server_process._pythonpath = lambda: args.src
        server.start()
        try:
            admin = AdminClient({"bootstrap.servers": server.bootstrap_servers})
            admin.create_topics([NewTopic("storm", 1, 1)])["storm"].result(10)
            warm = Producing(server.bootstrap_servers)
            warm.start()
            time.sleep(2)
            warm.stop.set()
            warm.join(20)
            del admin, warm  # their connections count against the broker's 10,000
            gc.collect()
            time.sleep(1)
            pid = server.process.pid
            result = {"loadavg": os.getloadavg(), "cpus": os.cpu_count(),
                      "idle": idle_phase(pid, server.port, args.connections),
                      "storm": storm_phase(pid, server.port, server.bootstrap_servers)}
        finally:
            server.close()
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
