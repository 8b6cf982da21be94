"""SaslAuthenticate (key 36), versions 0–2: one SASL token each way.

The connection's SaslAuthenticator (security/sasl.py) evaluates the token; once the mechanism
is done the session is authenticated: its principal is set and frames may grow to
socket.request.max.bytes again. v1+ tells the client the session's lifetime (KIP-368,
connections.max.reauth.ms): after it, only re-authentication is accepted. A failure answers
SASL_AUTHENTICATION_FAILED and the runtime closes the connection after the failure delay.
"""

from kio.schema.errors import ErrorCode

from moldau.broker import apis


@apis.api(36, 0, 2)
def handle(core, ctx: apis.RequestContext, request) -> dict:
    session = core.sessions[ctx.connection_id]
    if session.sasl is None:
        return _answer(ErrorCode.illegal_sasl_state, "SASL is not enabled on this listener", b"", 0)
    result = session.sasl.authenticate(bytes(request.auth_bytes), ctx.now_ms)
    if result.error_code == ErrorCode.none and session.sasl.state == "complete":
        session.authenticated = True
        session.principal = session.sasl.principal
        session.frame_bytes_max = core.config.socket_request_max_bytes
    return _answer(result.error_code, result.error_message, result.auth_bytes, result.session_lifetime_ms)


def _answer(error_code, message, auth_bytes: bytes, lifetime_ms: int) -> dict:
    return {"error_code": error_code, "error_message": message, "auth_bytes": auth_bytes,
            "session_lifetime": lifetime_ms}
