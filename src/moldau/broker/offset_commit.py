"""OffsetCommit (key 8), versions 2–9 (KIP-896's floor): store a group's consumed positions.

A member commits with its generation_id and member_id (checked against the group: ILLEGAL_
GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS while the group waits
for its assignment); generation -1 with no member commits for a group without members (admin
tools, manual assignment). A member of a KIP-848 consumer group commits with its member epoch
(v9+): STALE_MEMBER_EPOCH / FENCED_MEMBER_EPOCH when it is not the current one. All partitions of one request are written as one batch to the
group's `__consumer_offsets` partition before the answer. v2–v4 carry a retention time, which
Kafka 4 ignores as well; v6+ a leader epoch; v7+ group.instance.id.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.coordinator import OffsetCommit
from moldau.security import acls as a


@apis.api(8, 2, 9)
def handle(core, ctx: apis.RequestContext, request):
    # READ on the group, then READ on each topic (Kafka's table); denied partitions are not committed.
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return _every(request, ErrorCode.group_authorization_failed)
    denied = {t.name for t in request.topics if not core.authorize(ctx, a.READ, a.TOPIC, t.name)}
    commits = [OffsetCommit(topic.name, p.partition_index, p.committed_offset,
                            getattr(p, "committed_leader_epoch", -1), p.committed_metadata)
               for topic in request.topics if topic.name not in denied for p in topic.partitions]
    errors = iter(core.extensions["group_coordinator"].commit_offsets(
        request.group_id, request.generation_id_or_member_epoch, request.member_id,
        getattr(request, "group_instance_id", None), commits, ctx.now_ms, version=ctx.version) if commits else ())
    topics = [{"name": topic.name,
               "partitions": [{"partition_index": p.partition_index,
                               "error_code": ErrorCode.topic_authorization_failed if topic.name in denied else next(errors)}
                              for p in topic.partitions]}
              for topic in request.topics]
    return {"throttle_time": 0, "topics": topics}


def _every(request, code) -> dict:
    return {"throttle_time": 0, "topics": [
        {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": code} for p in t.partitions]}
        for t in request.topics]}
