"""DescribeLogDirs (key 35), versions 1–4: the data directory and each partition's size.

One log dir (the broker's data dir). offset_lag is 0: there are no future (moving) replicas.
v4 adds the directory's total and usable bytes, which the runtime measures (statvfs) and
hands to the core as `disk_usage`.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(35, 1, 4)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "results": []}
    selected = None
    if request.topics is not None:
        selected = {(t.topic, p) for t in request.topics for p in t.partitions}
    by_topic: dict[str, list] = {}
    for (topic, index) in sorted(core.partitions):
        if selected is not None and (topic, index) not in selected:
            continue
        partition = core.partitions[(topic, index)]
        by_topic.setdefault(topic, []).append(
            {"partition_index": index, "partition_size": partition.log.size_bytes, "offset_lag": 0, "is_future_key": False}
        )
    total, usable = core.disk_usage()
    result = {"error_code": ErrorCode.none, "log_dir": core.config.data_dir,
              "topics": [{"name": t, "partitions": ps} for t, ps in sorted(by_topic.items())],
              "total_bytes": total, "usable_bytes": usable}
    return {"throttle_time": 0, "error_code": 0, "results": [result]}
