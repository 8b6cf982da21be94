"""DeleteGroups (key 42), versions 0–2: delete groups without members and their offsets.

A group with members is NON_EMPTY_GROUP; an unknown one GROUP_ID_NOT_FOUND. Deleting writes
tombstones for the group's metadata and every committed offset, which compaction removes after
delete.retention.ms.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(42, 0, 2)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["group_coordinator"]
    results = [{"group_id": g, "error_code": coordinator.delete_group(g, ctx.now_ms)
                if core.authorize(ctx, a.DELETE, a.GROUP, g) else ErrorCode.group_authorization_failed}
               for g in request.groups_names]
    return {"throttle_time": 0, "results": results}
