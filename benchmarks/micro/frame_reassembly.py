#!/usr/bin/env python3
"""Three ways to cut 1 MiB request frames out of 256 KiB socket reads, in pure Python.

    python benchmarks/micro/frame_reassembly.py

`current` is the shape of moldau.runtime.server._Connection.data_received (append to a bytearray,
`bytes(buffer[a:b])`, `del buffer[:n]`); `one_copy` slices a memoryview instead (one copy
instead of two); `buffered` is what asyncio.BufferedProtocol allows: each read lands in a
bytearray sized to its frame, which is handed on as is. Prints µs per frame for each.
"""

from __future__ import annotations

import struct
import time

FRAME = 1 << 20
CHUNK = 256 * 1024
FRAMES = 300
_INT32 = struct.Struct(">i")
_frame = _INT32.pack(FRAME) + bytes(FRAME)
CHUNKS = [_frame[i:i + CHUNK] for i in range(0, len(_frame), CHUNK)]


def current(out: list) -> None:
    buffer = bytearray()
    for _ in range(FRAMES):
        for data in CHUNKS:
            buffer += data
            position = 0
            while len(buffer) - position >= 4:
                (size,) = _INT32.unpack_from(buffer, position)
                end = position + 4 + size
                if len(buffer) < end:
                    break
                out.append(bytes(buffer[position + 4:end]))
                position = end
            if position:
                del buffer[:position]
        out.clear()


def one_copy(out: list) -> None:
    buffer = bytearray()
    for _ in range(FRAMES):
        for data in CHUNKS:
            buffer += data
            position = 0
            while len(buffer) - position >= 4:
                (size,) = _INT32.unpack_from(buffer, position)
                end = position + 4 + size
                if len(buffer) < end:
                    break
                with memoryview(buffer) as view:
                    out.append(bytes(view[position + 4:end]))
                position = end
            if position:
                del buffer[:position]
        out.clear()


def buffered(out: list) -> None:
    for _ in range(FRAMES):
        target, filled = None, 0
        for data in CHUNKS:  # the kernel's copy into get_buffer()'s memoryview, simulated
            view = memoryview(data)
            if target is None:
                (size,) = _INT32.unpack_from(data, 0)
                target, view = bytearray(size), view[4:]
            target[filled:filled + len(view)] = view
            filled += len(view)
        out.append(target)
        out.clear()


if __name__ == "__main__":
    for shape in (current, one_copy, buffered):
        began = time.perf_counter()
        shape([])
        elapsed = time.perf_counter() - began
        print(f"{shape.__name__:9s} {elapsed / FRAMES * 1e6:8.1f} µs per 1 MiB frame")
