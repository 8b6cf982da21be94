"""Kafka Connect's data model: schemas and structs, as plain Python values.

Theory of operation: a record's key and value travel through Connect as a `(schema, value)` pair.
The schema says what the value is (`Schema.STRING`, a struct with fields, an array of int32…);
the value is a plain Python object: `str`, `int`, `float`, `bool`, `bytes`, `list`, `dict`, or a
`Struct` for struct schemas. A schema of `None` means "schemaless": the converter infers the type
from the Python value. Converters (`moldau.connect.converters`) turn these pairs into bytes and
back; connectors never see bytes unless they use `ByteArrayConverter`.

Schemas are frozen and hashable, so they can be shared and compared; `Schema.STRING` and friends
are the required (non-optional) primitive schemas, `Schema.OPTIONAL_STRING` etc. the optional ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PRIMITIVE_TYPES = ("int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string", "bytes")
TYPES = PRIMITIVE_TYPES + ("array", "map", "struct")

_INT_BOUNDS = {"int8": 7, "int16": 15, "int32": 31, "int64": 63}


class DataError(ValueError):
    """A value that does not fit its schema, or bytes a converter cannot read (Kafka's DataException)."""


@dataclass(frozen=True)
class Field:
    name: str
    schema: "Schema"


@dataclass(frozen=True)
class Schema:
    """A Connect schema. Build complex ones with `Schema.struct([...])`, `Schema.array(...)`, `Schema.map(...)`."""

    type: str
    optional: bool = False
    name: str | None = None
    version: int | None = None
    doc: str | None = None
    parameters: tuple[tuple[str, str], ...] | None = None
    default: Any = None
    fields: tuple[Field, ...] = ()
    key_schema: "Schema | None" = None
    value_schema: "Schema | None" = None

    def __post_init__(self):
        if self.type not in TYPES:
            raise DataError(f"unknown schema type {self.type!r}; expected one of {', '.join(TYPES)}")

    @staticmethod
    def struct(fields: list[tuple[str, "Schema"]], optional: bool = False, name: str | None = None) -> "Schema":
        return Schema("struct", optional=optional, name=name, fields=tuple(Field(n, s) for n, s in fields))

    @staticmethod
    def array(items: "Schema", optional: bool = False) -> "Schema":
        return Schema("array", optional=optional, value_schema=items)

    @staticmethod
    def map(keys: "Schema", values: "Schema", optional: bool = False) -> "Schema":
        return Schema("map", optional=optional, key_schema=keys, value_schema=values)

    def field(self, name: str) -> Field:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise DataError(f"{name!r} is not a field of this struct schema")

    def validate(self, value: Any) -> None:
        """Raise DataError unless `value` fits this schema (None fits optional schemas)."""
        validate(self, value)


for _type in PRIMITIVE_TYPES:
    setattr(Schema, _type.upper() if _type != "boolean" else "BOOLEAN", Schema(_type))
    setattr(Schema, "OPTIONAL_" + _type.upper(), Schema(_type, optional=True))


@dataclass(eq=False)
class Struct:
    """A value of a struct schema: field values by name, checked against the schema on `put`."""

    schema: Schema
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.schema.type != "struct":
            raise DataError("a Struct needs a struct schema")

    def put(self, name: str, value: Any) -> "Struct":
        validate(self.schema.field(name).schema, value)
        self.values[name] = value
        return self

    def get(self, name: str) -> Any:
        found = self.schema.field(name)
        value = self.values.get(name)
        return found.schema.default if value is None else value

    def __eq__(self, other: object) -> bool:
        """Equal when the schemas are and every field reads the same (an unset field reads as None)."""
        if not isinstance(other, Struct) or other.schema != self.schema:
            return NotImplemented if not isinstance(other, Struct) else False
        return all(self.get(f.name) == other.get(f.name) for f in self.schema.fields)


def validate(schema: Schema, value: Any) -> None:
    if value is None:
        if not schema.optional and schema.default is None:
            raise DataError(f"null value for a required {schema.type} schema")
        return
    kind = schema.type
    if kind in _INT_BOUNDS:
        bits = _INT_BOUNDS[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not -(1 << bits) <= value < (1 << bits):
            raise DataError(f"{value!r} is not a valid {kind}")
    elif kind in ("float32", "float64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{value!r} is not a valid {kind}")
    elif kind in ("boolean", "string", "bytes"):
        expected = {"boolean": bool, "string": str, "bytes": (bytes, bytearray)}[kind]
        if not isinstance(value, expected):
            raise DataError(f"{type(value).__name__} value {value!r:.40} is not a valid {kind}")
    elif kind == "array":
        _validate_array(schema, value)
    elif kind == "map":
        if not isinstance(value, dict):
            raise DataError(f"{type(value).__name__} is not a valid map")
        for key, item in value.items():
            validate(schema.key_schema, key)
            validate(schema.value_schema, item)
    elif not isinstance(value, Struct) or value.schema != schema:
        raise DataError("a struct value must be a Struct with the same schema")


def _validate_array(schema: Schema, value: Any) -> None:
    if not isinstance(value, (list, tuple)):
        raise DataError(f"{type(value).__name__} is not a valid array")
    for item in value:
        validate(schema.value_schema, item)


def infer_type(value: Any) -> str:
    """The schema type of a schemaless value (Kafka's ConnectSchema.schemaType for Java classes)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int64" if not -(1 << 31) <= value < (1 << 31) else "int32"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, Struct):
        return "struct"
    raise DataError(f"Python type {type(value).__name__} has no corresponding schema type")
