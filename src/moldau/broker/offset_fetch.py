"""OffsetFetch (key 9), versions 1–9 (KIP-896's floor): a group's committed offsets.

A partition without a committed offset answers offset -1. v2+ accepts a null topic list
(every partition the group has an offset for) and has a group-level error; v5+ returns the
leader epoch committed with the offset; v7+ `require_stable` (sent by read_committed consumers)
answers UNSTABLE_OFFSET_COMMIT, offset -1, for a partition with a transactional offset commit
whose transaction is not decided yet (the consumer retries); v8+ asks for several groups in
one request.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis


@apis.api(9, 1, 9)
def handle(core, ctx: apis.RequestContext, request):
    coordinator = core.extensions["group_coordinator"]
    if ctx.version >= 8:
        stable = getattr(request, "require_stable", False)
        groups = [_group(coordinator, g.group_id, g.topics, ctx.now_ms, stable) for g in request.groups]
        return {"throttle_time": 0, "groups": groups}
    group = _group(coordinator, request.group_id, request.topics, ctx.now_ms, getattr(request, "require_stable", False))
    if ctx.version < 2 and group["error_code"] != ErrorCode.none:
        for topic in group["topics"]:  # v0–v1 have no group-level error: report it per partition
            for partition in topic["partitions"]:
                partition["error_code"] = group["error_code"]
    return {"throttle_time": 0, "topics": group["topics"], "error_code": group["error_code"]}


def _group(coordinator, group_id: str, request_topics, now_ms: int, require_stable: bool) -> dict:
    wanted = None if request_topics is None else [(t.name, list(t.partition_indexes)) for t in request_topics]
    error, results = coordinator.fetch_offsets(group_id, wanted, now_ms)
    if error != ErrorCode.none:
        results = [(name, [(i, None) for i in indexes]) for name, indexes in wanted or []]
    topics = [{"name": name, "partitions": [_partition(index, value, error) for index, value in partitions]}
              for name, partitions in results]
    if require_stable and error == ErrorCode.none:
        for topic in topics:
            for partition in topic["partitions"]:
                if coordinator.txn_offsets.has_pending(group_id, topic["name"], partition["partition_index"]):
                    partition.update(committed_offset=-1, committed_leader_epoch=-1, metadata="",
                                     error_code=ErrorCode.unstable_offset_commit)
    return {"group_id": group_id, "topics": topics, "error_code": error}


def _partition(index: int, value, error: ErrorCode) -> dict:
    return {
        "partition_index": index,
        "committed_offset": value.offset if value is not None else -1,
        "committed_leader_epoch": value.leader_epoch if value is not None else -1,
        "metadata": value.metadata if value is not None else "",
        "error_code": error if error != ErrorCode.none else ErrorCode.none,
    }
