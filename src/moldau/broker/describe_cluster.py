"""DescribeCluster (key 60), versions 0–1: cluster id, controller and brokers (admin clients)."""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.broker.metadata import AUTHORIZED_OPERATIONS_OMITTED
from moldau.security import acls as a


@apis.api(60, 0, 1)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                "endpoint_type": 1, "cluster_id": "", "controller_id": -1, "brokers": [],
                "cluster_authorized_operations": AUTHORIZED_OPERATIONS_OMITTED}
    brokers = [
        {"broker_id": b.broker_id, "host": endpoint[0], "port": endpoint[1], "rack": b.rack}
        for b in sorted(core.image.brokers.values(), key=lambda b: b.broker_id)
        if (endpoint := b.endpoint(ctx.listener_name)) is not None
    ]
    ops = (core.authorized_operations(ctx, a.CLUSTER, a.CLUSTER_NAME) if request.include_cluster_authorized_operations
           else AUTHORIZED_OPERATIONS_OMITTED)
    return {"throttle_time": 0, "error_code": 0, "error_message": None, "endpoint_type": 1,
            "cluster_id": core.image.cluster_id, "controller_id": core.node_id, "brokers": brokers,
            "cluster_authorized_operations": ops}
