"""The broker's log directory: the free-space reserve, and partitions it cannot serve.

Theory of operation
-------------------
Three things keep a full or damaged disk from costing more than the partitions it touches:

- **The reserve** (`log.dir.free.bytes.min`, limits.log_dir_free_bytes_min_default). A produce
  request, or a metadata change that creates partitions, is refused with KAFKA_STORAGE_ERROR
  while the data directory has less free space than the reserve, so the broker never fills
  the disk itself; what is left serves its own small writes (checkpoints, index files,
  metadata records, committed offsets), which are never refused here. The free space comes
  from the runtime's `disk_usage()` (statvfs), read at most every
  `limits.log_dir_free_space_check_ms` while far from the reserve and on every append near
  it; the bytes appended since the last reading are subtracted meanwhile. Free space that
  comes back is seen within that interval: nothing needs a restart.
- **Partitions whose log could not be created or opened** (an OSError: ENOSPC while creating
  the directory or its first files). The metadata record that named them is applied anyway
  — the image never stays half-applied — and the partition is remembered in `pending`; the
  broker core retries opening it on every tick (`due`), and clients asking for it get
  KAFKA_STORAGE_ERROR meanwhile. The first failure is logged at ERROR, later ones sparingly,
  the success at WARNING.
- **Offline partitions**: a log that opened with damage below its recovery point
  (`PartitionLog.offline`, log/faults.py). Clients get KAFKA_STORAGE_ERROR for it; it stays
  offline until the operator repairs it and restarts (docs/operations.md). In a cluster a
  replica in this state must instead be re-fetched from the leader (the replication code
  reads `PartitionLog.offline`).

On a cluster each broker keeps its own `LogDirectory`: the reserve guards that broker's disk.
A create refused up front is refused by the broker that runs the controller, for its own
disk; brokers that host replicas of a created partition open them through `pending` like any
other partition, so one full broker does not stop the others.

Counters for metrics: log/faults.py (`free_space_refusals`, `partition_open_failures`);
`BrokerCore.storage_status()` gives the gauges (offline and pending partitions, free bytes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from moldau import limits
from moldau.log.faults import COUNTERS

log = logging.getLogger("moldau.log")

_WARNING_INTERVAL_MS = 60_000


@dataclass
class PendingOpen:
    """A partition whose log could not be created or opened yet."""

    topic_id: str
    reason: str
    since_ms: int
    attempts: int = 1


class LogDirectory:
    def __init__(self, path: str, disk_usage: Callable[[], tuple[int, int]], free_bytes_min: int,
                 now_ms: int) -> None:
        self.path = path
        self.disk_usage = disk_usage  # (total, usable) bytes; (-1, -1): not known
        self.free_bytes_min = free_bytes_min
        self.pending: dict[tuple[str, int], PendingOpen] = {}
        self._usable_bytes = -1  # at the last reading
        self._read_ms = now_ms - limits.log_dir_free_space_check_ms  # read on first use
        self._appended_bytes = 0  # since the last reading
        self._warned_ms = now_ms - _WARNING_INTERVAL_MS

    # --- the reserve ---------------------------------------------------------------------
    def usable_bytes(self, now_ms: int) -> int:
        """Free bytes as far as known (-1: not known), refreshed as the module docstring says."""
        estimate = self._usable_bytes - self._appended_bytes
        near = estimate - self.free_bytes_min < 2 * max(self._appended_bytes, 1 << 20)
        if near or now_ms - self._read_ms >= limits.log_dir_free_space_check_ms:
            try:
                _total, usable = self.disk_usage()
            except OSError:
                usable = -1
            self._usable_bytes, self._read_ms, self._appended_bytes = usable, now_ms, 0
            estimate = usable
        return estimate if self._usable_bytes >= 0 else -1

    def refuse_write(self, size_bytes: int, now_ms: int) -> str | None:
        """Why a produce of `size_bytes` must be refused (KAFKA_STORAGE_ERROR), or None; the
        bytes are counted as written when it is not."""
        if self.free_bytes_min <= 0:
            return None
        usable = self.usable_bytes(now_ms)
        if usable < 0 or usable - size_bytes >= self.free_bytes_min:
            self._appended_bytes += size_bytes
            return None
        COUNTERS.add("free_space_refusals")
        self._warn(now_ms, "refusing produce requests: " + self._below_reserve(usable))
        return self._below_reserve(usable)

    def refuse_new_partitions(self, count: int, now_ms: int) -> str | None:
        """Why `count` new partitions must be refused up front, or None."""
        if self.free_bytes_min <= 0 or count <= 0:
            return None
        usable = self.usable_bytes(now_ms)
        if usable < 0 or usable >= self.free_bytes_min:
            return None
        COUNTERS.add("free_space_refusals")
        self._warn(now_ms, f"refusing to create {count} partition(s): {self._below_reserve(usable)}")
        return self._below_reserve(usable)

    def _warn(self, now_ms: int, message: str) -> None:
        """At most one line a minute: clients retry refused requests many times a second."""
        if now_ms - self._warned_ms >= _WARNING_INTERVAL_MS:
            self._warned_ms = now_ms
            log.warning("%s (counter free_space_refusals: %d)", message, COUNTERS.free_space_refusals)

    def _below_reserve(self, usable: int) -> str:
        return (f"the log directory {self.path} has {usable} bytes free, below "
                f"log.dir.free.bytes.min ({self.free_bytes_min})")

    # --- partitions whose log could not be opened ----------------------------------------
    def open_failed(self, key: tuple[str, int], topic_id: str, error: Exception, now_ms: int) -> None:
        COUNTERS.add("partition_open_failures")
        pending = self.pending.get(key)
        if pending is None:
            self.pending[key] = PendingOpen(topic_id, str(error), now_ms)
            log.error("%s-%d: cannot open its log (%s); clients get KAFKA_STORAGE_ERROR until "
                      "it opens, retried on every tick", key[0], key[1], error)
            return
        pending.attempts += 1
        pending.reason = str(error)
        if str(pending.attempts).strip("0") == "1":  # the 10th, 100th, ... attempt
            log.error("%s-%d: still cannot open its log after %d attempts: %s",
                      key[0], key[1], pending.attempts, error)

    def opened(self, key: tuple[str, int], now_ms: int) -> None:
        pending = self.pending.pop(key, None)
        if pending is not None:
            log.warning("%s-%d: opened its log after %d failed attempt(s) over %d ms",
                        key[0], key[1], pending.attempts, now_ms - pending.since_ms)

    def forget(self, topic_id: str) -> None:
        """The topic was deleted: stop retrying its partitions."""
        for key in [k for k, p in self.pending.items() if p.topic_id == topic_id]:
            del self.pending[key]

    def due(self) -> list[tuple[tuple[str, int], str]]:
        """(partition, topic id) of every pending partition, in a stable order."""
        return [(key, self.pending[key].topic_id) for key in sorted(self.pending)]
