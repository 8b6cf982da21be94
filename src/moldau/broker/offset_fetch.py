"""OffsetFetch (key 9), versions 1–9 (KIP-896's floor): a group's committed offsets.

A partition without a committed offset answers offset -1. v2+ accepts a null topic list
(every partition the group has an offset for) and has a group-level error; v5+ returns the
leader epoch committed with the offset; v7+ `require_stable` (sent by read_committed consumers)
answers UNSTABLE_OFFSET_COMMIT, offset -1, for a partition with a transactional offset commit
whose transaction is not decided yet (the consumer retries); v8+ asks for several groups in
one request; v9 names the member and its epoch, checked for KIP-848 consumer groups
(STALE_MEMBER_EPOCH).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(9, 1, 9)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["group_coordinator"]
    if ctx.version >= 8:
        groups = [_authorized_group(core, ctx, coordinator, g.group_id, g.topics, getattr(g, "member_id", None),
                                    getattr(g, "member_epoch", -1)) for g in request.groups]
        for group in groups:
            _mark_unstable(coordinator, group, request)
        return {"throttle_time": 0, "groups": groups}
    group = _authorized_group(core, ctx, coordinator, request.group_id, request.topics)
    _mark_unstable(coordinator, group, request)
    if ctx.version < 2 and group["error_code"] != ErrorCode.none:
        for topic in group["topics"]:  # v0–v1 have no group-level error: report it per partition
            for partition in topic["partitions"]:
                partition["error_code"] = group["error_code"]
    return {"throttle_time": 0, "topics": group["topics"], "error_code": group["error_code"]}


def _authorized_group(core, ctx, coordinator, group_id: str, request_topics, member_id: str | None = None,
                      member_epoch: int = -1) -> dict:
    """DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED), then DESCRIBE on each topic:
    asked-for topics the principal may not see answer TOPIC_AUTHORIZATION_FAILED, and when all
    committed offsets are asked for they are left out (Kafka)."""
    if not core.authorize(ctx, a.DESCRIBE, a.GROUP, group_id):
        topics = [{"name": t.name, "partitions": [_partition(i, None, ErrorCode.group_authorization_failed)
                                                  for i in t.partition_indexes]} for t in request_topics or ()]
        return {"group_id": group_id, "topics": topics, "error_code": ErrorCode.group_authorization_failed}
    group = _group(coordinator, group_id, request_topics, ctx.now_ms, member_id, member_epoch)
    kept = []
    for topic in group["topics"]:
        if core.authorize(ctx, a.DESCRIBE, a.TOPIC, topic["name"]):
            kept.append(topic)
        elif request_topics is not None:
            for partition in topic["partitions"]:
                partition.update(_partition(partition["partition_index"], None, ErrorCode.topic_authorization_failed))
            kept.append(topic)
    group["topics"] = kept
    return group


def _group(coordinator, group_id: str, request_topics, now_ms: int, member_id: str | None = None,
           member_epoch: int = -1) -> dict:
    wanted = None if request_topics is None else [(t.name, list(t.partition_indexes)) for t in request_topics]
    error, results = coordinator.fetch_offsets(group_id, wanted, now_ms, member_id, member_epoch)
    if error != ErrorCode.none:
        results = [(name, [(i, None) for i in indexes]) for name, indexes in wanted or []]
    topics = [{"name": name, "partitions": [_partition(index, value, error) for index, value in partitions]}
              for name, partitions in results]
    return {"group_id": group_id, "topics": topics, "error_code": error}


def _mark_unstable(coordinator, group: dict, request) -> None:
    """require_stable: a partition whose offset waits for its transaction's marker answers
    UNSTABLE_OFFSET_COMMIT (Kafka's answer; the consumer asks again)."""
    if not getattr(request, "require_stable", False) or group["error_code"] != ErrorCode.none:
        return
    for topic in group["topics"]:
        for partition in topic["partitions"]:
            if partition["error_code"] == ErrorCode.none and coordinator.txn_offsets.has_pending(
                    group["group_id"], topic["name"], partition["partition_index"]):
                partition.update(_partition(partition["partition_index"], None, ErrorCode.unstable_offset_commit))


def _partition(index: int, value, error: ErrorCode) -> dict:
    return {
        "partition_index": index,
        "committed_offset": value.offset if value is not None else -1,
        "committed_leader_epoch": value.leader_epoch if value is not None else -1,
        "metadata": value.metadata if value is not None else "",
        "error_code": error if error != ErrorCode.none else ErrorCode.none,
    }
