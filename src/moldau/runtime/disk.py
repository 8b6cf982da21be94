"""`OsFileSystem`: the real disk behind `moldau.log.fs.FileSystem`.

Theory of operation
-------------------
Files are opened O_RDWR|O_APPEND (appends go to the end even after a truncate) and written
with os.writev straight to the OS page cache: no Python buffering, so once `append` returns a
killed process loses nothing. Durability is explicit (`sync` = fsync), driven by the log's
flush policy; the durability work the log can leave for later (a rolled segment's fsync and
its recovery-point checkpoint) runs on one worker thread once the runtime asks for it
(`run_background_on`), so that a multi-second fsync of a full segment does not stop the event
loop. Reads use os.pread, so one descriptor serves concurrent readers and the writer;
`fileno()` is exposed for os.sendfile in the network layer. Checkpoints use write-temporary,
fsync, rename, fsync-directory. Inside `deferred_syncs(path)` (a clean shutdown closing
thousands of logs) every fsync is skipped and one syncfs of the data directory's file system
makes it all durable at the end: one disk wait instead of several per partition.
"""

from __future__ import annotations

import ctypes
import os
import queue
import shutil
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from moldau.log.fs import Chunk
from moldau.runtime.loop_health import BACKGROUND_SYNCS, DISK_SYNCS, DISK_WRITES

_BACKGROUND = threading.local()  # set on the durability worker's thread

# Linux IOV_MAX is 1024; stay under it per writev call.
_IOV_CHUNKS_MAX = 1000


class OsFileHandle:
    def __init__(self, path: str, fd: int, fs: "OsFileSystem | None" = None) -> None:
        self.path = path
        self._fd = fd
        self._fs = fs
        self._size = os.fstat(fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def fileno(self) -> int:
        return self._fd

    def append(self, chunks: Sequence[Chunk]) -> int:
        began = time.perf_counter_ns()  # a write the kernel makes wait stops the event loop
        try:
            return self._append(chunks)
        finally:
            DISK_WRITES.observe(time.perf_counter_ns() - began)

    def _append(self, chunks: Sequence[Chunk]) -> int:
        if len(chunks) <= _IOV_CHUNKS_MAX:  # the common case: one writev
            expected = sum(map(len, chunks))
            written = os.writev(self._fd, chunks)
            if written < expected:
                self._finish_short_write(chunks, written, expected)
            self._size += expected
            return expected
        total = 0
        for start in range(0, len(chunks), _IOV_CHUNKS_MAX):
            group = chunks[start : start + _IOV_CHUNKS_MAX] if len(chunks) > _IOV_CHUNKS_MAX \
                else chunks
            expected = sum(map(len, group))
            written = os.writev(self._fd, group)
            if written < expected:  # a short write (signal, disk full boundary): finish it
                self._finish_short_write(group, written, expected)
            total += expected
        self._size += total
        return total

    def _finish_short_write(self, group: Sequence[Chunk], written: int, expected: int) -> None:
        rest = memoryview(b"".join(bytes(c) for c in group))
        while written < expected:
            count = os.write(self._fd, rest[written:])
            if count <= 0:
                raise OSError(f"short write to {self.path}")
            written += count

    def pread(self, size: int, position: int) -> bytes:
        data = os.pread(self._fd, size, position)
        if len(data) < size and position + len(data) < self._size:
            parts = [data]
            got = len(data)
            while got < size:
                more = os.pread(self._fd, size - got, position + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self._size = size

    def sync(self) -> None:
        if self._fs is not None and self._fs.deferring:
            return  # the syncfs at the end of deferred_syncs covers it
        _timed_fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OsFileSystem:
    """The real disk. Background durability work (`background`) runs inline until the runtime
    calls `run_background_on(call_soon_threadsafe)`: from then on one worker thread runs the
    tasks in order (os.fsync releases the GIL, so the event loop keeps serving meanwhile) and
    each task's `then` is handed back to the loop's thread."""

    def __init__(self) -> None:
        self._post: Callable[..., object] | None = None
        self._tasks: queue.SimpleQueue | None = None
        self._worker: threading.Thread | None = None
        self._outstanding = 0
        self._idle = threading.Condition()
        self._deferring = 0

    def run_background_on(self, post: Callable[..., object]) -> None:
        """Run background tasks on a worker thread; `post(fn, arg)` (the event loop's
        call_soon_threadsafe) brings their completions back to the loop's thread."""
        self._post = post

    def background(self, task: Callable[[], None], then: Callable[[OSError | None], None]) -> None:
        if self._post is None:
            try:
                task()
            except OSError as error:
                then(error)
                return
            then(None)
            return
        if self._worker is None:
            self._tasks = queue.SimpleQueue()
            self._worker = threading.Thread(target=self._work, name="moldau-durability", daemon=True)
            self._worker.start()
        with self._idle:
            self._outstanding += 1
        self._tasks.put((task, then))

    def _work(self) -> None:
        _BACKGROUND.active = True  # its fsyncs do not stop the loop: counted apart
        while True:
            task, then = self._tasks.get()
            error = None
            try:
                task()
            except OSError as raised:
                error = raised
            try:
                self._post(then, error)
            except RuntimeError:  # the loop is closed: nobody waits for the completion
                pass
            with self._idle:
                self._outstanding -= 1
                self._idle.notify_all()

    def drain_background(self) -> None:
        """Wait until every task handed over has run (their `then`s are posted to the loop)."""
        with self._idle:
            self._idle.wait_for(lambda: self._outstanding == 0)

    @property
    def deferring(self) -> bool:
        return self._deferring > 0

    @contextmanager
    def deferred_syncs(self, path: str) -> Iterator[None]:
        """Skip every fsync inside; then sync the whole file system holding `path` once."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring:
                _syncfs(path)

    def open(self, path: str, *, create: bool = False) -> OsFileHandle:
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        if create:
            flags |= os.O_CREAT
        return OsFileHandle(path, os.open(path, flags, 0o644), self)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def remove_tree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def rename(self, source: str, destination: str) -> None:
        os.replace(source, destination)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as file:
            return file.read()

    def write_atomic(self, path: str, data: bytes, sync: bool = True) -> None:
        temporary = path + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync and not self._deferring:
                _timed_fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        if sync:
            self.sync_dir(os.path.dirname(path) or ".")

    def sync_dir(self, path: str) -> None:
        if self._deferring:
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            _timed_fsync(fd)
        finally:
            os.close(fd)


def _timed_fsync(fd: int) -> None:
    """fsync, timed: it waits for the disk, and on the event loop's thread nothing else runs
    meanwhile (on the durability worker's, the loop goes on: counted apart)."""
    began = time.perf_counter_ns()
    try:
        os.fsync(fd)
    finally:
        elapsed = time.perf_counter_ns() - began
        if getattr(_BACKGROUND, "active", False):
            BACKGROUND_SYNCS.observe_locked(elapsed)
        else:
            DISK_SYNCS.observe(elapsed)


def _syncfs(path: str) -> None:
    """syncfs(2) on the file system holding `path` (Linux); elsewhere sync(2)."""
    began = time.perf_counter_ns()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = getattr(libc, "syncfs", None)
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs is None or syncfs(fd) != 0:
                os.sync()
        finally:
            os.close(fd)
    except OSError:
        os.sync()
    finally:
        DISK_SYNCS.observe(time.perf_counter_ns() - began)
