"""A response the transaction coordinator gives now or once a write is replicated.

The handler passes `Reply.respond` to the coordinator and returns `Reply.outcome()`: the
response dict when the coordinator already answered (one node: a write is replicated as it is
appended), else an `apis.Delayed` that `respond` completes later. The Delayed's deadline is a
backstop only (after_replicated answers REQUEST_TIMED_OUT first): a request still unanswered
then gets `fallback`.
"""

from __future__ import annotations

from typing import Any, Callable

from moldau.broker import apis

BACKSTOP_MS = 35_000  # after_replicated's own 30 s timeout, plus slack


class Reply:
    def __init__(self, core: Any, ctx: apis.RequestContext, fallback: dict,
                 adapt: Callable[..., dict] = lambda response: response):
        self.core = core
        self.ctx = ctx
        self.fallback = fallback
        self.adapt = adapt
        self.result: dict | None = None
        self.delayed: apis.Delayed | None = None

    def respond(self, *args: Any) -> None:
        response = self.adapt(*args)
        if self.delayed is None:
            if self.result is None:
                self.result = response
        else:
            self.delayed.complete(self.core.finish(self.ctx, response))

    def outcome(self) -> Any:
        if self.result is not None:
            return self.result
        self.delayed = apis.Delayed(self.ctx.now_ms + BACKSTOP_MS, lambda now_ms: None,
                                    lambda now_ms: self.core.finish(self.ctx, self.fallback))
        return self.delayed
