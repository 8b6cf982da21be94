"""DescribeConfigs (key 32), versions 1–4: topic and broker configs with their sources.

Topic configs list every topic config with its effective value and where it came from
(topic override, broker setting, default); with include_synonyms, the chain of values that
could apply, highest precedence first, as Kafka. Broker configs list the server.properties
keys this broker applies, under this broker's dynamic configs and the cluster-wide dynamic
default; the default entity (empty name, `kafka-configs --entity-default`) lists only the
cluster-wide dynamic defaults, as Kafka. Group configs (resource type 32, KIP-848's
consumer.session.timeout.ms and consumer.heartbeat.interval.ms) show a group's overrides over
the broker's group.consumer.* settings.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import broker_configs
from moldau.controller import configs as c
from moldau.coordinator.consumer_config import GROUP_CONFIG_KEYS, SOURCE_GROUP, TYPE_GROUP
from moldau.security import acls as a


@apis.api(32, 1, 4)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    results = []
    for resource in request.resources:
        keys = set(resource.configuration_keys) if resource.configuration_keys is not None else None
        denied = _denied(core, ctx, resource.resource_type, resource.resource_name, a.DESCRIBE_CONFIGS)
        if denied is not None:
            result = _error(denied, None)
        elif resource.resource_type == c.TYPE_TOPIC:
            result = _topic(core, resource.resource_name, keys, request.include_synonyms)
        elif resource.resource_type == c.TYPE_BROKER:
            result = _broker(core, resource.resource_name, keys, request.include_synonyms)
        elif resource.resource_type == TYPE_GROUP:
            result = _group(core, resource.resource_name, keys, request.include_synonyms)
        else:
            result = _error(ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}")
        result.update(resource_type=resource.resource_type, resource_name=resource.resource_name)
        results.append(result)
    return {"throttle_time": 0, "results": results}


def _denied(core, ctx, resource_type: int, name: str, operation: int):
    """The authorization error for a config resource (Kafka: topics by name, brokers as the
    cluster), or None when allowed."""
    if resource_type == c.TYPE_TOPIC and not core.authorize(ctx, operation, a.TOPIC, name):
        return ErrorCode.topic_authorization_failed
    if resource_type == c.TYPE_BROKER and not core.authorize(ctx, operation, a.CLUSTER, a.CLUSTER_NAME):
        return ErrorCode.cluster_authorization_failed
    if resource_type == TYPE_GROUP and not core.authorize(ctx, operation, a.GROUP, name):
        return ErrorCode.group_authorization_failed
    return None


def _group(core, name: str, keys, include_synonyms: bool) -> dict:
    """A consumer group's configs (KIP-848): its overrides, else the broker's group.consumer.*
    value (Kafka lists those as defaults). Groups need not exist to carry configs."""
    if not name:
        return _error(ErrorCode.invalid_request, "Group name must not be empty.")
    overrides = core.image.configs.get((TYPE_GROUP, name), {})
    defaults = core.extensions["consumer_group_coordinator"].settings.defaults()
    entries = []
    for config_name in GROUP_CONFIG_KEYS:
        if keys is not None and config_name not in keys:
            continue
        chain = []
        if config_name in overrides:
            chain.append({"name": config_name, "value": overrides[config_name], "source": SOURCE_GROUP})
        chain.append({"name": f"group.{config_name}", "value": defaults[config_name], "source": c.SOURCE_DEFAULT})
        entries.append(_entry(config_name, chain[0]["value"], chain[0]["source"], "int",
                              chain if include_synonyms else [], ""))
    return {"error_code": 0, "error_message": None, "configs": entries}


def _topic(core, name: str, keys, include_synonyms: bool) -> dict:
    if core.image.topic(name) is None:
        return _error(ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist.")
    overrides = core.image.topic_configs(name)
    broker, sources, layers = core.broker_config_values(), core.broker_config_sources(), core.broker_config_layers()
    entries = []
    for config_name, definition in sorted(c.TOPIC_CONFIGS.items()):
        if keys is not None and config_name not in keys:
            continue
        value, source = c.topic_config_value(config_name, overrides, broker, sources)
        synonyms = _synonyms(config_name, definition, overrides, layers) if include_synonyms else []
        entries.append(_entry(config_name, value, source, definition.kind, synonyms, definition.documentation))
    return {"error_code": 0, "error_message": None, "configs": entries}


def _synonyms(name, definition, overrides, layers) -> list[dict]:
    """Every value that could apply to a topic config, highest precedence first."""
    chain = []
    if name in overrides:
        chain.append({"name": name, "value": overrides[name], "source": c.SOURCE_TOPIC})
    if definition.broker_key:
        chain += _broker_synonyms(definition.broker_key, layers, definition.default)
    return chain


def _broker_synonyms(key: str, layers, default: str | None) -> list[dict]:
    chain = [{"name": key, "value": values[key], "source": source} for source, values in layers if key in values]
    if default is not None:
        chain.append({"name": key, "value": default, "source": c.SOURCE_DEFAULT})
    return chain


def _broker(core, name: str, keys, include_synonyms: bool = False) -> dict:
    if name not in ("", str(core.node_id)):
        return _error(ErrorCode.invalid_request, f"Broker {name} is not this broker ({core.node_id})")
    if name == "":  # the default entity: only what was set cluster-wide
        defaults = core.image.configs.get((c.TYPE_BROKER, ""), {})
        return {"error_code": 0, "error_message": None, "configs": [
            _broker_entry(key, defaults[key], c.SOURCE_DYNAMIC_DEFAULT_BROKER,
                          [{"name": key, "value": defaults[key], "source": c.SOURCE_DYNAMIC_DEFAULT_BROKER}]
                          if include_synonyms else [])
            for key in sorted(defaults) if keys is None or key in keys]}
    config = core.config
    static = {
        "node.id": str(config.node_id),
        "broker.id": str(config.node_id),
        "listeners": ",".join(map(str, config.listeners)),
        "advertised.listeners": ",".join(str(l) for l in config.advertised_listeners
                                         if l.name not in config.controller_listener_names),
        "listener.security.protocol.map": ",".join(
            f"{name}:{protocol}" for name, protocol in config.listener_settings.protocol_map.items()),
        "inter.broker.listener.name": config.inter_broker_listener_name,
        "log.dirs": config.data_dir,
        "num.partitions": str(config.num_partitions),
        "default.replication.factor": str(config.default_replication_factor),
        "auto.create.topics.enable": str(config.auto_create_topics_enable).lower(),
        "delete.topic.enable": str(config.delete_topic_enable).lower(),
        "socket.request.max.bytes": str(config.socket_request_max_bytes),
        "offsets.topic.num.partitions": str(config.offsets_topic_num_partitions),
    }
    if config.metrics_port is not None:  # how `moldau console` finds this node's /metrics
        static["metrics.port"] = str(config.metrics_port)
    kafka_defaults = {}
    for definition in c.TOPIC_CONFIGS.values():
        if definition.broker_key and definition.default is not None:
            static.setdefault(definition.broker_key, definition.default)
            kafka_defaults[definition.broker_key] = definition.default
    static.update(config.log_defaults)
    layers = core.broker_config_layers()
    entries = []
    for config_name in sorted(set(static).union(*(values for _, values in layers))):
        if keys is not None and config_name not in keys:
            continue
        chain = _broker_synonyms(config_name, layers, kafka_defaults.get(config_name))
        if chain:
            value, source = chain[0]["value"], chain[0]["source"]
        else:
            value, source = static[config_name], c.SOURCE_DEFAULT
        entries.append(_broker_entry(config_name, value, source, chain if include_synonyms else []))
    return {"error_code": 0, "error_message": None, "configs": entries}


def _broker_entry(name, value, source, synonyms) -> dict:
    """A broker key with Kafka's type, read-only flag (not dynamically updatable) and
    sensitivity (passwords are never shown)."""
    sensitive = broker_configs.is_sensitive(name)
    entry = _entry(name, None if sensitive else value, source, "string", synonyms, "")
    entry.update(config_type=broker_configs.config_type(name) or entry["config_type"], is_sensitive=sensitive,
                 read_only=broker_configs.is_read_only(name))
    if sensitive:
        entry["synonyms"] = [dict(synonym, value=None) for synonym in synonyms]
    return entry


_TYPE_IDS = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5, "double": 6, "list": 7, "class": 8, "password": 9}


def _entry(name, value, source, kind, synonyms, documentation) -> dict:
    return {"name": name, "value": value, "read_only": False, "config_source": source, "is_default": source == c.SOURCE_DEFAULT,
            "is_sensitive": False, "synonyms": synonyms, "config_type": _TYPE_IDS.get(kind, 0),
            "documentation": documentation or None}


def _error(code: ErrorCode, message: str) -> dict:
    return {"error_code": code, "error_message": message, "configs": []}
