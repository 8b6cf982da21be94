"""Heartbeat (key 12), versions 0–4: keep a member's session alive; learn of a rebalance.

Answers REBALANCE_IN_PROGRESS while the group is in its join phase (the member must rejoin),
ILLEGAL_GENERATION for a stale generation, UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID for members
the group no longer knows. v3+ carries group.instance.id.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(12, 0, 4)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    error = core.extensions["group_coordinator"].heartbeat(
        request.group_id, request.generation_id, request.member_id,
        getattr(request, "group_instance_id", None), ctx.now_ms)
    return {"throttle_time": 0, "error_code": error}
