"""Dynamic broker configs: which keys IncrementalAlterConfigs/AlterConfigs may change, as Kafka.

Theory of operation. Kafka lets an admin change some broker configs at run time — "per-broker"
(resource name = a broker id) or "cluster-wide" (the default entity, empty name) — and refuses
the rest. The sets come from Kafka's own KafkaConfig and DynamicBrokerConfig
(`kafka_broker_configs.py`, generated from the jars). `validate` applies Kafka's checks in
Kafka's order, each refusal INVALID_REQUEST with Kafka's sentence:

1. a read-only key (`num.partitions`, `log.dirs`, ...): "Cannot update these configs
   dynamically: Set(...)";
2. a keystore/truststore key without a listener prefix: "These security configs can be
   dynamically updated only per-listener using the listener prefix: ...";
3. a value of the wrong type or outside its validator: "Invalid value X for configuration K:
   Not a number of type LONG" / "Value must be at least 1" / "String must be one of: ...";
4. at the cluster-wide level, a per-broker key (listeners, SASL/SSL settings, any
   `listener.name.<l>.` key): "Cannot update these configs at default cluster level, broker id
   must be specified: Set(...)".

Keys Kafka does not define are accepted (Kafka stores custom keys too). Accepted values become
ConfigRecords in the metadata log and DescribeConfigs reports them (source
DYNAMIC_BROKER_CONFIG or DYNAMIC_DEFAULT_BROKER_CONFIG). Which of them change what the broker
does: the topic defaults (`log.*`, `message.max.bytes`, `min.insync.replicas`,
`compression.type`, `unclean.leader.election.enable`) reconfigure every topic's logs at once,
and the connection limits (`max.connections`, ...) apply to the next connection (BrokerCore);
the others (thread counts, SASL/SSL, replication quotas, remote storage) are stored and
reported only. In a cluster every broker
replays the records; a per-broker key applies to the broker it names.
"""

from __future__ import annotations

import re

from kio.schema.errors import ErrorCode

from moldau.controller import kafka_broker_configs as kafka
from moldau.controller.configs import ConfigError, validate_broker_configs

_LISTENER_PREFIX = re.compile(r"^listener\.name\.([^.]+)\.(.+)$")
_RANGE = re.compile(r"^\[(-?[0-9.E]+),\.\.\.(?:,(-?[0-9.E]+))?\]( or -1)?$")
_TYPE_IDS = {"BOOLEAN": 1, "STRING": 2, "INT": 3, "SHORT": 4, "LONG": 5, "DOUBLE": 6, "LIST": 7, "CLASS": 8,
             "PASSWORD": 9}
_INTEGER_BOUNDS = {"SHORT": 2**15, "INT": 2**31, "LONG": 2**63}


def validate(changes: dict[str, str | None], per_broker: bool) -> dict[str, str | None]:
    """Kafka's checks of dynamic broker config changes (None: delete); ConfigError on refusal."""
    sets = sorted(key for key, value in changes.items() if value is not None)
    _refuse([k for k in sets if is_read_only(k)], "Cannot update these configs dynamically")
    unprefixed = [k for k in sets if k in kafka.SECURITY]
    if unprefixed:
        raise ConfigError(ErrorCode.invalid_request, "These security configs can be dynamically updated only "
                                                     f"per-listener using the listener prefix: HashSet({', '.join(unprefixed)})")
    for key in sets:
        _check_value(key, changes[key])
    if not per_broker:
        _refuse([k for k in sets if k in kafka.PER_BROKER or _LISTENER_PREFIX.match(k)],
                "Cannot update these configs at default cluster level, broker id must be specified")
    return validate_broker_configs(changes)  # topic defaults: also the partition log's own bounds


def is_dynamic(key: str) -> bool:
    match = _LISTENER_PREFIX.match(key)
    base = match.group(2) if match else key
    if match:
        return base in kafka.LISTENER or base in kafka.LISTENER_MECHANISM or base in kafka.SECURITY
    return key in kafka.DYNAMIC or key in kafka.QUOTA


def is_read_only(key: str) -> bool:
    """A key Kafka defines but does not let change at run time."""
    match = _LISTENER_PREFIX.match(key)
    if match:
        return not is_dynamic(key) and match.group(2) in kafka.READ_ONLY
    return key in kafka.READ_ONLY


def config_type(key: str) -> int:
    """DescribeConfigs' config_type of a broker key (0: unknown)."""
    match = _LISTENER_PREFIX.match(key)
    definition = kafka.KEYS.get(match.group(2) if match else key)
    return _TYPE_IDS.get(definition[0], 0) if definition else 0


def is_sensitive(key: str) -> bool:
    return config_type(key) == _TYPE_IDS["PASSWORD"]


def _refuse(keys: list[str], sentence: str) -> None:
    if keys:
        shown = ", ".join(keys)
        raise ConfigError(ErrorCode.invalid_request, f"{sentence}: {'Set' if len(keys) <= 4 else 'HashSet'}({shown})")


def _check_value(key: str, value: str) -> None:
    match = _LISTENER_PREFIX.match(key)
    definition = kafka.KEYS.get(match.group(2) if match else key)
    if definition is None:
        return  # a key Kafka does not define: kept as given
    kind, _default, validator = definition
    text = value.strip()
    number = _parse(key, text, kind)
    if validator is None:
        return
    problem = _range_problem(validator, number) if _RANGE.match(validator) else _choice_problem(validator, text, kind)
    if problem:
        raise ConfigError(ErrorCode.invalid_request, f"Invalid value {text} for configuration {key}: {problem}")


def _parse(key: str, text: str, kind: str) -> float | None:
    def bad(reason: str) -> ConfigError:
        return ConfigError(ErrorCode.invalid_request, f"Invalid value {text} for configuration {key}: {reason}")

    if kind == "BOOLEAN":
        if text.lower() not in ("true", "false"):
            raise bad("Expected value to be either true or false")
        return None
    if kind in _INTEGER_BOUNDS:
        try:
            number = int(text)
        except ValueError:
            raise bad(f"Not a number of type {kind}") from None
        if not -_INTEGER_BOUNDS[kind] <= number < _INTEGER_BOUNDS[kind]:
            raise bad(f"Not a number of type {kind}")
        return number
    if kind == "DOUBLE":
        try:
            return float(text)
        except ValueError:
            raise bad("Not a number of type DOUBLE") from None
    return None


def _range_problem(validator: str, number: float | None) -> str | None:
    low, high, or_minus_one = _RANGE.match(validator).groups()
    if number is None or (or_minus_one and number == -1):
        return None
    if high is not None and or_minus_one and not float(low) <= number <= float(high):
        return f"Value must be between {low} and {high}, or -1"
    if number < float(low):
        return f"Value must be at least {low}"
    if high is not None and number > float(high):
        return f"Value must be no more than {high}"
    return None


def _choice_problem(validator: str, text: str, kind: str) -> str | None:
    if not (validator.startswith("[") and validator.endswith("]")):
        return None
    choices = [choice.strip() for choice in validator[1:-1].split(",")]
    items = [item.strip() for item in text.split(",") if item.strip()] if kind == "LIST" else [text]
    for item in items:
        if item not in choices:
            return f"String must be one of: {', '.join(choices)}"
    return None
