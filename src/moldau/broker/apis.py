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
    # A hand-written parser (payload, body offset, version) -> request, for a hot path whose
    # requests kio would copy (protocol/hot.py); None: kio's reader.
    decoder: Callable[[Any, int, int], Any] | None = None


REGISTRY: dict[int, ApiEntry] = {}


def api(key: int, min_version: int, max_version: int, advertised_min_version: int | None = None,
        decoder: Callable[[Any, int, int], Any] | None = None):
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        assert key not in REGISTRY, f"api key {key} registered twice"
        REGISTRY[key] = ApiEntry(
            key, min_version, max_version, handler,
            min_version if advertised_min_version is None else advertised_min_version, decoder,
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
    request_bytes: int = 0  # the request's size (producer byte-rate quotas count it)

    @property
    def version(self) -> int:
        return self.header.api_version


@dataclass(slots=True, eq=False)  # identity: the runtime keys pending operations by object
class Delayed:
    """An operation that completes later: on `try_complete` returning a response, or at
    `deadline_ms` with `on_expire`. The runtime sets `callback` to receive the response."""

    deadline_ms: int
    try_complete: Callable[[int], Any]  # now_ms -> response or None
    on_expire: Callable[[int], Any]  # now_ms -> response
    watch: tuple = ()  # keys (e.g. partition keys) whose appends may complete it
    callback: Callable[[Any], None] | None = None
    done: bool = field(default=False)

    def complete(self, response: Any) -> None:
        if self.done:
            return
        self.done = True
        if self.callback is not None:
            self.callback(response)


def throttled_response(ctx: RequestContext, frame: Any, throttle_ms: int, client_throttles_from_version: int) -> Any:
    """A response that carries a quota's throttle time. Clients of newer versions back off by
    themselves (KIP-219: the response leaves at once, the connection is muted); older ones are
    held back by delaying the response itself, as Kafka does."""
    if throttle_ms <= 0 or ctx.version >= client_throttles_from_version:
        return frame
    return Delayed(ctx.now_ms + throttle_ms, lambda now_ms: None, lambda now_ms: frame)
