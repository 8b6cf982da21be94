"""ConsumerGroupDescribe (key 69), versions 0–1: members, epochs and assignments of KIP-848 groups.

For each group: its state, group epoch, target assignment epoch and assignor, and per member
its epoch, client, subscription, current assignment and target assignment (topic ids and
names). A classic group or an unknown one answers GROUP_ID_NOT_FOUND (admin clients then fall
back to DescribeGroups for classic groups). v1 adds each member's type (1: consumer protocol).
DESCRIBE on the group is required (GROUP_AUTHORIZATION_FAILED); authorized operations are
given when asked for.
"""

from __future__ import annotations

import uuid

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.security import acls as a

OPERATIONS_NOT_REQUESTED = -2147483648
MEMBER_TYPE_CONSUMER = 1


@apis.api(69, 0, 1)
def handle(core, ctx: apis.RequestContext, request):
    consumer = core.extensions["consumer_group_coordinator"]
    return {"throttle_time": 0, "groups": [_authorized(core, ctx, consumer, g, request.include_authorized_operations)
                                           for g in request.group_ids]}


def _authorized(core, ctx, consumer, group_id: str, include_operations: bool) -> dict:
    """DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED), then the description."""
    if not core.authorize(ctx, a.DESCRIBE, a.GROUP, group_id):
        return {**_empty(group_id), "error_code": ErrorCode.group_authorization_failed}
    result = _describe(core, consumer, group_id, ctx.now_ms)
    if include_operations and result["error_code"] == ErrorCode.none:
        result["authorized_operations"] = core.authorized_operations(ctx, a.GROUP, group_id)
    return result


def _empty(group_id: str) -> dict:
    return {"error_code": ErrorCode.none, "error_message": None, "group_id": group_id, "group_state": "",
            "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "", "members": [],
            "authorized_operations": OPERATIONS_NOT_REQUESTED}


def _describe(core, consumer, group_id: str, now_ms: int) -> dict:
    result = _empty(group_id)
    try:
        group = consumer.group_for(group_id, now_ms)
    except CoordinatorError as error:
        result["error_code"] = error.error_code
        return result
    if group is None:
        classic = consumer.classic.groups.get(group_id)
        message = f"Group {group_id} is not a consumer group." if classic is not None else f"Group {group_id} not found."
        result.update(error_code=ErrorCode.group_id_not_found, error_message=message)
        return result
    result.update(group_state=group.state.value, group_epoch=group.group_epoch,
                  assignment_epoch=group.target_assignment_epoch,
                  assignor_name=group.preferred_assignor(consumer.settings.assignors[0]))
    result["members"] = [{
        "member_id": m.member_id, "instance_id": m.instance_id, "rack_id": m.rack_id,
        "member_epoch": m.member_epoch, "client_id": m.client_id, "client_host": m.client_host,
        "subscribed_topic_names": list(m.subscribed_topic_names), "subscribed_topic_regex": m.subscribed_topic_regex,
        "assignment": _assignment(core, m.assigned),
        "target_assignment": _assignment(core, group.target.get(m.member_id, {})),
        "member_type": MEMBER_TYPE_CONSUMER,
    } for m in group.members.values()]
    return result


def _assignment(core, assignment) -> dict:
    topics = []
    for topic_id in sorted(assignment):
        image = core.image.topics_by_id.get(topic_id)
        topics.append({"topic_id": uuid.UUID(topic_id), "topic_name": image.name if image is not None else "",
                       "partitions": sorted(assignment[topic_id])})
    return {"topic_partitions": topics}
