"""Storage faults: what the log found wrong on disk, what it did about it, and how often.

Theory of operation
-------------------
The log meets three kinds of trouble, and treats them differently:

- **Expected crash debris**, above the recovery point: a torn tail of the last segment after
  a crash, an index file that is missing or does not fit its segment, a batch past the
  recovery point that fails its CRC. Recovery repairs these as Kafka does — the tail is cut
  at the last valid batch, the index rebuilt — and says so at WARNING: partition, file,
  offsets, bytes dropped.
- **Damage**, where the bytes were already durable: a bad batch below the recovery point, a
  closed segment whose tail does not end where its batches do, two segments that overlap, a
  segment file that vanished, a log that ends below its recovery point. Nothing explains
  these but a broken disk or a hand with `dd`, so nothing is repaired: no byte is cut, no
  file removed. The log opens *offline* (`PartitionLog.offline` holds the first
  `StorageFault`), every append is refused with KAFKA_STORAGE_ERROR, reads of the damaged
  offsets raise KAFKA_STORAGE_ERROR, and the ERROR line names the file, the byte position,
  the offsets and the reason, for the operator (docs/operations.md, "Storage faults").
- **A bad batch met by a read** in a log that opened healthy (segments below the recovery
  point are trusted at start, as in Kafka, so damage inside them shows only when read): the
  read raises CORRUPT_MESSAGE, the error is logged once per segment, and the log stays
  online for appends and for the offsets before and after the bad batch.
- **Write errors** (a full disk, EIO): the append or roll is undone and answered with
  KAFKA_STORAGE_ERROR; a checkpoint that cannot be written is retried later (a checkpoint
  that lags is always safe).

Counters
--------
`COUNTERS` counts each kind, process-wide, for the metrics endpoint: read them as plain
attributes or all at once with `counters()` (a dict, names below). They only grow; the number
of partitions offline right now is a gauge the broker core reports (`BrokerCore.storage_status`).

- `recovery_truncations`, `recovery_truncated_bytes`: torn tails cut at start.
- `recovery_segments_deleted`: empty segment files after a torn tail, removed at start.
- `index_rebuilds`: index files rebuilt at start (missing or invalid).
- `damaged_logs`: logs opened offline because of damage below the recovery point.
- `corrupt_reads`, `corrupt_segments`: reads refused because of a bad batch; distinct
  segments in which a read found one.
- `write_errors`: writes that failed with an OS error (appends, rolls, checkpoints, indexes).
- `free_space_refusals`: produce requests and partition creations refused because the log
  directory's free space is below `log.dir.free.bytes.min`.
- `partition_open_failures`: attempts to create or open a partition's log that failed (the
  broker retries on each tick).
"""

from __future__ import annotations

import errno
import logging
import posixpath
from dataclasses import dataclass

log = logging.getLogger("moldau.log")


class StorageCounters:
    """Monotonic counters of storage faults (see the module docstring for each name)."""

    NAMES = (
        "recovery_truncations",
        "recovery_truncated_bytes",
        "recovery_segments_deleted",
        "index_rebuilds",
        "damaged_logs",
        "corrupt_reads",
        "corrupt_segments",
        "write_errors",
        "free_space_refusals",
        "partition_open_failures",
    )

    def __init__(self) -> None:
        for name in self.NAMES:
            setattr(self, name, 0)

    def add(self, name: str, amount: int = 1) -> None:
        assert name in self.NAMES, f"unknown storage counter {name}"
        setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.NAMES}


# Process-wide: every log of every broker in this process counts here.
COUNTERS = StorageCounters()


def counters() -> dict[str, int]:
    """Every storage counter by name (for a metrics exporter)."""
    return COUNTERS.snapshot()


@dataclass(frozen=True, slots=True)
class StorageFault:
    """Damage that took a log offline: where it is and why, in the operator's terms."""

    kind: str  # "damaged_segment", "overlapping_segment", "vanished_segment", "missing_tail"
    path: str  # the file (or, for a vanished segment, the file that should be there)
    position: int  # byte position in `path` of the first unreadable byte (-1: not known)
    first_offset: int  # first offset that cannot be read
    end_offset: int  # one past the last offset that cannot be read (-1: not known)
    reason: str

    @property
    def partition(self) -> str:
        return posixpath.basename(posixpath.dirname(self.path))

    def describe(self) -> str:
        where = f" at byte {self.position}" if self.position >= 0 else ""
        if self.end_offset > self.first_offset:
            span = f"offsets {self.first_offset} to {self.end_offset - 1} are unreadable"
        else:
            span = f"offsets from {self.first_offset} on are unreadable"
        return f"{posixpath.basename(self.path)}{where}: {self.reason}; {span}"


def partition_name(directory: str) -> str:
    return posixpath.basename(posixpath.normpath(directory))


def is_out_of_space(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


# (directory, what) -> failures so far: a full disk fails the same write on every tick, and
# the log says so on the 1st, 10th, 100th, ... time, not every time.
_write_failures: dict[tuple[str, str], int] = {}


def write_error(directory: str, what: str, error: OSError) -> None:
    """Count and log an OS error of a write; the caller decides what else happens."""
    COUNTERS.add("write_errors")
    key = (directory, what)
    count = _write_failures[key] = _write_failures.get(key, 0) + 1
    if count == 1 or str(count).strip("0") == "1":
        times = "" if count == 1 else f" ({count} times so far)"
        log.warning("%s: %s failed%s: %s", partition_name(directory), what, times, error)
