"""AlterConfigs (key 33, versions 0–2) and IncrementalAlterConfigs (key 44, versions 0–1).

AlterConfigs replaces a resource's whole set of dynamic configs (keys left out are removed),
IncrementalAlterConfigs applies SET(0) / DELETE(1) / APPEND(2) / SUBTRACT(3) per key, as Kafka.
Both become ConfigRecords in the metadata log; the broker reconfigures the topic's logs when
it applies them. Group configs (type 32, KIP-848) are checked against the broker's
group.consumer.* bounds; the coordinator reads them at each heartbeat. Broker configs may be
altered for this broker's id or the cluster default (empty name), every key Kafka lets change
at run time, with Kafka's checks and refusals (controller/broker_configs.py); the topic
defaults (log.* and friends) take effect at once.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.broker.describe_configs import _denied
from moldau.controller import configs as c
from moldau.controller.controller import ControllerError
from moldau.coordinator.consumer_config import TYPE_GROUP, ConsumerConfigError, validate_group_configs
from moldau.security import acls as a

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@apis.api(33, 0, 2)
def handle_alter(core, ctx: apis.RequestContext, request) -> dict:
    responses = []
    for resource in request.resources:
        denied = _denied(core, ctx, resource.resource_type, resource.resource_name, a.ALTER_CONFIGS)
        if denied is not None:
            responses.append(_response(resource, denied, None))
            continue
        current = core.image.configs.get((resource.resource_type, resource.resource_name), {})
        changes: dict[str, str | None] = {name: None for name in current}
        changes.update({entry.name: entry.value for entry in resource.configs})
        responses.append(_apply(core, resource, changes, request.validate_only))
    return {"throttle_time": 0, "responses": responses}


@apis.api(44, 0, 1)
def handle_incremental(core, ctx: apis.RequestContext, request) -> dict:
    responses = []
    for resource in request.resources:
        denied = _denied(core, ctx, resource.resource_type, resource.resource_name, a.ALTER_CONFIGS)
        if denied is not None:
            responses.append(_response(resource, denied, None))
            continue
        try:
            changes = _incremental_changes(core, resource)
        except ControllerError as error:
            responses.append(_response(resource, error.error_code, str(error)))
            continue
        responses.append(_apply(core, resource, changes, request.validate_only))
    return {"throttle_time": 0, "responses": responses}


def _incremental_changes(core, resource) -> dict[str, str | None]:
    current = core.image.configs.get((resource.resource_type, resource.resource_name), {})
    changes: dict[str, str | None] = {}
    for entry in resource.configs:
        op = entry.config_operation
        if op == SET:
            changes[entry.name] = entry.value
        elif op == DELETE:
            changes[entry.name] = None
        elif op in (APPEND, SUBTRACT):
            definition = c.TOPIC_CONFIGS.get(entry.name)
            if definition is None or definition.kind != "list":
                raise ControllerError(ErrorCode.invalid_config, f"Config {entry.name} is not a list config")
            base = current.get(entry.name) or definition.default or ""
            items = [i for i in base.split(",") if i]
            for item in (entry.value or "").split(","):
                if op == APPEND and item and item not in items:
                    items.append(item)
                elif op == SUBTRACT and item in items:
                    items.remove(item)
            changes[entry.name] = ",".join(items) if items else None
        else:
            raise ControllerError(ErrorCode.invalid_request, f"Unknown config operation {op}")
    return changes


def _apply(core, resource, changes, validate_only) -> dict:
    if resource.resource_type == c.TYPE_BROKER:
        if resource.resource_name not in ("", str(core.node_id)):
            return _response(resource, ErrorCode.invalid_request,
                             f"Unexpected broker id, expected {core.node_id}, but received {resource.resource_name}")
    elif resource.resource_type == TYPE_GROUP:
        error = _check_group_configs(core, resource, changes)
        if error is not None:
            return error
    elif resource.resource_type != c.TYPE_TOPIC:
        return _response(resource, ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}")
    try:
        core.controller.alter_configs(resource.resource_type, resource.resource_name, changes, validate_only)
    except ControllerError as error:
        return _response(resource, error.error_code, str(error))
    return _response(resource, ErrorCode.none, None)


def _check_group_configs(core, resource, changes) -> dict | None:
    """KIP-848 group configs: known keys within the broker's bounds (Kafka: INVALID_CONFIG)."""
    if not resource.resource_name:
        return _response(resource, ErrorCode.invalid_request, "Group name must not be empty.")
    settings = core.extensions["consumer_group_coordinator"].settings
    current = core.image.configs.get((TYPE_GROUP, resource.resource_name), {})
    try:
        validate_group_configs(settings, current, changes)
    except ConsumerConfigError as error:
        return _response(resource, ErrorCode.invalid_config, str(error))
    return None


def _response(resource, code, message) -> dict:
    return {"error_code": code, "error_message": message, "resource_type": resource.resource_type,
            "resource_name": resource.resource_name}
