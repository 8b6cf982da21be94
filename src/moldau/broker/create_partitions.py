"""CreatePartitions (key 37), versions 0–3: grow a topic's partition count (never shrink)."""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.controller import ControllerError
from moldau.security import acls as acl


@apis.api(37, 0, 3)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    results = []
    for topic in request.topics:
        if not core.authorize(ctx, acl.ALTER, acl.TOPIC, topic.name):
            results.append({"name": topic.name, "error_code": ErrorCode.topic_authorization_failed, "error_message": None})
            continue
        assignments = [list(a.broker_ids) for a in topic.assignments] if topic.assignments else None
        try:
            core.controller.create_partitions(topic.name, topic.count, assignments, request.validate_only)
        except ControllerError as error:
            results.append({"name": topic.name, "error_code": error.error_code, "error_message": str(error)})
            continue
        results.append({"name": topic.name, "error_code": 0, "error_message": None})
    return {"throttle_time": 0, "results": results}
