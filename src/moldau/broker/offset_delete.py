"""OffsetDelete (key 47), version 0: delete committed offsets of some partitions of a group.

Allowed for an Empty group, and for an active consumer group on topics its members do not
subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise); a group with a non-consumer protocol and
members is NON_EMPTY_GROUP. Deleted offsets become tombstones in `__consumer_offsets`.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(47, 0, 0)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.DELETE, a.GROUP, request.group_id):
        return {"error_code": ErrorCode.group_authorization_failed, "throttle_time": 0, "topics": []}
    denied = {t.name for t in request.topics if not core.authorize(ctx, a.READ, a.TOPIC, t.name)}
    wanted = [(t.name, [p.partition_index for p in t.partitions]) for t in request.topics if t.name not in denied]
    error, results = core.extensions["group_coordinator"].delete_offsets(request.group_id, wanted, ctx.now_ms)
    results = list(results) + [(t.name, [(p.partition_index, ErrorCode.topic_authorization_failed) for p in t.partitions])
                               for t in request.topics if t.name in denied]
    topics = [{"name": name, "partitions": [{"partition_index": i, "error_code": code} for i, code in parts]}
              for name, parts in results]
    if error != ErrorCode.none:
        topics = []
    return {"error_code": error, "throttle_time": 0, "topics": topics}
