"""FindCoordinator (key 10), versions 0–6: which broker coordinates a group.

The coordinator of a group is the leader of its `__consumer_offsets` partition, the coordinator
of a transactional id (key type 1) the leader of its `__transaction_state` partition; either
topic is created on the first request (as Kafka does). v4+ asks for several keys at once
(`coordinator_keys`) and answers one entry per key. Other key types are INVALID_REQUEST, as
are an empty key and a transactional id longer than limits.transactional_id_bytes_max.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau import limits
from moldau.broker import apis
from moldau.coordinator.offsets_topic import CoordinatorError
from moldau.security import acls as a

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1


@apis.api(10, 0, 6)
def handle(core, ctx: apis.RequestContext, request):
    key_type = getattr(request, "key_type", KEY_TYPE_GROUP)
    if ctx.version >= 4:
        entries = [_find(core, ctx, key_type, key) for key in request.coordinator_keys]
        return {"throttle_time": 0, "coordinators": entries}
    entry = _find(core, ctx, key_type, request.key)
    return {"throttle_time": 0, **entry}


def _find(core, ctx: apis.RequestContext, key_type: int, key: str) -> dict:
    if key_type == KEY_TYPE_GROUP and not core.authorize(ctx, a.DESCRIBE, a.GROUP, key):
        return _error(key, ErrorCode.group_authorization_failed, None)
    if key_type == KEY_TYPE_TRANSACTION and not core.authorize(ctx, a.DESCRIBE, a.TRANSACTIONAL_ID, key):
        return _error(key, ErrorCode.transactional_id_authorization_failed, None)
    if key_type not in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        return _error(key, ErrorCode.invalid_request, f"unknown coordinator key type {key_type}")
    if not key:
        return _error(key, ErrorCode.invalid_request, "empty group id" if key_type == KEY_TYPE_GROUP
                      else "empty transactional id")
    if key_type == KEY_TYPE_TRANSACTION and len(key.encode("utf-8")) > limits.transactional_id_bytes_max:
        return _error(key, ErrorCode.invalid_request, "transactional id too long")
    coordinator = core.extensions["group_coordinator" if key_type == KEY_TYPE_GROUP else "txn_coordinator"]
    try:
        node_id, host, port = coordinator.coordinator_node(key, ctx.listener_name)
    except CoordinatorError as error:
        return _error(key, error.error_code, str(error))
    return {"key": key, "node_id": node_id, "host": host, "port": port,
            "error_code": ErrorCode.none, "error_message": None}


def _error(key: str, code: ErrorCode, message: str) -> dict:
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": code, "error_message": message}
