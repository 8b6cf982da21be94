"""How well the event loop keeps up: lag, garbage-collection pauses, tick and disk-write times.

Theory of operation. A Moldau node runs every request on one event-loop thread, so anything
that holds the thread — a long tick, a garbage collection, a write(2) the kernel makes wait —
delays every connection at once, and a client sees a stall while the process looks idle or
busy depending on the cause. This module measures each candidate where it happens, cheaply
enough to stay on in production:

- **lag**: a heartbeat timer due every `HEARTBEAT_S`; how late it fires is the time the loop
  could not run callbacks (the longest wait any ready connection had, to within the interval);
- **GC pauses**: `gc.callbacks` time each collection, by generation (CPython stops the thread);
- **ticks**: the runtime times each periodic `core.tick` (retention, compaction, flushes);
- **disk writes and fsyncs**: runtime/disk.py times each segment append (`os.writev`) and each
  fsync (segments, indexes, checkpoints, directories); a write the kernel makes wait (dirty-page
  throttling, a journal commit) or an fsync stops the loop without using CPU.

Each is a histogram of plain ints (one `bisect` per observation) that /metrics turns into a
Prometheus histogram; the heartbeat also logs, at WARNING, a lag over `STALL_LOG_MS` with what
the others saw since the previous heartbeat, and how the loop's thread spent the time: on the
CPU (Python working), waiting for a CPU (the machine is busy with other processes: Linux's
schedstat run-queue time), or neither (blocked in a system call) — so a stall in the log names
its cause. GC and
disk-write figures are per process (several embedded brokers in one process share them).
"""

from __future__ import annotations

import bisect
import gc
import logging
import os
import threading
import time

log = logging.getLogger("moldau.stall")

HEARTBEAT_S = 0.05
STALL_LOG_MS = 250
# Upper bounds in seconds: 0.1 ms to 10 s (the heartbeat's own resolution is ~1 ms).
BUCKETS_S: tuple[float, ...] = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                1.0, 2.5, 5.0, 10.0)
_BUCKETS_NS = tuple(int(b * 1e9) for b in BUCKETS_S)
_LOCK = threading.Lock()


class Histogram:
    """Counts per bucket (not cumulative), the sum, and the largest value and the total since
    the previous `take()`."""

    __slots__ = ("counts", "sum_ns", "max_ns", "_taken_sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * (len(_BUCKETS_NS) + 1)
        self.sum_ns = 0
        self.max_ns = 0
        self._taken_sum_ns = 0

    def observe(self, elapsed_ns: int) -> None:
        self.counts[bisect.bisect_left(_BUCKETS_NS, elapsed_ns)] += 1
        self.sum_ns += elapsed_ns
        if elapsed_ns > self.max_ns:
            self.max_ns = elapsed_ns

    def observe_locked(self, elapsed_ns: int) -> None:
        """observe() from another thread than the loop's."""
        with _LOCK:
            self.observe(elapsed_ns)

    def take(self) -> tuple[int, int]:
        """(largest, total) observed since the previous call."""
        largest, self.max_ns = self.max_ns, 0
        total, self._taken_sum_ns = self.sum_ns - self._taken_sum_ns, self.sum_ns
        return largest, total

    def take_max(self) -> int:
        """The largest value observed since the previous take (and reset it)."""
        return self.take()[0]

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        total, out = 0, []
        for n in self.counts:
            total += n
            out.append(total)
        return out


# Process-wide: the collector is one per interpreter, and so is the disk.
GC_PAUSES: dict[int, Histogram] = {generation: Histogram() for generation in range(3)}
DISK_WRITES = Histogram()
DISK_SYNCS = Histogram()  # fsync of segments, indexes, checkpoints and directories
BACKGROUND_SYNCS = Histogram()  # the same, on the durability worker's thread (runtime/disk.py)
_gc_started_ns = 0
_gc_installed = False


def _on_gc(phase: str, info: dict) -> None:
    global _gc_started_ns
    if phase == "start":
        _gc_started_ns = time.perf_counter_ns()
    elif _gc_started_ns:
        GC_PAUSES[info.get("generation", 2)].observe(time.perf_counter_ns() - _gc_started_ns)
        _gc_started_ns = 0


def install_gc_timer() -> None:
    global _gc_installed
    if not _gc_installed:
        gc.callbacks.append(_on_gc)
        _gc_installed = True


class RunqueueClock:
    """Nanoseconds the thread that made it has spent runnable but waiting for a CPU (0 where
    the kernel does not say: /proc/thread-self/schedstat is Linux's). The file stays open and is
    re-read with pread: opening it at every heartbeat cost more than the heartbeat itself."""

    def __init__(self) -> None:
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            self._fd = -1

    def read(self) -> int:
        if self._fd < 0:
            return 0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LoopHealth:
    """The heartbeat on one event loop, and the tick timer the runtime feeds."""

    def __init__(self, loop, heartbeat_s: float = HEARTBEAT_S, stall_log_ms: int = STALL_LOG_MS):
        self.loop = loop
        self.heartbeat_s = heartbeat_s
        self.stall_log_ns = stall_log_ms * 1_000_000
        self.lag = Histogram()
        self.ticks = Histogram()
        self._due_ns = 0
        self._cpu_ns = 0  # the loop thread's CPU time at the previous heartbeat
        self._runqueue_ns = 0  # and its time waiting for a CPU (Linux schedstat)
        self._runqueue: RunqueueClock | None = None
        self._handle = None

    def start(self) -> None:
        install_gc_timer()
        self._runqueue = RunqueueClock()  # on the loop's thread: it measures this thread
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._runqueue is not None:
            self._runqueue.close()
            self._runqueue = None

    def _schedule(self) -> None:
        self._due_ns = time.perf_counter_ns() + int(self.heartbeat_s * 1e9)
        self._cpu_ns = time.thread_time_ns()
        self._runqueue_ns = self._runqueue.read() if self._runqueue is not None else 0
        self._handle = self.loop.call_later(self.heartbeat_s, self._beat)

    def _beat(self) -> None:
        lag_ns = max(0, time.perf_counter_ns() - self._due_ns)
        self.lag.observe(lag_ns)
        gc_ns = sum(h.take()[1] for h in GC_PAUSES.values())
        (write_max_ns, write_ns), (_, sync_ns) = DISK_WRITES.take(), DISK_SYNCS.take()
        tick_ns = self.ticks.take_max()
        if lag_ns >= self.stall_log_ns:
            # CPU the loop's thread used meanwhile: near the stall's length, Python was working;
            # far below it, the thread waited (a blocking system call, or no core to run on).
            # Waiting for a CPU: the machine was busy with other processes, not this one's fault.
            cpu_ns = time.thread_time_ns() - self._cpu_ns
            runqueue_ns = (self._runqueue.read() if self._runqueue is not None else 0) - self._runqueue_ns
            ms = 1_000_000
            log.warning("event loop stalled for %d ms: %d ms on the CPU, %d ms waiting for a CPU; since the last "
                        "heartbeat: garbage collection %d ms, segment writes %d ms (longest %d ms), fsync %d ms, "
                        "broker tick %d ms", lag_ns // ms, cpu_ns // ms, runqueue_ns // ms, gc_ns // ms,
                        write_ns // ms, write_max_ns // ms, sync_ns // ms, tick_ns // ms)
        self._schedule()

    def timed_tick(self, tick, now_ms: int) -> None:
        began = time.perf_counter_ns()
        try:
            tick(now_ms)
        finally:
            self.ticks.observe(time.perf_counter_ns() - began)
