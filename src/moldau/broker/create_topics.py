"""CreateTopics (key 19), versions 2–7 (Kafka 4's floor is 2).

Each topic is validated and committed on its own, so one bad topic does not fail the rest.
-1 partitions or replication factor take the broker defaults (num.partitions,
default.replication.factor). v5+ report the effective configs, partition count and
replication factor of a created topic, v7 its topic id; validate_only checks and creates
nothing.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller.configs import effective_topic_configs, topic_config_value
from moldau.controller.controller import ControllerError
from moldau.security import acls as acl


@apis.api(19, 2, 7)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    results = []
    seen: set[str] = set()
    # CREATE on the cluster allows every topic; otherwise CREATE on each topic (Kafka's order).
    cluster_create = core.authorize(ctx, acl.CREATE, acl.CLUSTER, acl.CLUSTER_NAME)
    for topic in request.topics:
        if topic.name in seen:
            results.append(_error(topic.name, ErrorCode.invalid_request, f"Duplicate topic name {topic.name}"))
            continue
        seen.add(topic.name)
        if not cluster_create and not core.authorize(ctx, acl.CREATE, acl.TOPIC, topic.name):
            results.append(_error(topic.name, ErrorCode.topic_authorization_failed, "Authorization failed."))
            continue
        result = _create(core, topic, request.validate_only)
        if result["error_code"] == 0 and not core.authorize(ctx, acl.DESCRIBE_CONFIGS, acl.TOPIC, topic.name):
            # created, but the caller may not see its configs (Kafka: topic_config_error_code)
            result.update(topic_config_error_code=ErrorCode.topic_authorization_failed, configs=None,
                          num_partitions=-1, replication_factor=-1)
        results.append(result)
    return {"throttle_time": 0, "topics": results}


def _create(core, topic, validate_only: bool) -> dict:
    configs = {c.name: c.value for c in topic.configs}
    assignments = {a.partition_index: list(a.broker_ids) for a in topic.assignments} or None
    if assignments and (topic.num_partitions != -1 or topic.replication_factor != -1):
        return _error(topic.name, ErrorCode.invalid_request,
                      "Both numPartitions or replicationFactor and replicasAssignments were set.")
    try:
        core.controller.create_topic(
            topic.name, topic.num_partitions, topic.replication_factor, configs, assignments, validate_only
        )
    except ControllerError as error:
        return _error(topic.name, error.error_code, str(error))
    return _created(core, topic, configs, validate_only)


def _created(core, topic, configs, validate_only: bool) -> dict:
    image = core.image.topic(topic.name)
    broker, sources = core.broker_config_values(), core.broker_config_sources()
    overrides = {k: v for k, v in configs.items() if v is not None}
    if validate_only or image is None:
        partitions = topic.num_partitions if topic.num_partitions != -1 else core.config.num_partitions
        factor = topic.replication_factor if topic.replication_factor != -1 else core.config.default_replication_factor
        topic_id = "00000000-0000-0000-0000-000000000000"
    else:
        partitions = len(image.partitions)
        factor = len(image.partitions[0].replicas)
        topic_id = image.topic_id
    described = []
    for name, value in sorted(effective_topic_configs(overrides, broker).items()):
        _value, source = topic_config_value(name, overrides, broker, sources)
        described.append({"name": name, "value": value, "read_only": False, "config_source": source, "is_sensitive": False})
    return {"name": topic.name, "topic_id": topic_id, "error_code": 0, "error_message": None,
            "topic_config_error_code": 0, "num_partitions": partitions, "replication_factor": factor,
            "configs": described}


def _error(name: str, code: ErrorCode, message: str) -> dict:
    return {"name": name, "topic_id": "00000000-0000-0000-0000-000000000000", "error_code": code,
            "error_message": message, "topic_config_error_code": 0, "num_partitions": -1,
            "replication_factor": -1, "configs": None}
