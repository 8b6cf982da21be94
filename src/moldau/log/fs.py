"""The file-system interface through which the log reaches the disk.

Theory of operation
-------------------
`log/` does no I/O of its own: a `PartitionLog` is given a `FileSystem` and only calls the
methods below. `moldau.runtime.disk.OsFileSystem` implements them with os.open/os.writev/
os.pread/os.fsync/os.ftruncate; `moldau.log.memory_fs.MemoryFileSystem` keeps files in memory
and can simulate a crash (drop or tear unsynced bytes) for tests and the cluster simulation.

Semantics the log relies on:

- `FileHandle.append(chunks)` appends all chunks at the end of the file, *unbuffered*: when it
  returns, the bytes are in the OS (a killed process loses nothing), not necessarily on disk.
  Chunks are written with as few system calls as possible (writev).
- `FileHandle.sync()` makes everything appended so far durable (fsync).
- `FileHandle.size` is the file's size as the log believes it (appends and truncates update it).
- `FileHandle.fileno()` is the OS descriptor for sendfile, or -1 when there is none (memory).
- `FileSystem.write_atomic(path, data)` replaces a small file atomically and durably (write a
  temporary, fsync, rename, fsync the directory): used for checkpoints.
- `FileSystem.rename(src, dst)` replaces `dst` atomically; `sync_dir` makes renames and
  creations durable.
- `FileSystem.background(task, then)` runs `task` (durability work only: fsyncs and checkpoint
  writes of files the log no longer appends to) after every task handed over before it, off the
  caller's thread where the file system can, and then calls `then(error)` — `error` the OSError
  the task raised, or None — on the caller's thread. The memory file system runs both at once;
  the real one does so too until the runtime gives it a thread (runtime/disk.py).
  `drain_background()` waits until every task handed over has run (close and shutdown).
Paths are plain strings joined with "/" (posixpath).
"""

from __future__ import annotations

from typing import Callable, ContextManager, Protocol, Sequence

Chunk = bytes | bytearray | memoryview


class FileHandle(Protocol):
    path: str

    @property
    def size(self) -> int: ...

    def fileno(self) -> int: ...

    def append(self, chunks: Sequence[Chunk]) -> int:
        """Append every chunk at the end; return the bytes written (their total)."""
        ...

    def pread(self, size: int, position: int) -> bytes:
        """Up to `size` bytes at `position` (fewer only at end of file)."""
        ...

    def truncate(self, size: int) -> None: ...

    def sync(self) -> None: ...

    def close(self) -> None: ...


class FileSystem(Protocol):
    def open(self, path: str, *, create: bool = False) -> FileHandle:
        """Open for reading and appending; FileNotFoundError unless it exists or `create`."""
        ...

    def exists(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str]: ...

    def makedirs(self, path: str) -> None: ...

    def remove(self, path: str) -> None:
        """Delete a file; missing files are ignored."""
        ...

    def remove_tree(self, path: str) -> None:
        """Delete a directory and everything below it; missing is ignored."""
        ...

    def rename(self, source: str, destination: str) -> None: ...

    def read_file(self, path: str) -> bytes: ...

    def write_atomic(self, path: str, data: bytes, sync: bool = True) -> None:
        """Replace the file's content at once (write a temporary file, rename it over). With
        `sync`, the content and the rename are on disk when it returns (fsync of the file and
        of its directory); without, the OS has them and a power loss may leave the old
        content, or an empty file — for files whose loss recovery repairs."""
        ...

    def sync_dir(self, path: str) -> None: ...

    def deferred_syncs(self, path: str) -> ContextManager[None]:
        """Inside, syncs may be skipped; on exit everything written is durable (one syncfs of
        the file system holding `path`): a clean shutdown closing many logs waits once."""
        ...

    def background(self, task: Callable[[], None], then: Callable[[OSError | None], None]) -> None: ...

    def drain_background(self) -> None: ...
