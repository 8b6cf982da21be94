"""The physical reference: how fast a trivial Python sender/receiver pair moves bytes over loopback.

A receiver process reads into a preallocated buffer (`recv_into`) until the sender closes; the
sender `sendall`s a fixed chunk `total // chunk` times. Throughput is bytes over the receiver's
time from first byte to end of stream. Neither side does anything else, so this is the ceiling
for any broker on this machine that moves bytes through Python sockets — and, with small chunks,
what a write() per record costs.

    python benchmarks/bench/loopback.py            # prints JSON for 1 MiB and 16 KiB chunks
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

RECEIVER = r"""
import socket, sys, time
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
buffer = bytearray(1 << 20); view = memoryview(buffer); total = 0; first = None
while True:
    got = conn.recv_into(view)
    if not got:
        break
    if first is None:
        first = time.perf_counter()
    total += got
print(total, time.perf_counter() - first, flush=True)
"""


def loopback(total_bytes: int, chunk_bytes: int) -> dict:
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(receiver.stdout.readline())
        payload = b"x" * chunk_bytes
        with socket.create_connection(("127.0.0.1", port)) as sender:
            for _ in range(total_bytes // chunk_bytes):
                sender.sendall(payload)
        received, seconds = receiver.stdout.readline().split()
        receiver.wait(30)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    seconds = max(float(seconds), 1e-9)
    return {"chunk_bytes": chunk_bytes, "bytes": int(received), "seconds": round(seconds, 4),
            "mb_per_sec": round(int(received) / seconds / (1024 * 1024), 1),
            "sends_per_sec": round(int(received) / chunk_bytes / seconds, 1)}


def measure(quick: bool = False) -> list[dict]:
    scale = 1 if quick else 8
    return [loopback(scale * 256 * 1024 * 1024, 1024 * 1024), loopback(scale * 64 * 1024 * 1024, 16 * 1024),
            loopback(scale * 2 * 1024 * 1024, 100)]


if __name__ == "__main__":
    print(json.dumps(measure("--quick" in sys.argv), indent=2))
