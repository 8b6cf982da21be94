"""SyncGroup (key 14), versions 0–5: the leader hands out assignments, every member gets its own.

Held until the leader's SyncGroup arrives (see coordinator/membership.py). v3+ carries
group.instance.id; v5+ carries and echoes protocol_type and protocol_name.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.deferred import Deferred
from moldau.coordinator.membership import sync_response
from moldau.security import acls as a


@apis.api(14, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return sync_response(ErrorCode.group_authorization_failed)
    coordinator = core.extensions["group_coordinator"]
    group = coordinator.groups.get(request.group_id)
    member = group.members.get(request.member_id) if group is not None else None
    timeout_ms = member.rebalance_timeout_ms if member is not None else 0
    if group is not None:  # the sync phase ends at the group's deadline, whatever this member's timeout
        timeout_ms = max(timeout_ms, group.rebalance_deadline_ms - ctx.now_ms)
    deferred = Deferred(core, ctx, timeout_ms, sync_response(ErrorCode.rebalance_in_progress))
    assignments = {a.member_id: bytes(a.assignment) for a in request.assignments}
    coordinator.sync_group(request.group_id, request.generation_id, request.member_id,
                           getattr(request, "group_instance_id", None), getattr(request, "protocol_type", None),
                           getattr(request, "protocol_name", None), assignments, deferred.respond, ctx.now_ms)
    return deferred.outcome()
