"""DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), versions 0–1.

What `kafka-configs.sh --entity-type users|clients|ips --alter --add-config producer_byte_rate=…`
and `--describe` send. Alterations are validated as Kafka's ClientQuotaControlManager does
(entity types user/client-id, or ip alone; keys per entity type; byte rates whole numbers;
positive values) and committed as ClientQuotaRecords, so every node enforces the same quotas
(security/quotas.py). An entity's operations succeed or fail together. Describe matches
components Kafka's way: EXACT (0) a name, DEFAULT (1) the default entity, SPECIFIED (2) any
named entity; `strict` leaves out entities with other entity types. Authorization:
DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.controller import records as r
from moldau.security import acls as a
from moldau.security.quotas import quota_entity_error

_EXACT, _DEFAULT, _SPECIFIED = 0, 1, 2


@apis.api(48, 0, 1)
def describe(core, ctx: apis.RequestContext, request) -> dict:
    if not core.authorize(ctx, a.DESCRIBE_CONFIGS, a.CLUSTER, a.CLUSTER_NAME):
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                "entries": None}
    for component in request.components:
        if component.match_type not in (_EXACT, _DEFAULT, _SPECIFIED):
            return {"throttle_time": 0, "error_code": ErrorCode.invalid_request,
                    "error_message": f"Unknown match type {component.match_type}", "entries": None}
    entries = []
    for entity, values in sorted(core.image.client_quotas.items(), key=lambda item: repr(item[0])):
        if _matches(dict(entity), request.components, request.strict):
            entries.append({"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
                            "values": [{"key": k, "value": v} for k, v in sorted(values.items())]})
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "entries": entries}


def _matches(entity: dict, components, strict: bool) -> bool:
    for component in components:
        if component.entity_type not in entity:
            return False
        name = entity[component.entity_type]
        if component.match_type == _EXACT and name != component.match:
            return False
        if component.match_type == _DEFAULT and name is not None:
            return False
        if component.match_type == _SPECIFIED and name is None:
            return False
    return not strict or set(entity) == {c.entity_type for c in components}


@apis.api(49, 0, 1)
def alter(core, ctx: apis.RequestContext, request) -> dict:
    allowed = core.authorize(ctx, a.ALTER_CONFIGS, a.CLUSTER, a.CLUSTER_NAME)
    results, records = [], []
    for entry in request.entries:
        described = [{"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity]
        if not allowed:
            results.append({"error_code": ErrorCode.cluster_authorization_failed, "error_message": None,
                            "entity": described})
            continue
        error, entity_records = _entity_records(entry)
        if error is None and not request.validate_only:
            records.extend(entity_records)
        results.append({"error_code": ErrorCode.invalid_request if error else ErrorCode.none,
                        "error_message": error, "entity": described})
    core.controller.commit(records)
    return {"throttle_time": 0, "entries": results}


def _entity_records(entry) -> tuple[str | None, list]:
    entity: dict[str, str | None] = {}
    for part in entry.entity:
        if part.entity_type in entity:
            return f"Duplicate entity type {part.entity_type}", []
        entity[part.entity_type] = part.entity_name
    # Kafka's canonical order: user before client-id
    key = tuple(sorted(entity.items(), key=lambda item: ("user", "client-id", "ip").index(item[0])
                       if item[0] in ("user", "client-id", "ip") else 9))
    records = []
    for op in entry.ops:
        error = quota_entity_error(entity, op.key, None if op.remove else float(op.value), op.remove)
        if error:
            return error, []
        records.append(r.ClientQuotaRecord(entity=tuple(r.EntityData(entity_type=t, entity_name=n) for t, n in key),
                                           key=op.key, value=0.0 if op.remove else float(op.value), remove=op.remove))
    return None, records
