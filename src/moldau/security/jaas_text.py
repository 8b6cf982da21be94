"""JAAS config values as Kafka writes them, for settings this code hands to servers and clients."""

from __future__ import annotations

_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule",
}


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plain_jaas(users: dict[str, str]) -> str:
    """A broker's PlainLoginModule config accepting these users."""
    options = " ".join(f"user_{name}={_quote(password)}" for name, password in sorted(users.items()))
    return f"{_MODULES['PLAIN']} required {options};"


def login_jaas(mechanism: str, user: str, password: str) -> str:
    """A client's login for PLAIN or SCRAM (`sasl.jaas.config`)."""
    return f"{_MODULES[mechanism]} required username={_quote(user)} password={_quote(password)};"
