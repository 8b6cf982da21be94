"""AlterPartition (key 56), versions 2–3: a partition leader asks to change its ISR.

The active controller checks the leader's broker epoch, leader epoch and partition epoch
(FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION when stale), that joining replicas are eligible
(INELIGIBLE_REPLICA: fenced, shutting down, or a stale broker epoch — KIP-903), writes the
PartitionChangeRecord and answers with the partition's state once it is committed.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a
from moldau.controller.controller import ControllerError


@apis.api(56, 2, 3, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # nodes only
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "topics": []}
    controller = core.controller
    if not controller.active:
        return {"throttle_time": 0, "error_code": ErrorCode.not_controller, "topics": []}
    before = controller.written_offset
    topics = []
    for topic in request.topics:
        topic_id = str(topic.topic_id) if getattr(topic, "topic_id", None) else None
        name = getattr(topic, "topic_name", None)
        partitions = [_alter(controller, request, name, topic_id, p, ctx.now_ms) for p in topic.partitions]
        topics.append({"topic_id": topic_id or "00000000-0000-0000-0000-000000000000",
                       "topic_name": name or "", "partitions": partitions})
    response = {"throttle_time": 0, "error_code": ErrorCode.none, "topics": topics}
    if controller.written_offset == before:
        return response
    return core.channel.when_committed(ctx, controller.written_offset, response)


def _alter(controller, request, name, topic_id, data, now_ms: int) -> dict:
    with_epochs = [(b.broker_id, b.broker_epoch) for b in data.new_isr_with_epochs]
    try:
        part = controller.alter_partition(request.broker_id, request.broker_epoch, name, topic_id,
                                          data.partition_index, data.leader_epoch, data.partition_epoch,
                                          with_epochs, data.leader_recovery_state, now_ms)
    except ControllerError as error:
        if error.error_code == ErrorCode.stale_broker_epoch:
            error.error_code = ErrorCode.stale_broker_epoch
        return {"partition_index": data.partition_index, "error_code": error.error_code, "leader_id": -1,
                "leader_epoch": -1, "isr": [], "leader_recovery_state": 0, "partition_epoch": -1}
    return {"partition_index": data.partition_index, "error_code": ErrorCode.none, "leader_id": part.leader,
            "leader_epoch": part.leader_epoch, "isr": list(part.isr),
            "leader_recovery_state": part.leader_recovery_state, "partition_epoch": part.partition_epoch}
