"""Configuration definitions: the worker's, every connector's, and a `ConfigDef` for your own.

Theory of operation: a `ConfigDef` is a list of `ConfigKey`s (name, type, default, validator,
doc). `ConfigDef.parse(raw)` turns the string map from a properties file or a REST body into typed
values and returns *every* problem at once as a list of messages, worded like Kafka's
(`Missing required configuration "topic" which has no default value.`), so a user fixes a file
in one pass. `ConfigDef.validate(raw)` raises one `ConfigError` carrying all of them. Keys the
definition does not know are kept as strings (connectors and clients read them), as Kafka does.

Worker settings follow `connect-standalone.properties`; keys starting with `producer.` and
`consumer.` are passed, prefix removed, to the clients (Kafka's convention). `plugin.path` is
accepted and ignored (Python connectors are found by import path, see `moldau.connect.plugins`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

REQUIRED = object()  # default of a key that has none


class ConfigError(ValueError):
    """Invalid configuration. `errors` holds each problem as one sentence."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__(" ".join(self.errors))


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str = "string"  # string | int | long | double | boolean | list | class | password
    default: Any = REQUIRED
    doc: str = ""
    validator: Callable[[str, Any], str | None] | None = None  # returns an error sentence or None


def _type_error(name: str, raw: str, kind: str) -> str:
    noun = "number" if kind in ("int", "long", "double") else kind
    return f"Invalid value {raw} for configuration {name}: Not a {noun} of type {kind.upper()}"


def _convert(key: ConfigKey, raw: Any) -> Any:
    """String → typed value; raises ValueError with a Kafka-worded message."""
    if not isinstance(raw, str):
        raw = str(raw) if not isinstance(raw, bool) else ("true" if raw else "false")
    text = raw.strip()
    if key.type in ("int", "long"):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(_type_error(key.name, raw, key.type)) from None
        if key.type == "int" and not -(2**31) <= value < 2**31:
            raise ValueError(_type_error(key.name, raw, key.type))
        return value
    if key.type == "double":
        try:
            return float(text)
        except ValueError:
            raise ValueError(_type_error(key.name, raw, key.type)) from None
    if key.type == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"Invalid value {raw} for configuration {key.name}: "
                             "Expected value to be either true or false")
        return text.lower() == "true"
    if key.type == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text if key.type in ("class",) else raw


@dataclass
class ConfigDef:
    keys: list[ConfigKey] = field(default_factory=list)

    def define(self, name: str, type: str = "string", default: Any = REQUIRED, doc: str = "",
               validator=None) -> "ConfigDef":
        self.keys.append(ConfigKey(name, type, default, doc, validator))
        return self

    def merged(self, other: "ConfigDef") -> "ConfigDef":
        names = {key.name for key in other.keys}
        return ConfigDef([key for key in self.keys if key.name not in names] + list(other.keys))

    def parse(self, raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Typed values (unknown keys kept as given) and the list of errors, in definition order."""
        values: dict[str, Any] = dict(raw)
        errors: list[str] = []
        for key in self.keys:
            if key.name not in raw or raw[key.name] is None:
                if key.default is REQUIRED:
                    errors.append(f'Missing required configuration "{key.name}" which has no default value.')
                    continue
                values[key.name] = key.default
            else:
                try:
                    values[key.name] = _convert(key, raw[key.name])
                except ValueError as error:
                    errors.append(str(error))
                    continue
            problem = key.validator(key.name, values[key.name]) if key.validator else None
            if problem:
                errors.append(problem)
        return values, errors

    def validate(self, raw: dict[str, Any]) -> dict[str, Any]:
        values, errors = self.parse(raw)
        if errors:
            raise ConfigError(errors)
        return values


# --- validators -------------------------------------------------------------------------------

def at_least(minimum: int):
    def check(name: str, value: Any) -> str | None:
        if value is not None and value < minimum:
            return f"Invalid value {value} for configuration {name}: Value must be at least {minimum}"
        return None

    return check


def non_empty_string(name: str, value: Any) -> str | None:
    if value is None or not str(value).strip():
        return f"Invalid value {value!r} for configuration {name}: String must be non-empty"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in str(value)):
        return f"Invalid value {value!r} for configuration {name}: String may not contain control characters"
    return None


# --- the worker -------------------------------------------------------------------------------

JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"

WORKER_CONFIG = (
    ConfigDef()
    .define("bootstrap.servers", "list", ["localhost:9092"], "Kafka brokers to connect to")
    .define("key.converter", "class", JSON_CONVERTER, "Converter for record keys")
    .define("value.converter", "class", JSON_CONVERTER, "Converter for record values")
    .define("offset.storage.file.filename", "string", REQUIRED, "File holding source connector offsets")
    .define("offset.flush.interval.ms", "long", 60000, "How often offsets are committed", at_least(1))
    .define("offset.flush.timeout.ms", "long", 5000, "How long a commit waits for the producer", at_least(1))
    .define("listeners", "list", ["http://:8083"], "REST API listener (bound to 127.0.0.1)")
    .define("plugin.path", "list", [], "Accepted and ignored: Python connectors are imported by name")
    .define("task.shutdown.graceful.timeout.ms", "long", 5000, "How long a stopping task may take", at_least(0))
)


# Every key of Kafka 4.1's StandaloneConfig (ConfigDef names): accepted without a warning,
# whether Moldau uses it or not, as Kafka's worker accepts them.
KAFKA_WORKER_KEYS = frozenset("""
access.control.allow.methods access.control.allow.origin admin.listeners bootstrap.servers client.dns.lookup
config.providers connector.client.config.override.policy header.converter header.converter.plugin.version
key.converter key.converter.plugin.version listeners metric.reporters metrics.num.samples
metrics.recording.level metrics.sample.window.ms offset.flush.interval.ms offset.flush.timeout.ms
offset.storage.file.filename plugin.discovery plugin.path response.http.headers.config
rest.advertised.host.name rest.advertised.listener rest.advertised.port rest.extension.classes
ssl.cipher.suites ssl.client.auth ssl.enabled.protocols ssl.endpoint.identification.algorithm
ssl.engine.factory.class ssl.key.password ssl.keymanager.algorithm ssl.keystore.certificate.chain
ssl.keystore.key ssl.keystore.location ssl.keystore.password ssl.keystore.type ssl.protocol ssl.provider
ssl.secure.random.implementation ssl.trustmanager.algorithm ssl.truststore.certificates
ssl.truststore.location ssl.truststore.password ssl.truststore.type task.shutdown.graceful.timeout.ms
topic.creation.enable topic.tracking.allow.reset topic.tracking.enable value.converter
value.converter.plugin.version
""".split())
# Prefixes whose keys go to a client, a converter or a listener (Kafka's conventions).
_WORKER_KEY_PREFIXES = ("producer.", "consumer.", "admin.", "key.converter.", "value.converter.",
                        "header.converter.", "listeners.https.", "admin.listeners.https.", "config.providers.",
                        "sasl.", "security.protocol")


def unknown_worker_keys(properties: dict[str, Any]) -> list[str]:
    """Worker keys neither Kafka's worker nor Moldau's knows, each with a likely meant key
    (`bootstrap.server (did you mean bootstrap.servers?)`): a misspelled key must not be
    silently ignored, as Kafka's worker warns about configs it does not use."""
    import difflib

    known = KAFKA_WORKER_KEYS | {key.name for key in WORKER_CONFIG.keys}
    found = []
    for key in sorted(properties):
        if key in known or key.startswith(_WORKER_KEY_PREFIXES):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
        found.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return found


def client_overrides(worker: dict[str, Any], prefix: str) -> dict[str, str]:
    """`producer.acks=all` → `{"acks": "all"}` for the client named by `prefix`."""
    return {k[len(prefix):]: v for k, v in worker.items() if k.startswith(prefix) and len(k) > len(prefix)}


def converter_settings(config: dict[str, Any], which: str) -> dict[str, str]:
    """Settings for `key.converter` / `value.converter`, prefix removed."""
    return client_overrides(config, which + ".")


# --- every connector --------------------------------------------------------------------------

CONNECTOR_CONFIG = (
    ConfigDef()
    .define("name", "string", REQUIRED, "Unique connector name", non_empty_string)
    .define("connector.class", "class", REQUIRED, "Connector class or alias", non_empty_string)
    .define("tasks.max", "int", 1, "Maximum number of tasks", at_least(1))
    .define("key.converter", "class", None, "Overrides the worker's key.converter")
    .define("value.converter", "class", None, "Overrides the worker's value.converter")
    .define("transforms", "list", [], "Single message transforms (not supported yet)", lambda n, v: (
        "Single message transforms (transforms) are not supported by moldau connect yet" if v else None))
)


def sink_topics_check(raw: dict[str, Any]) -> list[str]:
    """A sink names its input with exactly one of `topics` and `topics.regex`."""
    topics = str(raw.get("topics") or "").strip()
    regex = str(raw.get("topics.regex") or "").strip()
    if topics and regex:
        return ["topics and topics.regex are mutually exclusive options, but both are set."]
    if not topics and not regex:
        return ["Must configure one of topics or topics.regex"]
    return []
