"""ListConfigResources (key 74), versions 0–1 (KIP-1142; v0 was ListClientMetricsResources).

Lists the resources that can carry configs, by type: v1 topics (2), brokers (4), groups (32)
and client-metrics subscriptions (16); an empty type list means all of them. v0 lists only
client-metrics resources. Groups are the ones this broker coordinates plus any group that has
dynamic configs (`kafka-configs --entity-type groups --describe` asks this first). Needs
DESCRIBE_CONFIGS on the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise), as Kafka.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import configs as c
from moldau.coordinator.consumer_config import TYPE_GROUP
from moldau.security import acls as a

TYPE_CLIENT_METRICS = 16
SUPPORTED_TYPES = (c.TYPE_TOPIC, c.TYPE_BROKER, TYPE_CLIENT_METRICS, TYPE_GROUP)


@apis.api(74, 0, 1)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.DESCRIBE_CONFIGS, a.CLUSTER, a.CLUSTER_NAME):
        return _response(ErrorCode.cluster_authorization_failed, [])
    wanted = list(getattr(request, "resource_types", ()) or ()) if ctx.version >= 1 else [TYPE_CLIENT_METRICS]
    if any(t not in SUPPORTED_TYPES for t in wanted):
        return _response(ErrorCode.unsupported_version, [])
    types = set(wanted or SUPPORTED_TYPES)
    resources: list[tuple[int, str]] = []
    if c.TYPE_TOPIC in types:
        resources += [(c.TYPE_TOPIC, name) for name in sorted(core.image.topics_by_name)]
    if c.TYPE_BROKER in types:
        resources += [(c.TYPE_BROKER, str(broker)) for broker in sorted(core.image.brokers)]
    if TYPE_GROUP in types:
        resources += [(TYPE_GROUP, name) for name in _groups(core, ctx.now_ms)]
    if TYPE_CLIENT_METRICS in types:
        resources += [(TYPE_CLIENT_METRICS, name) for (kind, name), values in sorted(core.image.configs.items())
                      if kind == TYPE_CLIENT_METRICS and values]
    return _response(ErrorCode.none, resources)


def _groups(core, now_ms: int) -> list[str]:
    coordinator = core.extensions["group_coordinator"]
    names = {g.group_id for g in coordinator.list_groups(None, None, now_ms)}
    names |= {g.group_id for g in coordinator.list_consumer_groups(None, now_ms)}
    names |= {name for (kind, name), values in core.image.configs.items() if kind == TYPE_GROUP and values}
    return sorted(names)


def _response(error: ErrorCode, resources: list[tuple[int, str]]) -> dict:
    return {"throttle_time": 0, "error_code": error, "config_resources": [
        {"resource_name": name, "resource_type": kind} for kind, name in resources]}
