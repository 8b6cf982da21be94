"""DescribeGroups (key 15), versions 0–6: state, protocol and members of groups.

As Kafka: the protocol name and each member's metadata and assignment are shown only when the
group is Stable (they are in flux otherwise); an unknown group is described as Dead with no
members (v6+: with GROUP_ID_NOT_FOUND). v3+ may ask for authorized operations, which are
reported as unknown (-2147483648, Kafka's "not requested") because Moldau has no ACLs.
"""

from __future__ import annotations

import struct

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.consumer_group import PROTOCOL_TYPE_CONSUMER, ConsumerGroup
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
    if isinstance(group, ConsumerGroup):
        return _describe_consumer_group(coordinator, group, result)
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


def _describe_consumer_group(coordinator, group: ConsumerGroup, result: dict) -> dict:
    """A KIP-848 group as Kafka's DescribeGroups shows it: protocol type "consumer", the assignor
    as protocol, each member's subscription and assignment in the consumer protocol's encoding."""
    image = coordinator.core.image
    assignor = group.preferred_assignor(coordinator.consumer.settings.assignors[0])
    result.update(group_state=group.state.value, protocol_type=PROTOCOL_TYPE_CONSUMER, protocol_data=assignor)
    result["members"] = [{
        "member_id": m.member_id, "group_instance_id": m.instance_id, "client_id": m.client_id,
        "client_host": m.client_host,
        "member_metadata": _subscription(sorted(coordinator.consumer.subscribed_topic_names(
            ConsumerGroup(group.group_id, members={m.member_id: m}, regexes=group.regexes)))),
        "member_assignment": _assignment(image, m.assigned),
    } for m in group.members.values()]
    return result


def _string(value: str) -> bytes:
    encoded = value.encode("utf-8")
    return struct.pack(">h", len(encoded)) + encoded


def _subscription(topics: list[str]) -> bytes:
    """ConsumerProtocolSubscription v0: topics, no user data."""
    return struct.pack(">hi", 0, len(topics)) + b"".join(_string(t) for t in topics) + struct.pack(">i", -1)


def _assignment(image, assignment) -> bytes:
    """ConsumerProtocolAssignment v0: partitions by topic name, no user data."""
    topics = sorted((image.topics_by_id[t].name, sorted(p)) for t, p in assignment.items() if t in image.topics_by_id)
    body = b"".join(_string(name) + struct.pack(">i", len(parts)) + b"".join(struct.pack(">i", p) for p in parts)
                    for name, parts in topics)
    return struct.pack(">hi", 0, len(topics)) + body + struct.pack(">i", -1)
