"""SaslHandshake (key 17), version 1: the client names the SASL mechanism it will use.

An enabled mechanism is answered with no error and the connection's SASL exchange moves on to
SaslAuthenticate; any other gets UNSUPPORTED_SASL_MECHANISM with the enabled list, and the
connection is closed after connection.failed.authentication.delay.ms (Kafka does the same).
On a listener without SASL the request is ILLEGAL_SASL_STATE. Version 0 (raw SASL tokens
after the handshake, Kafka < 1.0 clients) is not served: clients use v1 when it is advertised.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis


@apis.api(17, 1, 1)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    session = core.sessions[ctx.connection_id]
    if session.sasl is None:
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []}
    error = session.sasl.handshake(request.mechanism)
    return {"error_code": error, "mechanisms": list(session.sasl.settings.mechanisms)}
