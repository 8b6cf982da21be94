"""BrokerRegistration (key 62), versions 0–4: a broker process joins the cluster (KRaft).

Served by the active controller (controller/brokers.py); answered once the registration is
committed, with the broker epoch that identifies this incarnation. Errors as Kafka:
NOT_CONTROLLER, INCONSISTENT_CLUSTER_ID, DUPLICATE_BROKER_REGISTRATION, UNSUPPORTED_VERSION (a
broker that does not support a finalized feature level).
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.security import acls as a
from moldau.controller import records as r
from moldau.controller.controller import ControllerError


@apis.api(62, 0, 4, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # nodes only
        return _response(ErrorCode.cluster_authorization_failed)
    controller = core.controller
    if not controller.active:
        return _response(ErrorCode.not_controller)
    if request.cluster_id != core.image.cluster_id:
        return _response(ErrorCode.inconsistent_cluster_id)
    endpoints = [r.BrokerEndpoint(name=l.name, host=l.host, port=l.port, security_protocol=l.security_protocol)
                 for l in request.listeners]
    supported = {f.name: (f.min_supported_version, f.max_supported_version) for f in request.features}
    for name, level in sorted(controller.image.features.items()):
        low, high = supported.get(name, (0, 0))  # a feature a broker does not name: level 0 only
        if not low <= level <= high:
            return _response(ErrorCode.unsupported_version)  # it cannot read what the cluster writes
    try:
        epoch = controller.brokers.register(request.broker_id, request.incarnation_id, endpoints,
                                            request.rack, ctx.now_ms, getattr(request, "previous_broker_epoch", -1))
    except ControllerError as error:
        return _response(error.error_code)
    return core.channel.when_committed(ctx, controller.written_offset, _response(ErrorCode.none, epoch))


def _response(code: ErrorCode, epoch: int = -1) -> dict:
    return {"throttle_time": 0, "error_code": code, "broker_epoch": epoch}
