"""Writing a response's chunks to a connection: bytes through the transport, file regions read
then — or, with `socket.sendfile.enable=true` on a plain listener, by `sendfile` straight from
the segment file when the socket allows it (off by default: slower on loopback here, see
docs/benchmarks.md "sendfile or copy").

Theory of operation. A Fetch response is a few small byte strings (header, per-partition
fields) around record sets that are byte ranges of segment files (`FileRegion`: a file handle,
a position, a size). Reading those ranges into Python and writing them to the socket copies
every consumed byte twice through user space; `os.sendfile` hands them from the page cache to
the socket in the kernel. It is possible only on a plain TCP socket (TLS encrypts in user
space) and only while the transport has nothing buffered (the bytes it still holds must leave
first, and we cannot ask it to notify us when it drains without pausing reading). So, for each
region in order:

- the bytes before it are handed to the transport (which sends at once when its buffer is
  empty, as both asyncio and uvloop do);
- if the transport's buffer is then empty, `os.sendfile` sends what the socket takes now; the
  rest, and every region after a partial send, is read (`os.pread`) and handed to the
  transport, so the frame's bytes stay in order whatever the socket does;
- otherwise the region is read and handed to the transport like the rest.

Both event loops work this way: sendfile is called on the socket's descriptor directly (asyncio's
`loop.sendfile` is a coroutine that pauses the transport, and uvloop has none). A region whose
file shrank below it since the read (a truncation) or whose handle was closed (the partition
was deleted) cannot be sent: `RegionGone` is raised and the runtime closes the connection, as a
client would otherwise read a malformed frame.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from moldau.log.partition_log import FileRegion, RegionGone

__all__ = ["RegionGone", "SENDFILE_MIN_BYTES", "Transmitter", "is_region", "materialize", "region_bytes"]

# Record bytes sent by this process, by how: sendfile, or read into Python and written
# (/metrics: moldau_fetch_record_bytes_sent_total).
TOTALS = {"sendfile": 0, "copied": 0}

# Below this a region is cheaper read and written with its neighbours than sent by a second
# system call.
SENDFILE_MIN_BYTES = 16 * 1024


def is_region(chunk: Any) -> bool:
    return isinstance(chunk, FileRegion)


def region_bytes(region: Any, offset: int = 0) -> bytes:
    """The region's bytes from `offset` on, read now (RegionGone if the file lost them)."""
    return region.read_bytes(offset)


def materialize(chunks: list) -> list:
    """The chunks with every region read into bytes (for TLS, or a transport without a socket)."""
    return [region_bytes(chunk) if is_region(chunk) else chunk for chunk in chunks]


class Transmitter:
    """Writes frames (lists of chunks) to one connection's transport, in order."""

    __slots__ = ("transport", "socket", "socket_fd", "sendfile_calls", "sendfile_bytes", "copied_bytes")

    def __init__(self, transport, use_sendfile: bool):
        self.transport = transport
        self.socket = None
        self.socket_fd = -1
        if use_sendfile:
            self.socket = transport.get_extra_info("socket")
            self.socket_fd = self.socket.fileno() if self.socket is not None else -1
        self.sendfile_calls = 0
        self.sendfile_bytes = 0
        self.copied_bytes = 0

    def write(self, chunks: list) -> None:
        if self.socket_fd < 0:
            self._copy_all(chunks)
            return
        pending: list = []
        corked = False
        try:
            for chunk in chunks:
                if not is_region(chunk):
                    pending.append(chunk)
                elif chunk.size < SENDFILE_MIN_BYTES or chunk.data is not None or chunk.fileno() < 0:
                    # small, already read to check its CRCs, or in a file without a descriptor
                    # (the in-memory file system of moldau.Cluster): read and written
                    pending += self._copied(chunk, 0)
                else:
                    # TCP_CORK while the frame leaves in pieces: the small chunks between its
                    # regions would otherwise go out as segments of their own (asyncio sets
                    # TCP_NODELAY), each waking the client once more.
                    corked = corked or self._cork(True)
                    if pending:
                        self.transport.writelines(pending)
                        pending = []
                    pending += self._send_region(chunk)
            if pending:
                self.transport.writelines(pending)
        finally:
            if corked:
                self._cork(False)

    def _cork(self, on: bool) -> bool:
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)
        except OSError:  # not TCP (a Unix socket in tests), or already closed
            return False
        return True

    def _send_region(self, region) -> list:
        """sendfile what the socket takes now; returns what is left, read, for the transport."""
        if self.transport.get_write_buffer_size() > 0 or self.transport.is_closing():
            return self._copied(region, 0)
        fd = region.fileno()
        if fd < 0:
            raise RegionGone("the segment file was closed")
        if region.file.size < region.position + region.size:
            raise RegionGone("the segment file was truncated below the region")
        try:
            sent = os.sendfile(self.socket_fd, fd, region.position, region.size)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the peer is gone (EPIPE, ECONNRESET): the transport will see it too
            self.transport.abort()
            return []
        self.sendfile_calls += 1
        self.sendfile_bytes += sent
        TOTALS["sendfile"] += sent
        return self._copied(region, sent) if sent < region.size else []

    def _copied(self, region, offset: int) -> list:
        data = region_bytes(region, offset)
        self.copied_bytes += len(data)
        TOTALS["copied"] += len(data)
        return [data]

    def _copy_all(self, chunks: list) -> None:
        """Every response of a plain listener without sendfile, and of TLS ones: regions read
        in one pass, the list left as it is when it holds none (most responses)."""
        out = chunks
        for index, chunk in enumerate(chunks):
            if isinstance(chunk, FileRegion):
                if out is chunks:
                    out = list(chunks)
                out[index] = data = chunk.read_bytes()
                self.copied_bytes += len(data)
                TOTALS["copied"] += len(data)
        self.transport.writelines(out)
