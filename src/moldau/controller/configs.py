"""Topic and broker configuration: names, types, defaults and validation, Kafka's spelling.

A topic config's effective value comes from, in order: the topic's dynamic override (a
ConfigRecord in the metadata image), the broker's setting of the matching `log.*` key — this
broker's dynamic config, else the cluster-wide dynamic default (`--entity-default`), else
server.properties — then Kafka's default. DescribeConfigs reports which of these it came from
(`source`), as Kafka does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kio.schema.errors import ErrorCode

LONG_MAX = 9223372036854775807

# DescribeConfigs config sources (Kafka's ConfigSource ids).
SOURCE_TOPIC = 1  # DYNAMIC_TOPIC_CONFIG
SOURCE_DYNAMIC_BROKER = 2  # DYNAMIC_BROKER_CONFIG
SOURCE_DYNAMIC_DEFAULT_BROKER = 3  # DYNAMIC_DEFAULT_BROKER_CONFIG (the cluster-wide default)
SOURCE_STATIC_BROKER = 4  # STATIC_BROKER_CONFIG
SOURCE_DEFAULT = 5  # DEFAULT_CONFIG

TYPE_TOPIC = 2
TYPE_BROKER = 4


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    kind: str  # boolean, string, int, long, double, list, class, password
    default: str | None
    broker_key: str | None = None  # the server.properties key that sets the default
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    documentation: str = ""


def _d(name, kind, default, broker_key=None, choices=(), minimum=None, doc=""):
    return ConfigDef(name, kind, default, broker_key, tuple(choices), minimum, doc)


TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        _d("cleanup.policy", "list", "delete", "log.cleanup.policy", ("delete", "compact")),
        _d("compression.type", "string", "producer", "compression.type",
           ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _d("delete.retention.ms", "long", "86400000", "log.cleaner.delete.retention.ms", minimum=0),
        _d("file.delete.delay.ms", "long", "60000", "log.segment.delete.delay.ms", minimum=0),
        _d("flush.messages", "long", str(LONG_MAX), "log.flush.interval.messages", minimum=1),
        _d("flush.ms", "long", str(LONG_MAX), "log.flush.interval.ms", minimum=0),
        _d("index.interval.bytes", "int", "4096", "log.index.interval.bytes", minimum=0),
        _d("max.compaction.lag.ms", "long", str(LONG_MAX), "log.cleaner.max.compaction.lag.ms", minimum=1),
        _d("max.message.bytes", "int", "1048588", "message.max.bytes", minimum=0),
        _d("message.timestamp.type", "string", "CreateTime", "log.message.timestamp.type",
           ("CreateTime", "LogAppendTime")),
        _d("message.timestamp.before.max.ms", "long", str(LONG_MAX), "log.message.timestamp.before.max.ms", minimum=0),
        _d("message.timestamp.after.max.ms", "long", "3600000", "log.message.timestamp.after.max.ms", minimum=0),
        _d("min.cleanable.dirty.ratio", "double", "0.5", "log.cleaner.min.cleanable.ratio", minimum=0),
        _d("min.compaction.lag.ms", "long", "0", "log.cleaner.min.compaction.lag.ms", minimum=0),
        _d("min.insync.replicas", "int", "1", "min.insync.replicas", minimum=1),
        _d("preallocate", "boolean", "false", "log.preallocate"),
        _d("retention.bytes", "long", "-1", "log.retention.bytes"),
        _d("retention.ms", "long", "604800000", "log.retention.ms", minimum=-1),
        _d("segment.bytes", "int", "1073741824", "log.segment.bytes", minimum=14),
        _d("segment.index.bytes", "int", "10485760", "log.index.size.max.bytes", minimum=4),
        _d("segment.jitter.ms", "long", "0", "log.roll.jitter.ms", minimum=0),
        _d("segment.ms", "long", "604800000", "log.roll.ms", minimum=1),
        _d("unclean.leader.election.enable", "boolean", "false", "unclean.leader.election.enable"),
    )
}


class ConfigError(Exception):
    def __init__(self, error_code: ErrorCode, message: str):
        super().__init__(message)
        self.error_code = error_code


def validate_value(definition: ConfigDef, value: str) -> str:
    """Check a value against its definition; return it normalized. Raises ConfigError with
    Kafka's message (`Invalid value X for configuration N: <ConfigDef's reason>`)."""
    kind = definition.kind
    text = value.strip()

    def bad(reason: str) -> ConfigError:
        return ConfigError(ErrorCode.invalid_config, f"Invalid value {text} for configuration {definition.name}: {reason}")

    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise bad("Expected value to be either true or false")
        return text.lower()
    if kind in ("int", "long", "double"):
        try:
            number = float(text) if kind == "double" else int(text)
        except ValueError:
            raise bad(f"Not a number of type {kind.upper()}") from None
        if kind != "double" and not -_LIMITS[kind] - 1 <= number <= _LIMITS[kind]:
            raise bad(f"Not a number of type {kind.upper()}")
        if definition.minimum is not None and number < definition.minimum:
            raise bad(f"Value must be at least {definition.minimum:g}")
        return text
    if definition.choices:
        items = [item.strip() for item in text.split(",")] if kind == "list" else [text]
        for item in items:
            if item not in definition.choices:
                raise ConfigError(ErrorCode.invalid_config,
                                  f"Invalid value {item} for configuration {definition.name}: "
                                  f"String must be one of: {', '.join(definition.choices)}")
        return ",".join(items)
    return text


_LIMITS = {"int": 2**31 - 1, "long": LONG_MAX}


def expected_form(definition: ConfigDef) -> str:
    """What a value of this config looks like, for one-line errors about server.properties."""
    if definition.kind == "boolean":
        return "true or false"
    if definition.choices:
        many = "a comma-separated list of " if definition.kind == "list" else "one of "
        return many + ", ".join(definition.choices)
    if definition.kind in ("int", "long"):
        bits = 32 if definition.kind == "int" else 64
        floor = f" of at least {definition.minimum:g}" if definition.minimum is not None else ""
        return f"a {bits}-bit integer{floor}"
    if definition.kind == "double":
        return "a number" + (f" of at least {definition.minimum:g}" if definition.minimum is not None else "")
    return "a string"


def validate_topic_configs(configs: dict[str, str | None]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, value in sorted(configs.items()):
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise ConfigError(ErrorCode.invalid_config, f"Unknown topic config name: {name}")
        out[name] = None if value is None else _check_log_config(name, name, validate_value(definition, value))
    return out


def _check_log_config(topic_name: str, shown_name: str, value: str) -> str:
    """The partition log's own bounds on a value (LogConfig.check: min.cleanable.dirty.ratio in
    [0, 1], …): a value the logs would refuse must never reach the metadata log, where every
    replay would apply it again."""
    from moldau.log.config import LogConfig

    try:
        LogConfig.from_kafka_configs({topic_name: value})
    except ValueError as error:
        raise ConfigError(ErrorCode.invalid_config,
                          f"Invalid value {value} for configuration {shown_name}: {error}") from None
    return value


# The broker-level (server.properties) key of each topic config -> its definition, e.g.
# log.retention.ms -> retention.ms's: a dynamic broker config takes the same values.
BROKER_KEY_CONFIGS = {d.broker_key: d for d in TOPIC_CONFIGS.values() if d.broker_key}


def validate_broker_configs(configs: dict[str, str | None]) -> dict[str, str | None]:
    """Dynamic broker configs (topic defaults such as log.retention.ms): each value checked as
    its topic config's, under its broker name. Unknown keys are the caller's to refuse."""
    out: dict[str, str | None] = {}
    for name, value in sorted(configs.items()):
        definition = BROKER_KEY_CONFIGS.get(name)
        if value is None or definition is None:
            out[name] = value
        else:
            out[name] = _check_log_config(definition.name, name, validate_value(replace(definition, name=name), value))
    return out


def topic_config_value(name: str, overrides: dict[str, str], broker: dict[str, str],
                       broker_sources: dict[str, int] | None = None) -> tuple[str | None, int]:
    """(effective value, DescribeConfigs source) of one topic config. `broker_sources` says
    where each of the broker's values came from (static when absent)."""
    definition = TOPIC_CONFIGS[name]
    if name in overrides:
        return overrides[name], SOURCE_TOPIC
    if definition.broker_key and definition.broker_key in broker:
        source = (broker_sources or {}).get(definition.broker_key, SOURCE_STATIC_BROKER)
        return broker[definition.broker_key], source
    return definition.default, SOURCE_DEFAULT


def effective_topic_configs(overrides: dict[str, str], broker: dict[str, str]) -> dict[str, str]:
    result = {}
    for name in TOPIC_CONFIGS:
        value, _source = topic_config_value(name, overrides, broker)
        if value is not None:
            result[name] = value
    return result
