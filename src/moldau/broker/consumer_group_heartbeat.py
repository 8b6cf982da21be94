"""ConsumerGroupHeartbeat (key 68), versions 0–1: a member of a KIP-848 consumer group.

The member sends its epoch (0 to join, -1 to leave, -2 for a static member leaving for now),
its subscription and owned partitions when they changed; the coordinator answers with the
member's epoch, the heartbeat interval and, when it changed, the partitions it may own
(coordinator/consumer_coordinator.py). v1 makes the client generate its member id (v0 lets the
coordinator generate it on join). The answer waits until the group's records are replicated,
so the handler returns a Delayed when the coordinator has not answered yet.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.coordinator.consumer_coordinator import HeartbeatRequest, heartbeat_response
from moldau.coordinator.deferred import Deferred
from moldau.security import acls as a

REPLICATION_WAIT_MS = 30_000  # core.after_replicated's timeout


@apis.api(68, 0, 1)
def handle(core, ctx: apis.RequestContext, request):
    member_id = request.member_id
    # READ on the group, DESCRIBE on every topic subscribed by name (Kafka's checks).
    if not core.authorize(ctx, a.READ, a.GROUP, request.group_id):
        return heartbeat_response(ErrorCode.group_authorization_failed, None, member_id or None)
    for name in sorted(set(request.subscribed_topic_names or ())):
        if not core.authorize(ctx, a.DESCRIBE, a.TOPIC, name):
            return heartbeat_response(ErrorCode.topic_authorization_failed, None, member_id or None)
    if ctx.version == 0 and not member_id and request.member_epoch == 0:
        member_id = str(core.new_uuid())  # v0: the coordinator names a joining member
    owned = None
    if request.topic_partitions is not None:
        owned = {}
        for tp in request.topic_partitions:
            if tp.topic_id is not None and tp.partitions:
                key = str(tp.topic_id)
                owned[key] = owned.get(key, frozenset()) | frozenset(tp.partitions)
    heartbeat = HeartbeatRequest(
        group_id=request.group_id, member_id=member_id, member_epoch=request.member_epoch,
        instance_id=request.instance_id, rack_id=request.rack_id,
        rebalance_timeout_ms=_ms(request.rebalance_timeout),
        subscribed_topic_names=None if request.subscribed_topic_names is None else tuple(request.subscribed_topic_names),
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor, owned=owned,
        client_id=ctx.header.client_id or "", client_host="/" + ctx.client_host, version=ctx.version)
    fallback = heartbeat_response(ErrorCode.coordinator_not_available, None, member_id)
    deferred = Deferred(core, ctx, REPLICATION_WAIT_MS, fallback)
    core.extensions["consumer_group_coordinator"].heartbeat(heartbeat, deferred.respond, ctx.now_ms)
    return deferred.outcome()


def _ms(value) -> int:
    if value is None:
        return -1
    return int(value.total_seconds() * 1000) if hasattr(value, "total_seconds") else int(value)
