"""SaslHandshake (key 17), versions 0–1: the client names the SASL mechanism it will use.

An enabled mechanism is answered with no error and the connection's SASL exchange moves on to
SaslAuthenticate; any other gets UNSUPPORTED_SASL_MECHANISM with the enabled list, and the
connection is closed after connection.failed.authentication.delay.ms (Kafka does the same).
On a listener without SASL the request is ILLEGAL_SASL_STATE. Version 0 is advertised (as
Kafka does; librdkafka looks for it before it uses SASL at all) and answered, but the raw SASL
tokens a v0 client (Kafka < 1.0) would send next are not Kafka requests and close the
connection: clients use v1 and SaslAuthenticate when the broker advertises them, and all
current ones do.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis


@apis.api(17, 0, 1)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    session = core.sessions[ctx.connection_id]
    if session.sasl is None:
        return {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": []}
    error = session.sasl.handshake(request.mechanism)
    return {"error_code": error, "mechanisms": list(session.sasl.settings.mechanisms)}
