"""Leader-epoch cache: which leader epoch started at which offset (KIP-101/279).

Theory of operation
-------------------
Every batch a leader appends is stamped with its leader epoch; the cache keeps one entry
`(epoch, start_offset)` per epoch that wrote data, ascending in both. A follower asks the
leader "where does my epoch E end?" (OffsetForLeaderEpoch, or the Fetch diverging-epoch
check) and truncates to the answer instead of to its high watermark, which is what keeps
replicas from diverging after leader changes.

`end_offset_for_epoch(E, log_end_offset)` follows Kafka's LeaderEpochFileCache.endOffsetFor:

- E == UNDEFINED (-1) or E newer than every known epoch → (-1, -1);
- E == the latest epoch → (E, log_end_offset);
- otherwise → (largest known epoch <= E, start offset of the first epoch > E); when E is older
  than every entry the answer is (E, start offset of the first entry).

`assign` ignores an entry that does not move forward (same epoch) and first removes entries
that conflict with the new one (epoch >= new epoch or start_offset >= new start_offset), so
the list stays strictly monotonic. `truncate_from_end(end)` (follower truncation) drops
entries starting at or after `end`; `truncate_from_start(start)` (log start moved) drops
entries wholly below `start` and moves the last of them up to `start`.

Persisted after every change to `leader-epoch-checkpoint` in Kafka's text format::

    0            <- version
    2            <- entry count
    0 0          <- epoch start_offset
    3 1500
"""

from __future__ import annotations

import bisect
import posixpath

from moldau import limits

from .faults import write_error
from .fs import FileSystem

CHECKPOINT_FILE = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    def __init__(self, fs: FileSystem | None, directory: str | None) -> None:
        self._fs = fs
        self._directory = directory or ""
        self._path = posixpath.join(directory, CHECKPOINT_FILE) if directory else None
        self.entries: list[tuple[int, int]] = []
        # Why the checkpoint file could not be read ("" if it could): the log rebuilds the
        # entries from its batch headers (PartitionLog.open).
        self.load_error = ""
        # The entries changed but could not be written (disk full): written again at the
        # next flush (`persist_if_dirty`).
        self.dirty = False

    @classmethod
    def load(cls, fs: FileSystem, directory: str) -> "LeaderEpochCache":
        cache = cls(fs, directory)
        if cache._path and fs.exists(cache._path):
            try:
                cache.entries = parse_checkpoint(fs.read_file(cache._path).decode("ascii"))
            except (ValueError, UnicodeDecodeError) as error:
                cache.load_error = str(error) or type(error).__name__
        return cache

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch whose range contains `offset`, or UNDEFINED."""
        index = bisect.bisect_right([start for _, start in self.entries], offset) - 1
        return self.entries[index][0] if index >= 0 else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> bool:
        """Record that `epoch` starts at `start_offset`; True if the cache changed."""
        assert epoch >= 0 and start_offset >= 0, f"bad epoch entry ({epoch}, {start_offset})"
        if self.entries:
            latest_epoch, latest_start = self.entries[-1]
            if latest_epoch == epoch and start_offset >= latest_start:
                return False
        self.entries = [
            (e, s) for e, s in self.entries if e < epoch and s < start_offset
        ]
        self.entries.append((epoch, start_offset))
        assert len(self.entries) <= limits.leader_epoch_entries_max, "too many leader epochs"
        self._persist()
        return True

    def end_offset_for_epoch(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end_offset) per Kafka's semantics (see module docstring)."""
        if epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == self.latest_epoch:
            return epoch, log_end_offset
        epochs = [e for e, _ in self.entries]
        higher = bisect.bisect_right(epochs, epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return epoch, self.entries[0][1]
        return self.entries[higher - 1][0], self.entries[higher][1]

    def truncate_from_end(self, end_offset: int) -> None:
        kept = [(e, s) for e, s in self.entries if s < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._persist()

    def truncate_from_start(self, start_offset: int) -> None:
        below = [(e, s) for e, s in self.entries if s <= start_offset]
        if not below or (len(below) == 1 and below[0][1] == start_offset):
            return
        kept = [(below[-1][0], start_offset)] + [(e, s) for e, s in self.entries if s > start_offset]
        self.entries = kept
        self._persist()

    def clear_and_flush(self) -> None:
        self.entries = []
        self._persist()

    def _persist(self) -> None:
        """Write the checkpoint; an OS error (a full disk) is logged and the write retried by
        `persist_if_dirty`: the entries in memory stay right, the file lags until then."""
        if self._fs is None or self._path is None:
            return
        try:
            self._fs.write_atomic(self._path, format_checkpoint(self.entries).encode("ascii"))
        except OSError as error:
            self.dirty = True
            write_error(self._directory, "writing the leader-epoch checkpoint", error)
            return
        self.dirty = False

    def stop_writing(self) -> None:
        """Keep the entries in memory only from now on (an offline log changes no file)."""
        self._fs = None

    def persist_if_dirty(self) -> None:
        if self.dirty:
            self._persist()


def format_checkpoint(entries: list[tuple[int, int]]) -> str:
    lines = ["0", str(len(entries))] + [f"{epoch} {start}" for epoch, start in entries]
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> list[tuple[int, int]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or lines[0] != "0":
        raise ValueError("leader-epoch-checkpoint: bad version line")
    count = int(lines[1])
    if count != len(lines) - 2:
        raise ValueError("leader-epoch-checkpoint: entry count mismatch")
    entries = []
    for line in lines[2:]:
        epoch, start = line.split()
        entries.append((int(epoch), int(start)))
    return entries
