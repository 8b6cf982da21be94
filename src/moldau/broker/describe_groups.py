"""DescribeGroups (key 15), versions 0–6: state, protocol and members of groups.

As Kafka: the protocol name and each member's metadata and assignment are shown only when the
group is Stable (they are in flux otherwise); an unknown group is described as Dead with no
members (v6+: with GROUP_ID_NOT_FOUND). v3+ may ask for authorized operations, which are
reported as unknown (-2147483648, Kafka's "not requested") because Moldau has no ACLs.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.state import STABLE
from moldau.security import acls as a

OPERATIONS_NOT_REQUESTED = -2147483648


@apis.api(15, 0, 6)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["group_coordinator"]
    return {"throttle_time": 0, "groups": [_authorized(core, coordinator, g, ctx, request) for g in request.groups]}


def _authorized(core, coordinator, group_id: str, ctx, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE, a.GROUP, group_id):
        return {"error_code": ErrorCode.group_authorization_failed, "error_message": None, "group_id": group_id,
                "group_state": "", "protocol_type": "", "protocol_data": "", "members": [],
                "authorized_operations": OPERATIONS_NOT_REQUESTED}
    result = _describe(coordinator, group_id, ctx)
    if getattr(request, "include_authorized_operations", False) and result["error_code"] == ErrorCode.none:
        result["authorized_operations"] = core.authorized_operations(ctx, a.GROUP, group_id)
    return result


def _describe(coordinator, group_id: str, ctx) -> dict:
    error, group = coordinator.describe_group(group_id, ctx.now_ms)
    result = {"error_code": error, "error_message": None, "group_id": group_id, "group_state": "Dead",
              "protocol_type": "", "protocol_data": "", "members": [],
              "authorized_operations": OPERATIONS_NOT_REQUESTED}
    if error != ErrorCode.none:
        return result
    if group is None:
        if ctx.version >= 6:
            result.update(error_code=ErrorCode.group_id_not_found,
                          error_message=f"Group {group_id} not found.")
        return result
    stable = group.state is STABLE
    result.update(group_state=group.state.value, protocol_type=group.protocol_type or "",
                  protocol_data=(group.protocol_name or "") if stable else "")
    result["members"] = [{
        "member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
        "client_host": m.client_host,
        "member_metadata": m.metadata_for(group.protocol_name) if stable else b"",
        "member_assignment": m.assignment if stable else b"",
    } for m in group.members.values()]
    return result
