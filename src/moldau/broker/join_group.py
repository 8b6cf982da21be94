"""JoinGroup (key 11), versions 2–9 (KIP-896's floor): join a classic group, wait for the rebalance.

The response is held until the join phase ends (see coordinator/membership.py), so the handler
returns a Delayed that the coordinator completes. v4+ members without a member_id get
MEMBER_ID_REQUIRED and a member_id to rejoin with (KIP-394); v5+ carries group.instance.id
(static membership); v7+ echoes protocol_type; v9 tells a static leader that rejoined
without a rebalance to skip computing an assignment.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.deferred import Deferred
from moldau.coordinator.membership import JoinRequest, join_response
from moldau.security import acls as a


@apis.api(11, 2, 9)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return _adapt(ctx.version, join_response(ErrorCode.group_authorization_failed, request.member_id))
    session_timeout_ms = _ms(request.session_timeout)
    rebalance_timeout_ms = _ms(getattr(request, "rebalance_timeout", None))
    if rebalance_timeout_ms < 0:
        rebalance_timeout_ms = session_timeout_ms
    join = JoinRequest(
        group_id=request.group_id, member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.header.client_id or "", client_host="/" + ctx.client_host,
        session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
        protocol_type=request.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
        require_known_member_id=ctx.version >= 4,
    )
    fallback = join_response(ErrorCode.rebalance_in_progress, request.member_id)
    deferred = Deferred(core, ctx, rebalance_timeout_ms + core.config.group_initial_rebalance_delay_ms,
                        fallback, lambda response: _adapt(ctx.version, response))
    core.extensions["group_coordinator"].join_group(join, deferred.respond, ctx.now_ms)
    return deferred.outcome()


def _ms(value) -> int:
    if value is None:
        return -1
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)


def _adapt(version: int, response: dict) -> dict:
    if version < 7 and response["protocol_name"] is None:
        response = {**response, "protocol_name": ""}  # nullable only from v7
    return response
