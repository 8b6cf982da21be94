"""Envelope (key 58), version 0: an admin request another broker forwarded to the controller.

The inner request runs here as if its client had sent it (its principal and address travel
with it) and is never forwarded again; its response goes back inside the Envelope response.
A node that is not the active controller answers NOT_CONTROLLER and the forwarding broker
retries with the new one (broker/controller_channel.py).
"""

import ipaddress

from kio.schema.errors import ErrorCode

from moldau.broker import apis
from moldau.protocol import codec
from moldau.security import acls as a


@apis.api(58, 0, 0, listeners=apis.CONTROLLER_ONLY)
def handle(core, ctx: apis.RequestContext, request):
    if not core.authorize(ctx, a.CLUSTER_ACTION, a.CLUSTER, a.CLUSTER_NAME):  # nodes only
        return {"error_code": ErrorCode.cluster_authorization_failed, "response_data": None}
    try:
        if not core.controller.active and core.codec_api_key(request.request_data) != 55:
            return {"error_code": ErrorCode.not_controller, "response_data": None}
        principal = (request.request_principal or b"User:ANONYMOUS").decode("utf-8", "replace")
        result = core.handle_forwarded(request.request_data, ctx, principal, _host(request.client_host_address))
    except codec.UnsupportedVersion:
        return {"error_code": ErrorCode.unsupported_version, "response_data": None}
    except codec.MalformedRequest:  # an inner request that does not parse
        return {"error_code": ErrorCode.invalid_request, "response_data": None}
    if isinstance(result, apis.Delayed):
        return apis.map_delayed(result, lambda frame: core.finish(ctx, _wrap(frame)))
    return _wrap(result)


def _wrap(frame) -> dict:
    data = b"".join(bytes(chunk) for chunk in frame) if isinstance(frame, list) else bytes(frame)  # regions read
    return {"error_code": ErrorCode.none, "response_data": data[4:]}


def _host(raw: bytes) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return "?"
