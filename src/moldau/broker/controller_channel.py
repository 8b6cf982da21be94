"""How requests that change metadata reach the active controller, and wait for their commit.

Theory of operation. Admin requests (CreateTopics, DeleteTopics, CreatePartitions,
AlterConfigs, ElectLeaders, AlterPartitionReassignments, ...) may arrive at any broker; only the
active controller (the metadata quorum's leader) may act on them. Each such handler calls
`on_controller(ctx, request, run)`:

- on the active controller, `run` executes at once (its controller calls append records) and
  the response leaves when the metadata log commits the last record written — a Delayed that
  `commit_advanced` completes; if leadership is lost first, every success in the response turns
  into NOT_CONTROLLER, so the client retries (the records may or may not have committed, as in
  Kafka);
- elsewhere the request is forwarded whole to the active controller in an Envelope (API 58,
  Kafka's forwarding), retried when the controller moves or the connection fails, and the
  controller's answer goes back to the client as it came;
- when no controller can be reached before the request's deadline, `run` executes here, where
  every controller operation answers NOT_CONTROLLER, so the client gets a per-item error.

A forwarded request executes on the controller like a local one, except that it is never
forwarded again (a controller that lost leadership answers NOT_CONTROLLER in the Envelope).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Callable

from kio.schema.envelope.v0 import request as envelope_request
from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.protocol.rpc import CONTROLLER, FORWARDING_CHANNEL, OutboundRequest

log = logging.getLogger("moldau.broker")

FORWARD_TIMEOUT_MS = 30_000
FORWARD_RETRY_BACKOFF_MS = 100
COMMIT_TIMEOUT_MS = 30_000

Run = Callable[[Any, apis.RequestContext, Any], Any]


def fail_all(response: Any, code: ErrorCode) -> Any:
    """The response with every successful error_code replaced by `code` (nested too)."""
    if isinstance(response, dict):
        out = {k: fail_all(v, code) for k, v in response.items()}
        if "error_code" in out and out["error_code"] in (0, ErrorCode.none):
            out["error_code"] = code
            if "error_message" in out:
                out["error_message"] = "The controller changed before the change was committed; retry."
        return out
    if isinstance(response, list):
        return [fail_all(item, code) for item in response]
    return response


class ControllerChannel:
    def __init__(self, core: Any):
        self.core = core
        # (offset, raft epoch, callback(committed: bool)) waiting for the metadata log's commit
        self.commit_waiters: list[tuple[int, int, Callable[[bool], None]]] = []
        self.retries: list[tuple[int, Callable[[int], None]]] = []  # (when, attempt)

    # --- running on the controller --------------------------------------------------------
    def on_controller(self, ctx: apis.RequestContext, request: Any, run: Run) -> Any:
        core = self.core
        controller = core.controller
        if controller.active:
            before = controller.written_offset
            response = run(core, ctx, request)
            if controller.written_offset == before:
                return response
            return self.when_committed(ctx, controller.written_offset, response)
        if getattr(ctx, "forwarded", False):
            return run(core, ctx, request)  # every controller call answers NOT_CONTROLLER
        # Elsewhere, or here before the controller is active (just elected, still replaying):
        # forwarded once there is an active controller, until the request's deadline.
        return self.forward(ctx, request, run)

    def when_committed(self, ctx: apis.RequestContext, offset: int, response: Any) -> Any:
        core = self.core
        if core.raft.high_watermark > offset:
            return response

        def on_expire(now_ms: int) -> Any:
            return core.finish(ctx, fail_all(response, ErrorCode.request_timed_out))

        delayed = apis.Delayed(core.now_ms + COMMIT_TIMEOUT_MS, lambda now_ms: None, on_expire)

        def committed(ok: bool) -> None:
            delayed.complete(core.finish(ctx, response if ok else fail_all(response, ErrorCode.not_controller)))

        self.wait_for_commit(offset, committed)
        return delayed

    def wait_for_commit(self, offset: int, callback: Callable[[bool], None]) -> None:
        raft = self.core.raft
        if raft.high_watermark > offset:
            callback(True)
        else:
            self.commit_waiters.append((offset, raft.epoch, callback))

    def commit_advanced(self) -> None:
        """Complete the waiters whose records committed; fail those of a lost leadership."""
        if not self.commit_waiters:
            return
        raft = self.core.raft
        still, done = [], []
        for offset, epoch, callback in self.commit_waiters:
            if raft.epoch != epoch or not self.core.controller.active:
                done.append((callback, False))
            elif raft.high_watermark > offset:
                done.append((callback, True))
            else:
                still.append((offset, epoch, callback))
        self.commit_waiters = still
        for callback, ok in done:
            callback(ok)

    # --- forwarding -------------------------------------------------------------------------
    def forward(self, ctx: apis.RequestContext, request: Any, run: Run) -> apis.Delayed:
        core = self.core
        deadline_ms = core.now_ms + FORWARD_TIMEOUT_MS

        def on_expire(now_ms: int) -> Any:
            return core.finish(ctx, run(core, ctx, request))

        delayed = apis.Delayed(deadline_ms, lambda now_ms: None, on_expire)
        body = envelope_request.EnvelopeRequest(
            request_data=bytes(ctx.payload), request_principal=ctx.principal.encode(),
            client_host_address=_address_bytes(ctx.client_host))

        def attempt(now_ms: int) -> None:
            if delayed.done:
                return
            controller = core.controller_id()
            if controller < 0 or controller == core.node_id and not core.controller.active:
                self.retry_at(now_ms + FORWARD_RETRY_BACKOFF_MS, attempt)
                return
            timeout_ms = min(core.config.controller_socket_timeout_ms, max(1, deadline_ms - core.now_ms))
            core.send(OutboundRequest(controller, CONTROLLER, 58, 0, body, timeout_ms, answered,
                                      channel=FORWARDING_CHANNEL))

        def answered(response: Any, now_ms: int) -> None:
            if delayed.done:
                return
            if response is not None and response.error_code == ErrorCode.none and response.response_data:
                data = response.response_data
                delayed.complete(len(data).to_bytes(4, "big") + data)
            elif now_ms + FORWARD_RETRY_BACKOFF_MS < deadline_ms:
                self.retry_at(now_ms + FORWARD_RETRY_BACKOFF_MS, attempt)

        attempt(core.now_ms)
        return delayed

    def retry_at(self, when_ms: int, attempt: Callable[[int], None]) -> None:
        self.retries.append((when_ms, attempt))

    def next_deadline_ms(self) -> int | None:
        return min(when for when, _ in self.retries) if self.retries else None

    def run_deadlines(self, now_ms: int) -> None:
        due = [attempt for when, attempt in self.retries if when <= now_ms]
        self.retries = [(when, attempt) for when, attempt in self.retries if when > now_ms]
        for attempt in due:
            attempt(now_ms)


def _address_bytes(host: str) -> bytes:
    try:
        return ipaddress.ip_address(host).packed
    except ValueError:
        return b"\x7f\x00\x00\x01"
