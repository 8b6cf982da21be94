"""DescribeGroups (key 15), versions 0–6: state, protocol and members of groups.

As Kafka: the protocol name and each member's metadata and assignment are shown only when the
group is Stable (they are in flux otherwise); an unknown group is described as Dead with no
members (v6+: with GROUP_ID_NOT_FOUND). v3+ may ask for authorized operations: a group's
operations as Kafka reports them (broker/authorized_operations.py), also for an unknown group.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.broker import authorized_operations as operations
from moldau.coordinator.state import STABLE


@apis.api(15, 0, 6)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["group_coordinator"]
    ops = operations.reported(operations.GROUP, getattr(request, "include_authorized_operations", False))
    return {"throttle_time": 0, "groups": [_describe(coordinator, g, ctx, ops) for g in request.groups]}


def _describe(coordinator, group_id: str, ctx, ops: int) -> dict:
    error, group = coordinator.describe_group(group_id, ctx.now_ms)
    result = {"error_code": error, "error_message": None, "group_id": group_id, "group_state": "Dead",
              "protocol_type": "", "protocol_data": "", "members": [], "authorized_operations": ops}
    if error != ErrorCode.none:
        result["authorized_operations"] = operations.NOT_REQUESTED  # as Kafka: no group, no operations
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
