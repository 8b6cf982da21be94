"""ListPartitionReassignments (key 46), version 0: the replica moves in progress.

A reassignment moves a partition's replicas between brokers (AlterPartitionReassignments, the
cluster's job). A single node has nowhere to move a replica, so none is ever in progress and the
honest answer is an empty list — for all partitions (topics null) and for named ones alike, as
Kafka leaves out partitions that are not being reassigned. Unknown topics are left out too
(Kafka answers them the same way).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(46, 0, 0)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None, "topics": []}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "topics": []}
