"""The table of Kafka APIs this broker serves: one entry per handler module.

Each handler module in broker/ declares its API with `@api(key, min_version, max_version)`.
ApiVersions is built from this table, so the broker never advertises a version that has no
handler. A handler receives the broker core, the request context and the parsed kio request,
and returns either a response description (a dict that `protocol.build` turns into the
version's kio class), a finished response frame (`bytes`, hot paths), or a `Delayed`
operation that completes later (fetch long-poll).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from moldau.protocol.codec import RequestHeader


@dataclass(frozen=True, slots=True)
class ApiEntry:
    key: int
    min_version: int
    max_version: int
    handler: Callable[..., Any]
    # Versions advertised but answered with UNSUPPORTED_VERSION (Produce v0–v2, as Kafka 4).
    advertised_min_version: int
    # Which listeners advertise it in ApiVersions: Kafka's "listeners" of each API's schema
    # (the quorum's and the controller's own RPCs only on controller listeners).
    listeners: frozenset[str] = frozenset({"broker", "controller"})
    # A hand-written parser (payload, body offset, version) -> request, for a hot path whose
    # requests kio would copy (protocol/hot.py); None: kio's reader.
    decoder: Callable[[Any, int, int], Any] | None = None


REGISTRY: dict[int, ApiEntry] = {}
CONTROLLER_ONLY = frozenset({"controller"})


def api(key: int, min_version: int, max_version: int, advertised_min_version: int | None = None,
        listeners: frozenset[str] = frozenset({"broker", "controller"}),
        decoder: Callable[[Any, int, int], Any] | None = None):
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        assert key not in REGISTRY, f"api key {key} registered twice"
        REGISTRY[key] = ApiEntry(
            key, min_version, max_version, handler,
            min_version if advertised_min_version is None else advertised_min_version, listeners,
            decoder,
        )
        return handler

    return register


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    connection_id: int
    client_host: str
    now_ms: int
    # The listener the request came in on and who sent it (security/session.py).
    listener_name: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    principal: str = "User:ANONYMOUS"
    payload: bytes | memoryview = b""  # the whole request (forwarding sends it on as it came)
    forwarded: bool = False  # came from another broker in an Envelope: never forwarded again
    request_bytes: int = 0  # the request's size (producer byte-rate quotas count it)

    @property
    def version(self) -> int:
        return self.header.api_version


class Delayed:
    """An operation that completes later: on `try_complete` returning a response, or at
    `deadline_ms` with `on_expire`. The runtime sets `callback` to receive the response; one
    that completes before its callback is set (inside the same call into the core) keeps its
    response and hands it over the moment the callback is set."""

    __slots__ = ("deadline_ms", "try_complete", "on_expire", "watch", "_callback", "done", "_response", "_held")

    def __init__(self, deadline_ms: int, try_complete: Callable[[int], Any], on_expire: Callable[[int], Any],
                 watch: tuple = (), callback: Callable[[Any], None] | None = None):
        self.deadline_ms = deadline_ms
        self.try_complete = try_complete  # now_ms -> response or None
        self.on_expire = on_expire  # now_ms -> response
        self.watch = watch  # keys (e.g. partition keys) whose appends may complete it
        self._callback = callback
        self.done = False
        self._response: Any = None
        self._held = False  # completed with no callback yet: the response waits in _response

    @property
    def callback(self) -> Callable[[Any], None] | None:
        return self._callback

    @callback.setter
    def callback(self, callback: Callable[[Any], None] | None) -> None:
        self._callback = callback
        if callback is not None and self._held:
            self._held = False
            response, self._response = self._response, None
            callback(response)

    def complete(self, response: Any) -> None:
        if self.done:
            return
        self.done = True
        if self._callback is not None:
            self._callback(response)
        else:
            self._response, self._held = response, True


def map_delayed(inner: Delayed, transform: Callable[[Any], Any]) -> Delayed:
    """A Delayed that completes when `inner` does, with `transform(inner's response)`."""

    def try_complete(now_ms: int) -> Any:
        response = inner.try_complete(now_ms)
        if response is not None:
            inner.done = True
            return transform(response)
        return None

    outer = Delayed(inner.deadline_ms, try_complete, lambda now_ms: transform(inner.on_expire(now_ms)), inner.watch)
    inner.callback = lambda response: outer.complete(transform(response))
    return outer


def throttled_response(ctx: RequestContext, frame: Any, throttle_ms: int, client_throttles_from_version: int) -> Any:
    """A response that carries a quota's throttle time. Clients of newer versions back off by
    themselves (KIP-219: the response leaves at once, the connection is muted); older ones are
    held back by delaying the response itself, as Kafka does."""
    if throttle_ms <= 0 or ctx.version >= client_throttles_from_version:
        return frame
    return Delayed(ctx.now_ms + throttle_ms, lambda now_ms: None, lambda now_ms: frame)
