"""DeleteTopics (key 20), versions 1–6: by name, or (v6) by topic id.

The topic's removal is one metadata record; the broker deletes the partition logs when it
applies it. Internal topics (__consumer_offsets) are refused with INVALID_REQUEST so that a
stray tool cannot wipe every group's committed offsets.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.controller import INTERNAL_TOPICS, ControllerError
from moldau.security import acls as a

_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


@apis.api(20, 1, 6)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    if ctx.version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    return {"throttle_time": 0, "responses": [_authorized_delete(core, ctx, name, topic_id) for name, topic_id in wanted]}


def _authorized_delete(core, ctx, name, topic_id) -> dict:
    """DELETE on the topic (a topic named by id also needs DESCRIBE, so that ids do not reveal
    topics); unauthorized: TOPIC_AUTHORIZATION_FAILED, as Kafka."""
    resolved = name
    if name is None and topic_id is not None:
        topic = core.image.topics_by_id.get(str(topic_id))
        resolved = topic.name if topic is not None else None
        if resolved is not None and not core.authorize(ctx, a.DESCRIBE, a.TOPIC, resolved):
            return {"name": None, "topic_id": topic_id, "error_code": ErrorCode.topic_authorization_failed,
                    "error_message": "Authorization failed."}
    if resolved is not None and not core.authorize(ctx, a.DELETE, a.TOPIC, resolved):
        return {"name": name, "topic_id": topic_id or _ZERO_UUID, "error_code": ErrorCode.topic_authorization_failed,
                "error_message": "Authorization failed."}
    return _delete(core, name, topic_id)


def _delete(core, name, topic_id) -> dict:
    if name is None and topic_id is not None:
        topic = core.image.topics_by_id.get(str(topic_id))
        if topic is None:
            return {"name": None, "topic_id": topic_id, "error_code": ErrorCode.unknown_topic_id,
                    "error_message": "This server does not host this topic ID."}
        name = topic.name
    if name in INTERNAL_TOPICS:
        return {"name": name, "topic_id": _ZERO_UUID, "error_code": ErrorCode.invalid_request,
                "error_message": f"Internal topic {name} cannot be deleted"}
    try:
        deleted_id = core.controller.delete_topic(name)
    except ControllerError as error:
        return {"name": name, "topic_id": topic_id or _ZERO_UUID, "error_code": error.error_code, "error_message": str(error)}
    return {"name": name, "topic_id": deleted_id, "error_code": 0, "error_message": None}
