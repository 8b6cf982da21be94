"""BrokerHeartbeat (key 63), versions 0–1: a registered broker is alive (KRaft).

The active controller (controller/brokers.py) records the heartbeat, unfences a broker that
caught up with the metadata log, and runs a controlled shutdown. When the heartbeat wrote
records (unfencing, leaderships moved) the answer waits for their commit, so what it says is
true in the metadata log.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a
from moldau.controller.controller import ControllerError


@apis.api(63, 0, 1, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # nodes only
        return _response(ErrorCode.cluster_authorization_failed)
    controller = core.controller
    if not controller.active:
        return _response(ErrorCode.not_controller)
    before = controller.written_offset
    try:
        result = controller.brokers.heartbeat(request.broker_id, request.broker_epoch, request.current_metadata_offset,
                                              request.want_fence, request.want_shut_down, ctx.now_ms)
    except ControllerError as error:
        return _response(error.error_code)
    response = _response(ErrorCode.none, result.is_caught_up, result.is_fenced, result.should_shut_down)
    if controller.written_offset == before:
        return response
    return core.channel.when_committed(ctx, controller.written_offset, response)


def _response(code: ErrorCode, caught_up: bool = False, fenced: bool = True, shut_down: bool = False) -> dict:
    return {"throttle_time": 0, "error_code": code, "is_caught_up": caught_up, "is_fenced": fenced,
            "should_shut_down": shut_down}
