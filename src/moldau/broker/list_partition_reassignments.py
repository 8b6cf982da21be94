"""ListPartitionReassignments (key 46), version 0: the replica moves in progress.

Answered from the active controller's view (forwarded there, like Kafka's brokers do): every
partition with adding or removing replicas, or only the named ones (partitions not being
reassigned are left out, as Kafka leaves them out).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a


@apis.api(46, 0, 0)
def handle(core, ctx: apis.RequestContext, request):
    return core.on_controller(ctx, request, _run)


def _run(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None, "topics": []}
    controller = core.controller
    if not controller.active:
        return {"throttle_time": 0, "error_code": ErrorCode.not_controller,
                "error_message": "This node is not the active controller.", "topics": []}
    image = controller.image
    if request.topics is None:
        wanted = [(name, sorted(image.topics_by_name[name].partitions)) for name in sorted(image.topics_by_name)]
    else:
        wanted = [(t.name, list(t.partition_indexes)) for t in request.topics]
    topics = []
    for name, indexes in wanted:
        topic = image.topic(name)
        if topic is None:
            continue
        partitions = [_describe(topic.partitions[i]) for i in indexes
                      if i in topic.partitions and (topic.partitions[i].adding_replicas or topic.partitions[i].removing_replicas)]
        if partitions:
            topics.append({"name": name, "partitions": partitions})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "topics": topics}


def _describe(part) -> dict:
    return {"partition_index": part.partition, "replicas": list(part.replicas),
            "adding_replicas": list(part.adding_replicas), "removing_replicas": list(part.removing_replicas)}
