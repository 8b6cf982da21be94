"""OffsetCommit (key 8), versions 2–9 (KIP-896's floor): store a group's consumed positions.

A member commits with its generation_id and member_id (checked against the group: ILLEGAL_
GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS while the group waits
for its assignment); generation -1 with no member commits for a group without members (admin
tools, manual assignment). All partitions of one request are written as one batch to the
group's `__consumer_offsets` partition before the answer. v2–v4 carry a retention time, which
Kafka 4 ignores as well; v6+ a leader epoch; v7+ group.instance.id.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.coordinator import OffsetCommit
from moldau.coordinator.deferred import Deferred

REPLICATION_TIMEOUT_MS = 30_000  # core.after_replicated's default: it answers first


@apis.api(8, 2, 9)
def handle(core, ctx: apis.RequestContext, request):
    commits = [OffsetCommit(topic.name, p.partition_index, p.committed_offset,
                            getattr(p, "committed_leader_epoch", -1), p.committed_metadata)
               for topic in request.topics for p in topic.partitions]

    def response(errors: list) -> dict:
        codes = iter(errors)
        topics = [{"name": topic.name,
                   "partitions": [{"partition_index": p.partition_index, "error_code": next(codes)}
                                  for p in topic.partitions]}
                  for topic in request.topics]
        return {"throttle_time": 0, "topics": topics}

    # Answered once the commit is on every in-sync replica of the offsets partition.
    deferred = Deferred(core, ctx, REPLICATION_TIMEOUT_MS, response([ErrorCode.request_timed_out] * len(commits)))
    errors = core.extensions["group_coordinator"].commit_offsets(
        request.group_id, request.generation_id_or_member_epoch, request.member_id,
        getattr(request, "group_instance_id", None), commits, ctx.now_ms,
        lambda later: deferred.respond(response(later)))
    if errors is not None:
        return response(errors)
    return deferred.outcome()
