"""Metadata (key 3), versions 0–13: brokers, cluster id, controller, topics and partitions.

A null topic list means every topic; an empty list means none. Unknown topics are created
when both the request (v4+) and `auto.create.topics.enable` allow it — Kafka's behaviour
that kcat and console producers rely on. Topics may be named by id (v10+); an unknown id
gives UNKNOWN_TOPIC_ID. Topic ids are stable UUIDs from the metadata image, needed by Fetch
v13+.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.controller import INTERNAL_TOPICS, ControllerError, validate_topic_name
from moldau.security import acls as a

AUTHORIZED_OPERATIONS_OMITTED = -2147483648
# Without an authorizer every operation is allowed: READ, WRITE, CREATE, DELETE, ALTER,
# DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (Kafka's AclOperation codes as bits).
TOPIC_OPERATIONS = sum(1 << code for code in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << code for code in (4, 5, 7, 8, 9, 10, 11, 12))


@apis.api(3, 0, 13)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    brokers = [
        {"node_id": b.broker_id, "host": endpoint[0], "port": endpoint[1], "rack": b.rack}
        for b in sorted(core.image.brokers.values(), key=lambda b: b.broker_id)
        if (endpoint := b.endpoint(ctx.listener_name)) is not None
    ]
    want_ops = getattr(request, "include_topic_authorized_operations", False)
    topics = [topic_metadata(core, name, topic_id, error, want_ops and ctx) for name, topic_id, error in _requested(core, ctx, request)]
    cluster_ops = (core.authorized_operations(ctx, a.CLUSTER, a.CLUSTER_NAME)
                   if getattr(request, "include_cluster_authorized_operations", False) else AUTHORIZED_OPERATIONS_OMITTED)
    return {
        "throttle_time": 0,
        "brokers": brokers,
        "cluster_id": core.image.cluster_id,
        "controller_id": core.node_id,
        "topics": topics,
        "cluster_authorized_operations": cluster_ops,
        "error_code": 0,
    }


def _requested(core, ctx, request) -> list[tuple]:
    """(name, topic_id, error) for each topic the response describes."""
    if request.topics is None or (ctx.version == 0 and not request.topics):
        # every topic the principal may DESCRIBE; the others are left out, as in Kafka
        return [(name, None, ErrorCode.none) for name in sorted(core.image.topics_by_name)
                if core.authorize(ctx, a.DESCRIBE, a.TOPIC, name)]
    allow_create = getattr(request, "allow_auto_topic_creation", True) and core.config.auto_create_topics_enable
    result = []
    for entry in request.topics:
        topic_id = getattr(entry, "topic_id", None)
        # By id: the name is null (kio reads a null name here as ""; the Java consumer asks
        # this way for topics a KIP-848 assignment names only by id).
        if not entry.name and topic_id is not None and str(topic_id) != _ZERO_UUID:
            topic = core.image.topics_by_id.get(str(topic_id))
            if topic is not None and not core.authorize(ctx, a.DESCRIBE, a.TOPIC, topic.name):
                result.append((None, topic_id, ErrorCode.topic_authorization_failed))
                continue
            result.append((topic.name, None, ErrorCode.none) if topic else (None, topic_id, ErrorCode.unknown_topic_id))
            continue
        if not core.authorize(ctx, a.DESCRIBE, a.TOPIC, entry.name):
            result.append((entry.name, None, ErrorCode.topic_authorization_failed))
            continue
        if allow_create and core.image.topic(entry.name) is None and not _may_create(core, ctx, entry.name):
            result.append((entry.name, None, ErrorCode.topic_authorization_failed))
            continue
        result.append((entry.name, None, _ensure_topic(core, entry.name, allow_create)))
    return result


def _may_create(core, ctx, name: str) -> bool:
    """Auto-creation needs CREATE on the cluster or on the topic."""
    return core.authorize(ctx, a.CREATE, a.CLUSTER, a.CLUSTER_NAME) or core.authorize(ctx, a.CREATE, a.TOPIC, name)


def _ensure_topic(core, name: str, allow_create: bool) -> ErrorCode:
    if core.image.topic(name) is not None:
        return ErrorCode.none
    try:
        validate_topic_name(name)
    except ControllerError as error:
        return error.error_code
    if not allow_create or name in INTERNAL_TOPICS:
        return ErrorCode.unknown_topic_or_partition
    try:
        core.controller.create_topic(name)
    except ControllerError as error:
        if error.error_code == ErrorCode.topic_already_exists:
            return ErrorCode.none
        return error.error_code if error.error_code == ErrorCode.invalid_topic_exception else ErrorCode.unknown_topic_or_partition
    return ErrorCode.none


def topic_metadata(core, name, topic_id, error, ctx) -> dict:
    """A topic's metadata; `ctx` (the request) when the client asked for its authorized
    operations on the topic, else falsy."""
    topic = core.image.topic(name) if name is not None else None
    ops = (core.authorized_operations(ctx, a.TOPIC, name) if ctx and name is not None and error == ErrorCode.none
           else AUTHORIZED_OPERATIONS_OMITTED)
    if topic is None or error != ErrorCode.none:
        return {"error_code": error, "name": name, "topic_id": topic_id or _ZERO_UUID, "is_internal": False,
                "partitions": [], "topic_authorized_operations": ops}
    partitions = [
        {
            "error_code": 0 if p.leader >= 0 else ErrorCode.leader_not_available,
            "partition_index": p.partition,
            "leader_id": p.leader,
            "leader_epoch": p.leader_epoch,
            "replica_nodes": list(p.replicas),
            "isr_nodes": list(p.isr),
            "offline_replicas": [b for b in p.replicas if b not in core.image.brokers],
        }
        for _, p in sorted(topic.partitions.items())
    ]
    return {"error_code": 0, "name": topic.name, "topic_id": topic.topic_id, "is_internal": topic.name in INTERNAL_TOPICS,
            "partitions": partitions, "topic_authorized_operations": ops}


_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
