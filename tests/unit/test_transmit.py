"""runtime/transmit.py: frames of bytes and file regions arrive whole and in order, by
sendfile when the socket takes them and by copying otherwise, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from moldau.log.partition_log import FileRegion
from moldau.runtime import transmit
from moldau.runtime.disk import OsFileSystem
from moldau.runtime.transmit import RegionGone, Transmitter


def _file(tmp_path, size: int):
    data = os.urandom(size)
    path = str(tmp_path / "00000000000000000000.log")
    fs = OsFileSystem()
    handle = fs.open(path, create=True)
    handle.append([data])
    return handle, data


def _run(loop_kind: str, scenario):
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(scenario())
    return asyncio.run(scenario())


async def _pair(use_sendfile: bool, sndbuf: int | None = None):
    """A transport (with its Transmitter) and the plain socket at the other end."""
    near, far = socket.socketpair()  # AF_UNIX: sendfile works on any socket
    if sndbuf:
        near.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        far.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=near)
    far.setblocking(False)
    return transport, Transmitter(transport, use_sendfile), far


async def _read_all(far: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    received = bytearray()
    while len(received) < size:
        chunk = await loop.sock_recv(far, 1 << 20)
        assert chunk, "closed early"
        received += chunk
    return bytes(received)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("use_sendfile", [True, False])
def test_frames_of_bytes_and_regions_arrive_in_order(tmp_path, loop_kind, use_sendfile):
    handle, data = _file(tmp_path, 300_000)
    regions = [FileRegion(handle, 0, 100_000), FileRegion(handle, 100_000, 50), FileRegion(handle, 150_000, 150_000)]
    frames = [[b"head-1", regions[0], b"mid", regions[1]], [b"head-2", regions[2], b"tail"]]
    expected = b"head-1" + data[:100_000] + b"mid" + data[100_000:100_050] + b"head-2" + data[150_000:] + b"tail"

    async def scenario():
        transport, transmitter, far = await _pair(use_sendfile)
        for frame in frames:
            transmitter.write(frame)
        received = await _read_all(far, len(expected))
        transport.close()
        far.close()
        return received, transmitter

    received, transmitter = _run(loop_kind, scenario)
    assert received == expected
    if use_sendfile:
        assert transmitter.sendfile_calls >= 1 and transmitter.sendfile_bytes > 0
        assert transmitter.sendfile_bytes + transmitter.copied_bytes == 250_050
    else:
        assert transmitter.sendfile_calls == 0 and transmitter.copied_bytes == 250_050


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_a_full_socket_gets_the_rest_copied_in_order(tmp_path, loop_kind):
    handle, data = _file(tmp_path, 1_000_000)
    frames = [[f"frame-{i}".encode(), FileRegion(handle, i * 100_000, 100_000)] for i in range(10)]
    expected = b"".join(f"frame-{i}".encode() + data[i * 100_000:(i + 1) * 100_000] for i in range(10))

    async def scenario():
        transport, transmitter, far = await _pair(True, sndbuf=32 * 1024)  # nobody reads yet
        for frame in frames:
            transmitter.write(frame)
        received = await _read_all(far, len(expected))
        transport.close()
        far.close()
        return received, transmitter

    received, transmitter = _run(loop_kind, scenario)
    assert received == expected
    assert transmitter.copied_bytes > 0  # the socket filled up: the rest went through the transport


def test_a_truncated_region_is_refused_not_sent_short(tmp_path):
    handle, _ = _file(tmp_path, 100_000)
    region = FileRegion(handle, 50_000, 50_000)
    handle.truncate(60_000)

    async def scenario():
        transport, transmitter, far = await _pair(True)
        try:
            with pytest.raises(RegionGone):
                transmitter.write([b"head", region])
            with pytest.raises(RegionGone):
                transmit.materialize([region])
        finally:
            transport.close()
            far.close()

    asyncio.run(scenario())


def test_regions_of_the_in_memory_file_system_are_copied(tmp_path):
    # moldau.Cluster's nodes keep their logs in memory and serve real sockets: no descriptor
    # to sendfile from, so the bytes are read and written.
    from moldau.log import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.makedirs("/data/t-0")
    handle = fs.open("/data/t-0/00000000000000000000.log", create=True)
    data = os.urandom(100_000)
    handle.append([data])

    async def scenario():
        transport, transmitter, far = await _pair(True)
        transmitter.write([b"head", FileRegion(handle, 0, 100_000)])
        received = await _read_all(far, 100_004)
        transport.close()
        far.close()
        return received, transmitter

    received, transmitter = asyncio.run(scenario())
    assert received == b"head" + data
    assert transmitter.sendfile_calls == 0 and transmitter.copied_bytes == 100_000


def test_a_region_of_a_closed_segment_is_refused(tmp_path):
    # The partition was deleted (its segment handles closed) while a response waited to leave:
    # never read from the descriptor number, which the process may have reused.
    handle, _ = _file(tmp_path, 100_000)
    big, small = FileRegion(handle, 0, 50_000), FileRegion(handle, 50_000, 100)
    handle.close()
    for region in (big, small):
        with pytest.raises(RegionGone):
            region.read_bytes()

    async def scenario():
        transport, transmitter, far = await _pair(True)
        try:
            for region in (big, small):
                with pytest.raises(RegionGone):
                    transmitter.write([b"head", region])
        finally:
            transport.close()
            far.close()

    asyncio.run(scenario())
