"""Taking a data directory for a broker: check it, create it, lock it for the process's life.

Theory of operation. Kafka's rule: one broker per data directory, enforced by an exclusive
lock on the file `.lock` inside it, taken at start and held until the process exits. The OS
drops the lock when the process dies (even by kill -9), so a crash never leaves a stale lock
behind and the file itself is never deleted. Two brokers writing one metadata log interleave
their batches, and the next start finds no valid metadata: every topic silently gone. The lock
turns that into a one-line refusal naming the directory and the process that holds it.

The lock is a POSIX record lock (fcntl), the kind Java's `FileChannel.tryLock` takes on Linux,
so a Moldau server and an Apache Kafka broker on the same directory exclude each other too.
POSIX locks belong to the process, not to a descriptor: the same process could lock a file
twice, and closing *any* descriptor of the file drops the lock. So the directories this process
holds are also kept in `_HELD`; a second embedded broker on a held directory is refused before
the file is opened at all. The holder's PID comes from the lock itself (F_GETLK, Linux) or,
elsewhere, from the PID a Moldau process writes into `.lock` after locking it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import sys

LOCK_FILE = ".lock"

# Directories this process holds, by real path (see the module docstring).
_HELD: dict[str, "DataDirLock"] = {}


class DataDirError(Exception):
    """The data directory cannot be used; the message names the directory and the cause."""


class DataDirLock:
    def __init__(self, directory: str, fd: int):
        self.directory = directory
        self.fd = fd

    def release(self) -> None:
        if self.fd < 0:
            return
        os.close(self.fd)  # closing the only descriptor drops the POSIX lock
        self.fd = -1
        _HELD.pop(os.path.realpath(self.directory), None)


def take(directory: str) -> DataDirLock:
    """Create `directory` if needed and lock it; DataDirError (one line) when it cannot be used."""
    _create(directory)
    real = os.path.realpath(directory)
    if real in _HELD:
        raise DataDirError(f"data directory {directory} is already in use by this process (PID {os.getpid()})")
    path = os.path.join(directory, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise DataDirError(f"cannot open {path}: {error.strerror}") from None
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = _holder_pid(fd)
        os.close(fd)  # safe: this process holds no lock on the file (not in _HELD)
        if error.errno not in (errno.EACCES, errno.EAGAIN):
            raise DataDirError(f"cannot lock {path}: {error.strerror}") from None
        who = f"process {holder}" if holder else "another process"
        raise DataDirError(f"data directory {directory} is in use by {who} (it holds {path}); "
                           "each broker needs its own data directory") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    lock = DataDirLock(directory, fd)
    _HELD[real] = lock
    return lock


def _create(directory: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise DataDirError(f"data directory {directory} is a file, not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise DataDirError(f"cannot create data directory {directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DataDirError(f"data directory {directory} is not writable")


def _holder_pid(fd: int) -> int | None:
    """The PID holding the lock: asked of the kernel on Linux, else what the holder wrote."""
    if sys.platform.startswith("linux"):
        # struct flock on Linux: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
        layout = struct.Struct("hhqqi4x")
        try:
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, layout.pack(fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
            lock_type, _whence, _start, _length, pid = layout.unpack(answer)
            if lock_type != fcntl.F_UNLCK and pid > 0:
                return pid
        except OSError:
            pass
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
