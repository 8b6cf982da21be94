"""ListGroups (key 16), versions 0–5: the groups this broker coordinates.

v4+ filters by state (Kafka's state names, case-insensitive), v5+ by group type: "classic"
groups and KIP-848 "consumer" groups (whose protocol type is "consumer", states Empty,
Assigning, Reconciling, Stable).
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.consumer_group import GROUP_TYPE_CONSUMER, PROTOCOL_TYPE_CONSUMER
from moldau.coordinator.coordinator import GROUP_TYPE_CLASSIC
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.coordinator.state import parse_state
from moldau.security import acls as a


@apis.api(16, 0, 5)
def handle(core, ctx: apis.RequestContext, request):
    states_filter = list(getattr(request, "states_filter", ()) or ())
    types_filter = list(getattr(request, "types_filter", ()) or ())
    states = {parse_state(name) for name in states_filter} if states_filter else None
    types = {name.lower() for name in types_filter} if types_filter else None
    coordinator = core.extensions["group_coordinator"]
    try:
        groups = coordinator.list_groups(states, types, ctx.now_ms)
        consumer_groups = [] if types is not None and GROUP_TYPE_CONSUMER not in types else \
            coordinator.list_consumer_groups({n.lower() for n in states_filter} if states_filter else None, ctx.now_ms)
    except CoordinatorError as error:
        return {"throttle_time": 0, "error_code": error.error_code, "groups": []}
    # DESCRIBE on the cluster lists every group; otherwise the groups the principal may DESCRIBE.
    if not core.authorize(ctx, a.DESCRIBE, a.CLUSTER, a.CLUSTER_NAME):
        groups = [g for g in groups if core.authorize(ctx, a.DESCRIBE, a.GROUP, g.group_id)]
        consumer_groups = [g for g in consumer_groups if core.authorize(ctx, a.DESCRIBE, a.GROUP, g.group_id)]
    listed = [{"group_id": g.group_id, "protocol_type": g.protocol_type or "", "group_state": g.state.value,
               "group_type": GROUP_TYPE_CLASSIC} for g in groups]
    listed += [{"group_id": g.group_id, "protocol_type": PROTOCOL_TYPE_CONSUMER, "group_state": g.state.value,
                "group_type": GROUP_TYPE_CONSUMER} for g in consumer_groups]
    return {"throttle_time": 0, "error_code": ErrorCode.none, "groups": sorted(listed, key=lambda g: g["group_id"])}
