"""SASL on the server side: the per-connection authentication state machine and its mechanisms.

Theory of operation. A connection on a SASL listener starts in `handshake`: it may ask
ApiVersions, then sends SaslHandshake naming a mechanism. An enabled mechanism moves it to
`authenticate`, where each SaslAuthenticate carries one client token to the mechanism's
server, which answers with a challenge until it has decided: `complete` (the principal is
known) or `failed`. A complete connection may authenticate again (KIP-368 re-authentication:
SaslHandshake then SaslAuthenticate, same mechanism and principal required); a failed one
accepts nothing more and is closed after `connection.failed.authentication.delay.ms`.
The states and the requests each accepts are the literal table `_TRANSITIONS`; a request the
table lacks is ILLEGAL_SASL_STATE and closes the connection.

Mechanisms (each a small object with `evaluate(token, now_ms) -> challenge bytes` that sets
`principal` once done, raising `AuthenticationFailed` otherwise):
- PLAIN: `authzid NUL user NUL password`, users from the listener's PlainLoginModule JAAS
  options `user_<name>="<password>"`.
- SCRAM-SHA-256/512 (RFC 5802): credentials from the metadata image (created with
  AlterUserScramCredentials), so every node knows them. The server side is written out here
  (hashlib/hmac) because Kafka tolerates what old librdkafka sends and a strict SCRAM library
  does not; the client side (security/sasl_client.py) uses `scramp`.
- OAUTHBEARER with unsecured JWTs (`alg: none`), Kafka's development-only validator: the
  principal claim (`sub`), `exp`, optional `iat` and required scopes are checked; a bad token
  gets RFC 7628's error challenge, then the failure.

Settings come per listener (`listener.name.<l>.<key>` beats `<key>`): `sasl.enabled.mechanisms`,
`<mechanism>.sasl.jaas.config`, `connections.max.reauth.ms` (session lifetime; 0 = forever),
`sasl.server.max.receive.size` (largest frame before authentication).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Callable

from kio.schema.errors import ErrorCode

from moldau.security import jaas

PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, OAUTHBEARER = "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"
SUPPORTED_MECHANISMS = (PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, OAUTHBEARER)
# Kafka's ScramMechanism codes (AlterUserScramCredentials, UserScramCredentialRecord).
SCRAM_MECHANISM_CODES = {SCRAM_SHA_256: 1, SCRAM_SHA_512: 2}
SCRAM_MECHANISM_NAMES = {code: name for name, code in SCRAM_MECHANISM_CODES.items()}
SCRAM_ITERATIONS_MIN, SCRAM_ITERATIONS_MAX = 4096, 16384  # Kafka's bounds
SASL_MAX_RECEIVE_BYTES_DEFAULT = 524288  # Kafka's sasl.server.max.receive.size
FAILED_AUTHENTICATION_DELAY_MS_DEFAULT = 100  # Kafka's connection.failed.authentication.delay.ms

_HANDSHAKE, _AUTHENTICATE, _COMPLETE, _FAILED = "handshake", "authenticate", "complete", "failed"
# (state, api key) -> allowed. 18 ApiVersions, 17 SaslHandshake, 36 SaslAuthenticate.
_TRANSITIONS = {
    (_HANDSHAKE, 18): True,
    (_HANDSHAKE, 17): True,
    (_AUTHENTICATE, 36): True,
    (_COMPLETE, 17): True,  # re-authentication (KIP-368)
}


class AuthenticationFailed(Exception):
    """The client's credentials were refused; the text is what the client is told."""


class SaslConfigError(ValueError):
    pass


@dataclass
class SaslSettings:
    """What a SASL listener accepts (see the module docstring for the keys)."""

    mechanisms: tuple[str, ...]
    plain_users: dict[str, str] = field(default_factory=dict)
    oauth_options: dict[str, str] = field(default_factory=dict)
    reauth_ms: int = 0
    max_receive_bytes: int = SASL_MAX_RECEIVE_BYTES_DEFAULT
    failed_delay_ms: int = FAILED_AUTHENTICATION_DELAY_MS_DEFAULT

    @classmethod
    def from_config(cls, config, listener_name: str) -> "SaslSettings":
        def get(key: str, default: str | None = None) -> str | None:
            return config.listener_value(listener_name, key, default)

        enabled = tuple(m.strip().upper() for m in (get("sasl.enabled.mechanisms") or "GSSAPI").split(",") if m.strip())
        unsupported = [m for m in enabled if m not in SUPPORTED_MECHANISMS]
        if unsupported:
            raise SaslConfigError(
                f"sasl.enabled.mechanisms of listener {listener_name} names {', '.join(unsupported)}"
                f"{' (the default, Kerberos)' if unsupported == ['GSSAPI'] and not get('sasl.enabled.mechanisms') else ''}, "
                f"which Moldau does not support: use {', '.join(SUPPORTED_MECHANISMS)}")
        settings = cls(enabled, reauth_ms=_int(get, "connections.max.reauth.ms", 0),
                       max_receive_bytes=_int(get, "sasl.server.max.receive.size", SASL_MAX_RECEIVE_BYTES_DEFAULT),
                       failed_delay_ms=_int(get, "connection.failed.authentication.delay.ms",
                                            FAILED_AUTHENTICATION_DELAY_MS_DEFAULT))
        if PLAIN in enabled:
            settings.plain_users = _plain_users(get, listener_name)
        if OAUTHBEARER in enabled:
            if get("oauthbearer.sasl.server.callback.handler.class"):
                raise SaslConfigError("oauthbearer.sasl.server.callback.handler.class is set: only unsecured "
                                      "OAUTHBEARER tokens (Kafka's default validator) are supported")
            value = get("oauthbearer.sasl.jaas.config") or get("sasl.jaas.config")
            settings.oauth_options = jaas.parse(value, "oauthbearer.sasl.jaas.config")[1] if value else {}
        return settings


def _int(get, key: str, default: int) -> int:
    value = get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SaslConfigError(f"invalid value {value!r} for {key}: expected a number") from None


def _plain_users(get, listener_name: str) -> dict[str, str]:
    value = get("plain.sasl.jaas.config") or get("sasl.jaas.config")
    if not value:
        raise SaslConfigError(f"listener {listener_name} enables PLAIN but has no users: set "
                              f"listener.name.{listener_name.lower()}.plain.sasl.jaas.config="
                              'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="secret";')
    module, options = jaas.parse(value, f"listener.name.{listener_name.lower()}.plain.sasl.jaas.config")
    if not module.endswith("PlainLoginModule"):
        raise SaslConfigError(f"the PLAIN JAAS config of listener {listener_name} names {module}, not PlainLoginModule")
    return {name[len("user_"):]: password for name, password in options.items() if name.startswith("user_")}


# --- the state machine -----------------------------------------------------------------------
@dataclass
class AuthenticateResult:
    error_code: ErrorCode
    error_message: str | None
    auth_bytes: bytes
    session_lifetime_ms: int  # 0: no limit


class SaslAuthenticator:
    """One connection's SASL exchange (see the module docstring)."""

    def __init__(self, settings: SaslSettings, scram_credential: Callable[[str, int], object | None],
                 random_bytes: Callable[[int], bytes] = secrets.token_bytes):
        self.settings = settings
        self.scram_credential = scram_credential
        self.random_bytes = random_bytes
        self.state = _HANDSHAKE
        self.mechanism: str | None = None
        self.server = None
        self.principal: str | None = None
        self.expires_ms: int | None = None  # when re-authentication is due (KIP-368)

    def allows(self, api_key: int) -> bool:
        return _TRANSITIONS.get((self.state, api_key), False)

    @property
    def failed(self) -> bool:
        return self.state == _FAILED

    def handshake(self, mechanism: str) -> ErrorCode:
        if not self.allows(17):
            self.state = _FAILED
            return ErrorCode.illegal_sasl_state
        reauthenticating = self.state == _COMPLETE
        if mechanism not in self.settings.mechanisms or (reauthenticating and mechanism != self.mechanism):
            self.state = _FAILED
            return ErrorCode.unsupported_sasl_mechanism
        self.mechanism = mechanism
        self.server = _new_server(mechanism, self.settings, self.scram_credential, self.random_bytes)
        self.state = _AUTHENTICATE
        return ErrorCode.none

    def authenticate(self, token: bytes, now_ms: int) -> AuthenticateResult:
        if self.state != _AUTHENTICATE:
            self.state = _FAILED
            return AuthenticateResult(ErrorCode.illegal_sasl_state, "SaslAuthenticate before SaslHandshake", b"", 0)
        try:
            challenge = self.server.evaluate(token, now_ms)
        except AuthenticationFailed as error:
            self.state = _FAILED
            return AuthenticateResult(ErrorCode.sasl_authentication_failed, str(error), b"", 0)
        if self.server.principal is None:
            return AuthenticateResult(ErrorCode.none, None, challenge, 0)
        principal = "User:" + self.server.principal
        if self.principal is not None and principal != self.principal:
            self.state = _FAILED
            return AuthenticateResult(ErrorCode.sasl_authentication_failed,
                                      "Cannot change principals during re-authentication", b"", 0)
        self.principal, self.state = principal, _COMPLETE
        lifetime = self._session_lifetime_ms(now_ms)
        self.expires_ms = now_ms + lifetime if lifetime else None
        return AuthenticateResult(ErrorCode.none, None, challenge, lifetime)

    def _session_lifetime_ms(self, now_ms: int) -> int:
        """connections.max.reauth.ms, shortened to the token's expiry (OAUTHBEARER); 0 when
        re-authentication is off (as in Kafka, a token's expiry then does not end the session)."""
        if self.settings.reauth_ms <= 0:
            return 0
        credential_expiry = getattr(self.server, "expires_ms", None)
        lifetime = self.settings.reauth_ms
        if credential_expiry is not None:
            lifetime = max(1, min(lifetime, credential_expiry - now_ms))
        return lifetime


def _new_server(mechanism: str, settings: SaslSettings, scram_credential, random_bytes):
    if mechanism == PLAIN:
        return PlainServer(settings.plain_users)
    if mechanism == OAUTHBEARER:
        return OAuthBearerUnsecuredServer(settings.oauth_options)
    return ScramServer(mechanism, scram_credential, random_bytes)


# --- mechanisms --------------------------------------------------------------------------------
class PlainServer:
    def __init__(self, users: dict[str, str]):
        self.users = users
        self.principal: str | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens")
        try:
            authzid, username, password = (part.decode("utf-8") for part in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid SASL/PLAIN response: not UTF-8") from None
        if not username:
            raise AuthenticationFailed("Authentication failed: username not specified")
        expected = self.users.get(username)
        if expected is None or not secrets.compare_digest(expected.encode(), password.encode()):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id that is "
                                       "different from username")
        self.principal = username
        return b""


class ScramServer:
    """RFC 5802's server side, checked as Kafka's ScramSaslServer checks it. One tolerance is
    Kafka's own: the nonce of the client's final message must end with the server's nonce
    (librdkafka before 2.1 sends the client nonce twice; Kafka accepts it, so do we)."""

    def __init__(self, mechanism: str, credential: Callable[[str, int], object | None], random_bytes):
        self.mechanism = mechanism
        self.code = SCRAM_MECHANISM_CODES[mechanism]
        self.digest = hashlib.sha256 if mechanism == SCRAM_SHA_256 else hashlib.sha512
        self.credential = credential
        self.server_nonce = base64.b64encode(random_bytes(24)).decode()
        self.round = 0
        self.principal: str | None = None
        self._record = None
        self._client_first_bare = self._server_first = ""

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        failure = (f"Authentication failed during authentication due to invalid credentials with SASL "
                   f"mechanism {self.mechanism}")
        try:
            message = token.decode("utf-8")
            if self.round == 0:
                self.round = 1
                return self._first(message).encode()
            if self.round == 1:
                self.round = 2
                return self._final(message).encode()
        except (UnicodeDecodeError, ValueError, KeyError, binascii.Error):
            pass
        raise AuthenticationFailed(failure)

    def _first(self, message: str) -> str:
        gs2, _, bare = message.partition(",")[0], None, message.split(",", 2)[2]
        if gs2 not in ("n", "y"):  # no channel binding over Kafka
            raise ValueError("channel binding")
        attributes = _scram_attributes(bare)
        if attributes.get("tokenauth", "false").lower() == "true":
            raise ValueError("delegation tokens are not supported")
        username = attributes["n"].replace("=2C", ",").replace("=3D", "=")
        self._record = self.credential(username, self.code)
        if self._record is None:
            raise ValueError("unknown user")
        self._username, self._gs2 = username, message[: len(message) - len(bare)]
        self._client_first_bare = bare
        nonce = attributes["r"] + self.server_nonce
        salt = base64.b64encode(bytes(self._record.salt)).decode()
        self._server_first = f"r={nonce},s={salt},i={self._record.iterations}"
        return self._server_first

    def _final(self, message: str) -> str:
        without_proof, _, proof = message.rpartition(",p=")
        attributes = _scram_attributes(without_proof)
        if base64.b64decode(attributes["c"]) != self._gs2.encode():
            raise ValueError("channel binding")
        if not attributes["r"].endswith(_scram_attributes(self._server_first)["r"]):
            raise ValueError("nonce")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        stored_key = bytes(self._record.stored_key)
        signature = hmac.new(stored_key, auth_message, self.digest).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature))
        if len(client_key) != len(signature) or not hmac.compare_digest(self.digest(client_key).digest(), stored_key):
            raise ValueError("proof")
        self.principal = self._username
        server_signature = hmac.new(bytes(self._record.server_key), auth_message, self.digest).digest()
        return "v=" + base64.b64encode(server_signature).decode()


def _scram_attributes(text: str) -> dict[str, str]:
    attributes = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"malformed SCRAM attribute {part!r}")
        attributes[key] = value
    return attributes


class OAuthBearerUnsecuredServer:
    """Kafka's OAuthBearerUnsecuredJws validation (development only: tokens are not signed)."""

    def __init__(self, options: dict[str, str]):
        self.principal_claim = options.get("unsecuredValidatorPrincipalClaimName", "sub")
        self.scope_claim = options.get("unsecuredValidatorScopeClaimName", "scope")
        self.required_scope = options.get("unsecuredValidatorRequiredScope", "").split()
        self.skew_ms = int(options.get("unsecuredValidatorAllowableClockSkewMs", "0") or 0)
        self.principal: str | None = None
        self.expires_ms: int | None = None
        self.error_sent = False

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if self.error_sent:  # the client's \x01 after our error challenge (RFC 7628 3.2.3)
            raise AuthenticationFailed("Authentication failed: invalid OAUTHBEARER token")
        try:
            principal, expires_ms = self._validate(token, now_ms)
        except AuthenticationFailed as error:
            self.error_sent = True
            return json.dumps({"status": "invalid_token", "error": str(error)}).encode()
        self.principal, self.expires_ms = principal, expires_ms
        return b""

    def _validate(self, token: bytes, now_ms: int) -> tuple[str, int]:
        bearer = _bearer_token(token)
        parts = bearer.split(".")
        if len(parts) != 3 or parts[2]:
            raise AuthenticationFailed("not an unsecured JWS (header.claims. with an empty signature)")
        header, claims = _b64_json(parts[0]), _b64_json(parts[1])
        if header.get("alg") != "none":
            raise AuthenticationFailed("the token's alg must be none (unsecured)")
        principal = claims.get(self.principal_claim)
        if not isinstance(principal, str) or not principal:
            raise AuthenticationFailed(f"no {self.principal_claim} claim")
        expiry = claims.get("exp")
        if not isinstance(expiry, (int, float)):
            raise AuthenticationFailed("no exp claim")
        expires_ms = int(expiry * 1000)
        if now_ms - self.skew_ms >= expires_ms:
            raise AuthenticationFailed("the token has expired")
        issued = claims.get("iat")
        if isinstance(issued, (int, float)) and issued * 1000 > now_ms + self.skew_ms:
            raise AuthenticationFailed("the token was issued in the future")
        scope = claims.get(self.scope_claim, [])
        scopes = scope.split() if isinstance(scope, str) else list(scope) if isinstance(scope, list) else []
        missing = [s for s in self.required_scope if s not in scopes]
        if missing:
            raise AuthenticationFailed(f"the token lacks the required scope {' '.join(missing)}")
        return principal, expires_ms


def _bearer_token(token: bytes) -> str:
    """The token of an OAUTHBEARER client first message: gs2 header, then \\x01-separated
    key=value pairs, one of them auth=Bearer <token> (RFC 7628)."""
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        raise AuthenticationFailed("client message is not UTF-8") from None
    for pair in text.split("\x01")[1:]:
        key, _, value = pair.partition("=")
        if key == "auth" and value.lower().startswith("bearer "):
            return value[7:].strip()
    raise AuthenticationFailed("no auth=Bearer token in the client message")


def _b64_json(part: str) -> dict:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("the token is not base64url JSON") from None
    if not isinstance(value, dict):
        raise AuthenticationFailed("the token is not base64url JSON")
    return value
