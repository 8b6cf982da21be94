"""Memory for requests being received: one bound for every connection, and giving memory back.

Theory of operation
-------------------
A connection holds memory only while a request frame is partly received (runtime/server.py):
reads land in one read buffer the whole server shares, complete frames are handed to the core
straight from it, and only the bytes of an incomplete frame move into a buffer of the
connection's own, which grows (doubling) as those bytes arrive and is dropped when the frame is
complete. An idle connection therefore holds no read buffer at all, and a client that announces
a 100 MiB frame and sends 2 KiB costs 2 KiB, not 100 MiB.

`RequestMemoryPool` bounds the bytes of all those buffers together: Kafka's
`queued.max.request.bytes` (limits.queued_request_bytes_max_default; negative: unbounded). A
connection asks the pool before a buffer grows (`try_charge`); while the pool is exhausted:

- a connection that would have to grow stops reading and waits in line (`wait`), holding
  what it has — nobody is disconnected;
- a connection holding nothing reads at most a frame's 4-byte size at a time, so it cannot
  pull in more than that before it, too, waits;
- one connection at a time, the first to need more, may go past the bound (the *holder*), until
  its frame is complete: frames in flight could otherwise wait for each other forever. The
  bytes held are thus at most the bound plus one frame (socket.request.max.bytes).

Memory released wakes the waiting connections in order while it lasts. Bytes a connection
had already read when it was refused are charged anyway (`force_charge`; at most 4 bytes,
or the tail of one shared read).

Freed buffers go back to the allocator; whether the process's resident size shrinks depends
on it. `trim()` (glibc's malloc_trim) returns the free heap after a storm; the server calls it
once the pool is empty again after holding at least `limits.memory_trim_after_bytes`. glibc's
own mmap threshold is left to adapt: pinning it at 128 KiB (every large buffer its own mmap,
given back when freed) cost a producer's 1 MiB requests three fresh mappings each — page faults
on every 4 KiB — nearly doubling the broker's CPU per produced record (0.3 → 0.55 µs), while
the storm benchmark (benchmarks/memory.py) came back to the same resident size either way
(after/before 0.95 without, 0.99 with; 2.8 KiB per idle connection both).
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
from typing import Protocol

log = logging.getLogger("moldau.server")



class Borrower(Protocol):
    closed: bool

    def retry_memory(self) -> bool:
        """Try again to grow (the pool freed memory); True if it did and reads again."""
        ...


class RequestMemoryPool:
    def __init__(self, bound_bytes: int) -> None:
        self.bound_bytes = bound_bytes  # < 0: unbounded
        self.used_bytes = 0
        self.peak_bytes = 0  # since the last trim (see Server's tick)
        self.holder: Borrower | None = None
        self.waiting: collections.deque[Borrower] = collections.deque()
        self.waits = 0  # times a connection stopped reading for memory (a counter for metrics)

    def exhausted(self) -> bool:
        return 0 <= self.bound_bytes <= self.used_bytes

    def may_read_fully(self, borrower: Borrower) -> bool:
        """Whether `borrower` (holding nothing) may read a whole shared buffer's worth."""
        return not self.exhausted() or self.holder is borrower

    def try_charge(self, borrower: Borrower, size_bytes: int) -> bool:
        if self.bound_bytes < 0 or self.used_bytes + size_bytes <= self.bound_bytes:
            self._charge(size_bytes)
            return True
        if self.holder is None or self.holder is borrower:
            self.holder = borrower  # one connection may pass the bound: no frame waits forever
            self._charge(size_bytes)
            return True
        return False

    def force_charge(self, size_bytes: int) -> None:
        """Bytes already read by a connection that then had to wait."""
        self._charge(size_bytes)

    def _charge(self, size_bytes: int) -> None:
        self.used_bytes += size_bytes
        if self.used_bytes > self.peak_bytes:
            self.peak_bytes = self.used_bytes

    def release(self, borrower: Borrower, size_bytes: int, done: bool) -> None:
        """`borrower` gives back `size_bytes`; `done`: it holds nothing any more."""
        self.used_bytes -= size_bytes
        assert self.used_bytes >= 0, "request memory released twice"
        if done and self.holder is borrower:
            self.holder = None
        self._wake()

    def wait(self, borrower: Borrower) -> None:
        self.waits += 1
        self.waiting.append(borrower)

    def forget(self, borrower: Borrower) -> None:
        """A closed connection: out of the line, no longer the holder."""
        if self.holder is borrower:
            self.holder = None
        try:
            self.waiting.remove(borrower)
        except ValueError:
            pass
        self._wake()

    def _wake(self) -> None:
        while self.waiting and not self.exhausted():
            borrower = self.waiting[0]
            if not borrower.closed and not borrower.retry_memory():
                return
            self.waiting.popleft()
        if self.waiting and self.holder is None:  # exhausted, and nobody may pass the bound
            borrower = self.waiting[0]
            if borrower.closed or borrower.retry_memory():
                self.waiting.popleft()


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def trim() -> None:
    """Give the allocator's free memory back to the OS (glibc's malloc_trim; else a no-op)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
