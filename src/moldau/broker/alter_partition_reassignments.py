"""AlterPartitionReassignments (key 45), versions 0–1: move a partition's replicas.

Kafka's reassignment, run by the active controller (controller/controller.py `reassign`): the
partition's replicas become the target plus the old ones, the new replicas catch up as
followers and join the ISR, and once all of them are in the ISR the old ones are removed (a
PartitionChangeRecord each step; a removed leader hands over to a target replica). A null
replica list cancels a reassignment in progress (NO_REASSIGNMENT_IN_PROGRESS when there is
none). v1's allow_replication_factor_change=false refuses a target of another size
(INVALID_REPLICATION_FACTOR), as Kafka 4.1 does.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.controller import ControllerError
from moldau.security import acls as a


@apis.api(45, 0, 1)
def handle(core, ctx: apis.RequestContext, request):
    return core.on_controller(ctx, request, _run)


def _run(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.ALTER, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                "allow_replication_factor_change": True, "responses": []}
    allow_change = getattr(request, "allow_replication_factor_change", True)
    responses = []
    for topic in request.topics:
        partitions = []
        for partition in topic.partitions:
            code, message = _reassign(core, topic.name, partition, allow_change, ctx.now_ms)
            partitions.append({"partition_index": partition.partition_index, "error_code": code,
                               "error_message": message})
        responses.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None,
            "allow_replication_factor_change": allow_change, "responses": responses}


def _reassign(core, name: str, partition, allow_change: bool, now_ms: int) -> tuple[ErrorCode, str | None]:
    controller = core.controller
    target = list(partition.replicas) if partition.replicas is not None else None
    try:
        if target is not None and not allow_change:
            _topic, current = controller.topic_partition(name, None, partition.partition_index)
            if len(target) != len(current.target_replicas):
                return (ErrorCode.invalid_replication_factor,
                        "The replication factor is changed from "
                        f"{len(current.target_replicas)} to {len(target)} but allowReplicationFactorChange is false")
        controller.reassign(name, partition.partition_index, target, now_ms)
    except ControllerError as error:
        return error.error_code, str(error)
    return ErrorCode.none, None
