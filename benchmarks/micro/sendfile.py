#!/usr/bin/env python3
"""Serving file regions over a socket: copy through Python or sendfile, on asyncio and uvloop.

    python benchmarks/micro/sendfile.py [--region-kib 1024] [--seconds 5] [--repetitions 3]

Theory of operation. A Fetch response is a small header followed by record batches that are
bytes of a segment file. A server (one process, the event loop under test) answers each 4-byte
request of a client with a 64-byte header and `region-kib` KiB of a file, either

- `copy`: `os.pread` the region into a bytes object and `transport.writelines([header, data])`
  (what the broker did before issue 16), or
- `sendfile-wait`: as below, but what the socket does not take at once is sent by further
  sendfile calls when the socket is writable again (a writer callback on a dup of the socket's
  descriptor: both loops refuse callbacks on a descriptor a transport owns), or
- `sendfile`: the header through the transport, then `os.sendfile` from the file straight to the
  socket while the transport's write buffer is empty (the kernel copies page cache to the
  socket; nothing passes through Python), falling back to the copy for what the socket does not
  take at once.

The client is a separate process with a blocking socket that reads each response into a
preallocated buffer and sends the next request (one response in flight, as a consumer's fetch
loop). Reported per variant: MB/s, and the server's CPU seconds per GB served (from
/proc/self/stat through resource.getrusage in the server process). Alternating runs; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import struct
import sys
import tempfile
import time

HEADER = b"h" * 64


def _serve(loop_kind: str, variant: str, path: str, region: int, ready, stop) -> None:
    if loop_kind == "uvloop":
        import uvloop

        uvloop.install()
    fd = os.open(path, os.O_RDONLY)
    stats = [0, 0, 0]  # responses, bytes sent by the first sendfile, further sendfile calls

    class Serve(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.sock_fd = transport.get_extra_info("socket").fileno()
            self.pending = 0

        def data_received(self, data):
            for _ in range(len(data) // 4):
                self.respond()

        def respond(self):
            if variant == "copy":
                self.transport.writelines([HEADER, os.pread(fd, region, 0)])
                return
            self.transport.write(HEADER)
            sent = 0
            if self.transport.get_write_buffer_size() == 0:
                try:
                    sent = os.sendfile(self.sock_fd, fd, 0, region)
                except BlockingIOError:
                    sent = 0
            stats[0] += 1
            stats[1] += sent
            if sent < region and variant == "sendfile-wait":
                self.wait_fd = getattr(self, "wait_fd", None) or os.dup(self.sock_fd)
                self.offset = sent
                asyncio.get_running_loop().add_writer(self.wait_fd, self.more)
            elif sent < region:
                self.transport.write(os.pread(fd, region - sent, sent))

        def more(self):
            try:
                self.offset += os.sendfile(self.sock_fd, fd, self.offset, region - self.offset)
            except BlockingIOError:
                return
            stats[2] += 1
            if self.offset >= region:
                asyncio.get_running_loop().remove_writer(self.wait_fd)

    async def main():
        server = await asyncio.get_running_loop().create_server(Serve, "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        ready.put((usage.ru_utime + usage.ru_stime, stats))

    asyncio.run(main())


def _client(port: int, region: int, seconds: float) -> tuple[int, float]:
    sock = socket.create_connection(("127.0.0.1", port))
    buffer = bytearray(region + len(HEADER))
    view = memoryview(buffer)
    served = 0
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        sock.sendall(struct.pack(">i", 0))
        got = 0
        while got < len(buffer):
            n = sock.recv_into(view[got:])
            if n == 0:
                raise RuntimeError("server closed")
            got += n
        served += got
    elapsed = time.monotonic() - began
    sock.close()
    return served, elapsed


def run_once(loop_kind: str, variant: str, path: str, region: int, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(loop_kind, variant, path, region, ready, stop))
    server.start()
    try:
        port = ready.get(timeout=30)
        served, elapsed = _client(port, region, seconds)
        stop.set()
        cpu, stats = ready.get(timeout=30)
    finally:
        server.join(10)
        if server.is_alive():
            server.kill()
            server.join()
    return {"loop": loop_kind, "variant": variant, "mb_per_sec": served / elapsed / 1e6,
            "server_cpu_s_per_gb": cpu / (served / 1e9),
            "first_sendfile_share": stats[1] / stats[0] / region if stats[0] else None,
            "more_sendfiles_per_response": stats[2] / stats[0] if stats[0] else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region-kib", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args(argv)
    region = args.region_kib * 1024
    with tempfile.NamedTemporaryFile(prefix="sendfile-bench-") as file:
        file.write(os.urandom(region))
        file.flush()
        runs: dict = {}
        for repetition in range(args.repetitions):
            variants = [(l, v) for l in ("asyncio", "uvloop") for v in ("copy", "sendfile", "sendfile-wait")]
            for loop_kind, variant in variants if repetition % 2 == 0 else variants[::-1]:
                result = run_once(loop_kind, variant, file.name, region, args.seconds)
                runs.setdefault((loop_kind, variant), []).append(result)
                print(json.dumps(result), file=sys.stderr)
    print(f"region {args.region_kib} KiB, {args.repetitions} runs of {args.seconds:g} s each, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| loop | variant | MB/s (median, min–max) | server CPU s per GB (median) |\n|---|---|---:|---:|")
    for (loop_kind, variant), results in runs.items():
        rates = [r["mb_per_sec"] for r in results]
        cpu = statistics.median(r["server_cpu_s_per_gb"] for r in results)
        print(f"| {loop_kind} | {variant} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | {cpu:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
