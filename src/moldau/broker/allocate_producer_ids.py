"""AllocateProducerIds (key 67), version 0: a broker asks the controller for a block of ids.

The block is recorded in the metadata log (ProducerIdsRecord) before the answer, so no id is
handed out twice, across restarts and controllers (coordinator/producer_ids.py asks).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a
from moldau.controller.controller import ControllerError


@apis.api(67, 0, 0, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # nodes only
        return _response(ErrorCode.cluster_authorization_failed)
    controller = core.controller
    if not controller.active:
        return _response(ErrorCode.not_controller)
    try:
        start, length = controller.allocate_producer_ids(request.broker_id, request.broker_epoch, ctx.now_ms)
    except ControllerError as error:
        return _response(error.error_code)
    return core.channel.when_committed(ctx, controller.written_offset, _response(ErrorCode.none, start, length))


def _response(code: ErrorCode, start: int = -1, length: int = 0) -> dict:
    return {"throttle_time": 0, "error_code": code, "producer_id_start": start, "producer_id_len": length}
