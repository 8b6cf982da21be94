"""When each group next needs the coordinator's attention: one timer per deadline, not a scan.

Theory of operation. A group has deadlines — each member's session, a new member's join
timeout, a pending member's, the rebalance (join or sync phase) deadline — and Kafka acts on
each exactly when it passes (clients' tests delete a group right after its last member's
session ended). `DeadlineSchedule` keeps, per group, the earliest of them in a heap. Handlers
do not report every deadline they move: they `touch` the groups they looked at (the
coordinator does it in `group_for`), and `next_deadline_ms` recomputes only the touched ones,
through the `deadline_of` function given to it. A deadline that moved later leaves its old
entry in the heap; when that entry comes due the group is looked at, found not due, and
scheduled at its real deadline — one early wake-up instead of bookkeeping on every heartbeat.

The broker core asks `next_deadline_ms()` after every call and runs `due(now)` at that time
(BrokerCore.next_deadline_ms / run_deadlines), so a session ends within a millisecond or two
of its deadline instead of on the next coarse tick. Work is O(groups touched) per request and
O(log groups) per deadline. Keys are group ids; ordering is by (deadline, group id), so
simulations replay.
"""

from __future__ import annotations

import heapq
from typing import Callable


class DeadlineSchedule:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._scheduled: dict[str, int] = {}  # group id -> the deadline its live heap entry holds
        self._touched: set[str] = set()
        self._last_run_ms = -1

    def touch(self, key: str) -> None:
        """The group may have a new deadline: recompute it before the next timer is armed."""
        self._touched.add(key)

    def next_deadline_ms(self, deadline_of: Callable[[str], int | None]) -> int | None:
        for key in sorted(self._touched):
            deadline = deadline_of(key)
            if deadline is None:
                continue
            # A deadline already passed is due at once, but never again at the time just run:
            # after run_deadlines(now) the next deadline must lie after now.
            deadline = max(deadline, self._last_run_ms + 1)
            scheduled = self._scheduled.get(key)
            if scheduled is None or deadline < scheduled:
                self._scheduled[key] = deadline
                heapq.heappush(self._heap, (deadline, key))
        self._touched.clear()
        while self._heap and self._scheduled.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # superseded by an earlier entry that already ran
        return self._heap[0][0] if self._heap else None

    def due(self, now_ms: int) -> list[str]:
        """Keys whose deadline has come (each is touched again, to be rescheduled)."""
        self._last_run_ms = now_ms
        keys = []
        while self._heap and self._heap[0][0] <= now_ms:
            deadline, key = heapq.heappop(self._heap)
            if self._scheduled.get(key) == deadline:
                del self._scheduled[key]
                keys.append(key)
        self._touched.update(keys)
        return keys
