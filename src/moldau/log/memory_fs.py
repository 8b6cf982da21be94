"""An in-memory `FileSystem` that can crash, for unit tests and the deterministic simulation.

Theory of operation
-------------------
Each file keeps two contents: `data`, what the OS would show (every append/truncate applied),
and `durable`, the content as of its last `sync()` (or b"" for a never-synced file).
`crash()` models a power loss: every file reverts to its durable content plus, in "tear" mode,
a random prefix of the bytes appended since the last sync (a torn write); "keep" models a
process kill, where the OS keeps everything written. After a crash the open handles are dead
(any use raises) and the log must be reopened, exactly as after a restart.

A file system made with `capacity_bytes` is full when its files hold that many bytes: an
append writes what fits and raises ENOSPC (as a short writev followed by a failed write
does), a checkpoint that does not fit raises ENOSPC before anything changes. `usage()` gives
(total, free) bytes, what the broker's free-space check reads from the real disk.

Simplifications, stated: directory operations (create, remove, rename, write_atomic) are
durable at once, as on a journaling file system with ordered metadata; a truncation or a
rewrite since the last sync makes the whole unsynced state revert (no tearing of those).
"""

from __future__ import annotations

import errno
import posixpath
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from .fs import Chunk


@dataclass
class _File:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    # True while all changes since the last sync are appends (then a crash may tear them).
    append_only: bool = True


class MemoryFileHandle:
    def __init__(self, fs: "MemoryFileSystem", path: str, file: _File) -> None:
        self.path = path
        self._fs = fs
        self._file = file
        self._generation = fs.generation
        self.closed = False

    def _live(self) -> _File:
        if self.closed or self._generation != self._fs.generation:
            raise OSError(f"handle for {self.path} is closed (or the file system crashed)")
        return self._file

    @property
    def size(self) -> int:
        return len(self._live().data)

    def fileno(self) -> int:
        return -1

    def append(self, chunks: Sequence[Chunk]) -> int:
        file = self._live()
        written = 0
        room = self._fs.free_bytes()
        for chunk in chunks:
            if room is not None and len(chunk) > room - written:
                file.data += bytes(chunk[: room - written])  # a short write, then the error
                self._fs.bytes_written += room
                raise OSError(errno.ENOSPC, "No space left on device", self.path)
            file.data += chunk
            written += len(chunk)
        self._fs.bytes_written += written
        return written

    def pread(self, size: int, position: int) -> bytes:
        return bytes(self._live().data[position : position + size])

    def truncate(self, size: int) -> None:
        file = self._live()
        if size < len(file.data):
            del file.data[size:]
            file.append_only = False
        elif size > len(file.data):
            room = self._fs.free_bytes()
            if room is not None and size - len(file.data) > room:
                raise OSError(errno.ENOSPC, "No space left on device", self.path)
            file.data += bytes(size - len(file.data))
            file.append_only = False

    def sync(self) -> None:
        file = self._live()
        if self._fs.deferring:
            return  # durable when deferred_syncs ends
        file.durable = bytes(file.data)
        file.append_only = True
        self._fs.syncs += 1

    def close(self) -> None:
        self.closed = True


class _Names:
    """Each directory's entry names, kept as entries come and go: listdir without a scan of
    every path (a node with 10,000 partitions opened them in quadratic time)."""

    def __init__(self) -> None:
        self.by_dir: dict[str, dict[str, int]] = {}

    def add(self, path: str) -> None:
        names = self.by_dir.setdefault(posixpath.dirname(path), {})
        name = posixpath.basename(path)
        names[name] = names.get(name, 0) + 1  # a file and a directory may share a name

    def discard(self, path: str) -> None:
        parent, name = posixpath.dirname(path), posixpath.basename(path)
        names = self.by_dir.get(parent)
        if names is not None and name in names:
            names[name] -= 1
            if not names[name]:
                del names[name]


class _Files(dict):
    """path -> _File; tests may set and delete entries directly, so the index follows here."""

    def __init__(self, names: _Names) -> None:
        super().__init__()
        self.names = names

    def __setitem__(self, path: str, file: "_File") -> None:
        if path not in self:
            self.names.add(path)
        super().__setitem__(path, file)

    def __delitem__(self, path: str) -> None:
        super().__delitem__(path)
        self.names.discard(path)

    def pop(self, path: str, *default):  # type: ignore[override]
        if path in self:
            self.names.discard(path)
        return super().pop(path, *default)


class _Dirs(set):
    def __init__(self, names: _Names, paths=()) -> None:
        super().__init__()
        self.names = names
        for path in paths:
            self.add(path)

    def add(self, path: str) -> None:  # type: ignore[override]
        if path not in self:
            if path not in ("", "/"):
                self.names.add(path)
            super().add(path)

    def discard(self, path: str) -> None:  # type: ignore[override]
        if path in self:
            super().discard(path)
            if path not in ("", "/"):
                self.names.discard(path)

    def replace_all(self, paths) -> None:
        for path in list(self):
            self.discard(path)
        for path in paths:
            self.add(path)


class MemoryFileSystem:
    def __init__(self, capacity_bytes: int | None = None) -> None:
        self._names = _Names()
        self.files: dict[str, _File] = _Files(self._names)
        self.dirs: set[str] = _Dirs(self._names, ("/", ""))
        self.generation = 0
        self.syncs = 0
        self.bytes_written = 0
        self.capacity_bytes = capacity_bytes  # None: unbounded
        self._deferring = 0  # inside deferred_syncs

    def free_bytes(self) -> int | None:
        if self.capacity_bytes is None:
            return None
        return max(0, self.capacity_bytes - sum(len(f.data) for f in self.files.values()))

    def usage(self) -> tuple[int, int]:
        """(total, free) bytes, as statvfs gives them for a real disk (-1, -1: unbounded)."""
        free = self.free_bytes()
        return (-1, -1) if free is None else (self.capacity_bytes or 0, free)

    @staticmethod
    def _norm(path: str) -> str:
        return posixpath.normpath(path)

    def open(self, path: str, *, create: bool = False) -> MemoryFileHandle:
        path = self._norm(path)
        file = self.files.get(path)
        if file is None:
            if not create:
                raise FileNotFoundError(path)
            if posixpath.dirname(path) not in self.dirs:
                raise FileNotFoundError(posixpath.dirname(path))
            file = self.files[path] = _File()
        return MemoryFileHandle(self, path, file)

    def exists(self, path: str) -> bool:
        path = self._norm(path)
        return path in self.files or path in self.dirs

    def listdir(self, path: str) -> list[str]:
        path = self._norm(path)
        if path not in self.dirs:
            raise FileNotFoundError(path)
        return sorted(self._names.by_dir.get(path, ()))

    def makedirs(self, path: str) -> None:
        path = self._norm(path)
        while path not in self.dirs:
            self.dirs.add(path)
            path = posixpath.dirname(path)

    def remove(self, path: str) -> None:
        self.files.pop(self._norm(path), None)

    def remove_tree(self, path: str) -> None:
        path = self._norm(path)
        prefix = path + "/"
        for name in sorted(self.files):
            if name.startswith(prefix):
                del self.files[name]
        self.dirs.replace_all([d for d in self.dirs if d != path and not d.startswith(prefix)])

    def rename(self, source: str, destination: str) -> None:
        source, destination = self._norm(source), self._norm(destination)
        if source in self.dirs:  # a directory moves with everything below it
            prefix = source + "/"
            for name in sorted(self.files):
                if name.startswith(prefix):
                    self.files[destination + name[len(source):]] = self.files.pop(name)
            self.dirs.replace_all([destination + d[len(source):] if d == source or d.startswith(prefix) else d
                                   for d in self.dirs])
            return
        self.files[destination] = self.files.pop(source)

    def read_file(self, path: str) -> bytes:
        file = self.files.get(self._norm(path))
        if file is None:
            raise FileNotFoundError(path)
        return bytes(file.data)

    def write_atomic(self, path: str, data: bytes, sync: bool = True) -> None:
        room = self.free_bytes()
        if room is not None and len(data) > room:  # the temporary file does not fit
            raise OSError(errno.ENOSPC, "No space left on device", path)
        path = self._norm(path)
        if sync and not self._deferring:
            self.files[path] = _File(bytearray(data), bytes(data), True)
            return
        # Unsynced: a power loss brings back what was durable before (empty if nothing was).
        previous = self.files.get(path)
        self.files[path] = _File(bytearray(data), previous.durable if previous is not None else b"", False)

    def sync_dir(self, path: str) -> None:
        if not self._deferring:
            self.syncs += 1

    @property
    def deferring(self) -> bool:
        return self._deferring > 0

    @contextmanager
    def deferred_syncs(self, path: str) -> Iterator[None]:
        """As syncfs at the end: syncs inside are skipped, and every file's content becomes
        durable when it ends (not before)."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring:
                for file in self.files.values():
                    file.durable = bytes(file.data)
                    file.append_only = True
                self.syncs += 1

    def background(self, task, then) -> None:
        """At once, in the caller's thread: simulations stay deterministic."""
        try:
            task()
        except OSError as error:
            then(error)
            return
        then(None)

    def drain_background(self) -> None:
        pass

    def crash(self, mode: str = "drop", rng: object | None = None) -> None:
        """Lose what a power loss ("drop"/"tear") or a process kill ("keep") would lose.

        `rng` (a `random.Random`, injected: the core never creates randomness) picks where a
        "tear" cuts the unsynced bytes; without it the cut is in the middle.
        """
        assert mode in ("drop", "tear", "keep"), f"unknown crash mode {mode!r}"
        self.generation += 1
        if mode == "keep":
            return
        for path in sorted(self.files):
            file = self.files[path]
            kept = b""
            unsynced = len(file.data) - len(file.durable)
            if mode == "tear" and file.append_only and unsynced > 0:
                cut = rng.randint(0, unsynced) if rng is not None else unsynced // 2  # type: ignore[attr-defined]
                kept = bytes(file.data[len(file.durable) : len(file.durable) + cut])
            file.data = bytearray(file.durable + kept)
            file.append_only = True
