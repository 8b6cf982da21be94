"""LeaveGroup (key 13), versions 0–5: members leave; the group rebalances without them.

v0–v2 name one member (librdkafka sends only these); v3+ names several, each by member_id
and/or group.instance.id (a static member leaving by instance id, KIP-345), with an error per
member. v5 adds a reason, which is only logged by Kafka and ignored here.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(13, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "members": []}
    coordinator = core.extensions["group_coordinator"]
    if ctx.version < 3:
        _, errors = coordinator.leave_group(request.group_id, [(request.member_id, None)], ctx.now_ms)
        return {"throttle_time": 0, "error_code": errors[0], "members": []}
    identities = [(m.member_id, m.group_instance_id) for m in request.members]
    error, errors = coordinator.leave_group(request.group_id, identities, ctx.now_ms)
    members = [{"member_id": member_id, "group_instance_id": instance_id, "error_code": code}
               for (member_id, instance_id), code in zip(identities, errors)]
    return {"throttle_time": 0, "error_code": error, "members": members}
