"""Build a version-specific kio response from a version-agnostic description.

Handlers describe a response once, as nested dicts with Kafka's field names (snake_case as in
kio), covering the fields of every version they serve. `build(ResponseClass, data)` keeps the
fields that this version declares, converts plain values into the types kio writes (error
codes, millisecond durations and timestamps, UUIDs), and recurses into nested structures using
the version's own nested classes. A field that the version requires but the description lacks
is our bug and raises.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import MISSING, fields
from functools import lru_cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.serial._introspect import EntityField, EntityTupleField, classify_field

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _error_code(value: Any) -> ErrorCode:
    return value if isinstance(value, ErrorCode) else ErrorCode(int(value))


def _timedelta(value: Any) -> datetime.timedelta:
    return value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)


def _datetime(value: Any) -> Any:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return _EPOCH + datetime.timedelta(milliseconds=value)


def _uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


_CONVERTERS = {
    "error_code": _error_code,
    "timedelta_i32": _timedelta,
    "timedelta_i64": _timedelta,
    "datetime_i64": _datetime,
    "uuid": _uuid,
}


@lru_cache(maxsize=None)
def _plan(cls: type) -> tuple:
    plan = []
    for field in fields(cls):
        kind = classify_field(field)
        required = field.default is MISSING and field.default_factory is MISSING  # type: ignore[misc]
        if isinstance(kind, EntityField):
            plan.append((field.name, "entity", kind.type_, required))
        elif isinstance(kind, EntityTupleField):
            plan.append((field.name, "entities", kind.type_, required))
        else:
            converter = _CONVERTERS.get(field.metadata.get("kafka_type", ""))
            tuple_of = kind.is_array
            plan.append((field.name, "tuple" if tuple_of else "value", converter, required))
    return tuple(plan)


def build(cls: type, data: dict[str, Any]) -> Any:
    """An instance of kio class `cls` from `data` (extra keys are ignored)."""
    values = {}
    for name, kind, extra, required in _plan(cls):
        if name not in data:
            if required:
                raise TypeError(f"{cls.__qualname__} v{getattr(cls, '__version__', '?')} needs {name!r}")
            continue
        value = data[name]
        if kind == "entity":
            value = None if value is None else build(extra, value)
        elif kind == "entities":
            value = None if value is None else tuple(build(extra, item) for item in value)
        elif kind == "tuple":
            value = None if value is None else tuple(extra(v) for v in value) if extra else tuple(value)
        elif extra is not None:
            value = extra(value)
        values[name] = value
    return cls(**values)
