"""A response the coordinator may give now or later (JoinGroup, SyncGroup held for a rebalance).

The handler passes `Deferred.respond` to the coordinator and returns `Deferred.outcome()`: the
response dict if the coordinator already answered, else an `apis.Delayed` that the
coordinator completes through the same `respond`. The Delayed's deadline is only a backstop:
at the deadline the coordinator's timers run first (which normally answer), and only a request
still unanswered then gets `fallback`.
"""

from __future__ import annotations

from typing import Any, Callable

from moldau.broker import apis

BACKSTOP_SLACK_MS = 5_000


class Deferred:
    def __init__(self, core: Any, ctx: apis.RequestContext, timeout_ms: int, fallback: dict,
                 adapt: Callable[[dict], dict] = lambda response: response):
        self.core = core
        self.ctx = ctx
        self.deadline_ms = ctx.now_ms + max(0, timeout_ms) + BACKSTOP_SLACK_MS
        self.fallback = fallback
        self.adapt = adapt
        self.result: dict | None = None
        self.delayed: apis.Delayed | None = None

    def respond(self, response: dict) -> None:
        if self.delayed is None:
            if self.result is None:
                self.result = self.adapt(response)
        else:
            self.delayed.complete(self.core.finish(self.ctx, self.adapt(response)))

    def outcome(self) -> Any:
        if self.result is not None:
            return self.result
        self.delayed = apis.Delayed(self.deadline_ms, lambda now_ms: None, self._expire)
        return self.delayed

    def _expire(self, now_ms: int) -> Any:
        coordinator = self.core.extensions.get("group_coordinator")
        if coordinator is not None:
            coordinator.tick(now_ms)
        return self.core.finish(self.ctx, self.adapt(self.fallback))
