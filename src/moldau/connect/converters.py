"""Converters: Connect `(schema, value)` pairs to Kafka record bytes and back.

Theory of operation: a worker configures one converter for keys and one for values
(`key.converter`, `value.converter`, settings under the `key.converter.` / `value.converter.`
prefixes). Source records go `from_connect_data` → producer; consumed bytes go
`to_connect_data` → sink task. Three converters come with Kafka and with us:

- `JsonConverter` writes what Kafka's does, byte for byte: compact JSON (no blanks), and with
  `schemas.enable=true` (the default) the envelope `{"schema":…,"payload":…}` with schema keys in
  Kafka's order (`type`, then `fields`/`items`/`keys`/`values`, `optional`, `name`, `version`,
  `doc`, `parameters`, `default`; struct fields carry their name last as `field`). Strings are
  escaped as Jackson does (short escapes for \\b \\t \\n \\f \\r, `\\u00XX` with upper-case hex for
  other control characters, an escaped surrogate pair for characters beyond U+FFFF, everything
  else raw UTF-8); doubles and floats are written like Java's
  `Double.toString`/`Float.toString` (`1.0E7`, `1.0E-4`), NaN and infinities as strings; bytes
  as base64. A null value without schema is a null record (a tombstone), as in Kafka.
- `StringConverter`: UTF-8 text of the value (`converter.encoding` may change the charset).
- `ByteArrayConverter`: bytes pass through untouched.

Kafka's logical types (Decimal, Date, Time, Timestamp) are carried as their underlying physical
values (bytes or integers); this module does not convert them to Python decimals or datetimes.
"""

from __future__ import annotations

import base64
import decimal
import functools
import json
import math
import re
import struct
from json.encoder import encode_basestring
from typing import Any

from moldau.connect.data import DataError, Schema, Struct, infer_type, validate


class Converter:
    """Base class: subclass and name the class in `key.converter` / `value.converter`."""

    def configure(self, config: dict[str, str], is_key: bool) -> None:
        self.is_key = is_key

    def from_connect_data(self, topic: str, schema: Schema | None, value: Any) -> bytes | None:
        raise NotImplementedError

    def to_connect_data(self, topic: str, data: bytes | None) -> tuple[Schema | None, Any]:
        raise NotImplementedError


class StringConverter(Converter):
    def configure(self, config: dict[str, str], is_key: bool) -> None:
        super().configure(config, is_key)
        self.encoding = config.get("converter.encoding", "UTF-8")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise DataError(f"converter.encoding: unknown encoding {self.encoding!r}") from None

    def from_connect_data(self, topic, schema, value):
        if value is None:
            return None
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode(self.encoding, errors="replace")
        return str(value).encode(self.encoding)

    def to_connect_data(self, topic, data):
        if data is None:
            return Schema.OPTIONAL_STRING, None
        try:
            return Schema.OPTIONAL_STRING, bytes(data).decode(self.encoding)
        except UnicodeDecodeError as error:
            raise DataError(f"StringConverter: bytes are not valid {self.encoding}: {error}") from None


class ByteArrayConverter(Converter):
    def from_connect_data(self, topic, schema, value):
        if schema is not None and schema.type != "bytes":
            raise DataError(f"ByteArrayConverter is not compatible with schema type {schema.type}")
        if value is not None and not isinstance(value, (bytes, bytearray)):
            raise DataError(f"ByteArrayConverter is not compatible with objects of type {type(value).__name__}")
        return None if value is None else bytes(value)

    def to_connect_data(self, topic, data):
        return Schema.OPTIONAL_BYTES, None if data is None else bytes(data)


class JsonConverter(Converter):
    def configure(self, config: dict[str, str], is_key: bool) -> None:
        super().configure(config, is_key)
        flag = str(config.get("schemas.enable", "true")).strip().lower()
        if flag not in ("true", "false"):
            raise DataError(f"schemas.enable: expected true or false, got {flag!r}")
        self.schemas_enable = flag == "true"

    def from_connect_data(self, topic, schema, value):
        if schema is None and value is None:
            return None
        payload = dumps_jackson(to_json_value(schema, value))
        if not self.schemas_enable:
            return payload.encode("utf-8")
        return ('{"schema":' + schema_text(schema) + ',"payload":' + payload + "}").encode("utf-8")

    def to_connect_data(self, topic, data):
        if data is None:
            return None, None
        try:
            node = json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise DataError("Converting byte[] to Kafka Connect data failed due to serialization error: "
                            f"{error}") from None
        if not self.schemas_enable:
            return None, from_json_value(None, node)
        if not isinstance(node, dict) or set(node) != {"schema", "payload"}:
            raise DataError(
                'JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain '
                "additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false "
                "in your converter configuration."
            )
        schema = _cached_schema_from_json(node["schema"])
        return schema, from_json_value(schema, node["payload"])


# --- schemas ----------------------------------------------------------------------------------

def schema_text(schema: Schema | None) -> str:
    """The envelope's schema as JSON text; computed once per schema (records share few schemas)."""
    try:
        return _cached_schema_text(schema)
    except TypeError:  # a default value that cannot be hashed (a list or dict): no caching
        return dumps_jackson(schema_to_json(schema))


@functools.lru_cache(maxsize=1024)
def _cached_schema_text(schema: Schema | None) -> str:
    return dumps_jackson(schema_to_json(schema))


def schema_to_json(schema: Schema | None) -> dict | None:
    """Kafka's JsonConverter.asJsonSchema: the key order is part of the byte-exact contract."""
    if schema is None:
        return None
    node: dict[str, Any] = {"type": schema.type}
    if schema.type == "array":
        node["items"] = schema_to_json(schema.value_schema)
    elif schema.type == "map":
        node["keys"] = schema_to_json(schema.key_schema)
        node["values"] = schema_to_json(schema.value_schema)
    elif schema.type == "struct":
        node["fields"] = [dict(schema_to_json(f.schema), field=f.name) for f in schema.fields]
    node["optional"] = schema.optional
    if schema.name is not None:
        node["name"] = schema.name
    if schema.version is not None:
        node["version"] = schema.version
    if schema.doc is not None:
        node["doc"] = schema.doc
    if schema.parameters is not None:
        node["parameters"] = dict(schema.parameters)
    if schema.default is not None:
        node["default"] = to_json_value(schema, schema.default)
    return node


def _cached_schema_from_json(node: Any) -> Schema | None:
    """schema_from_json, remembered per distinct schema (records of a topic share a few)."""
    if node is None:
        return None
    return _schema_from_frozen(_freeze(node))


def _freeze(node: Any) -> Any:
    if isinstance(node, dict):
        return ("{", tuple((k, _freeze(v)) for k, v in node.items()))
    if isinstance(node, list):
        return ("[", tuple(_freeze(v) for v in node))
    return (type(node).__name__, node)  # keeps True apart from 1


def _thaw(frozen: Any) -> Any:
    kind, value = frozen
    if kind == "{":
        return {k: _thaw(v) for k, v in value}
    if kind == "[":
        return [_thaw(v) for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def _schema_from_frozen(frozen: Any) -> Schema | None:
    return schema_from_json(_thaw(frozen))


def schema_from_json(node: Any) -> Schema | None:
    if node is None:
        return None
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        raise DataError("Schema must contain 'type' field")
    kind = node["type"]
    if kind == "double":
        kind = "float64"
    elif kind == "float":
        kind = "float32"
    extra = _schema_children_from_json(kind, node)
    params = node.get("parameters")
    if params is not None and (not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values())):
        raise DataError("Schema parameters must have string values.")
    try:
        schema = Schema(
            kind,
            optional=node.get("optional") is True,
            name=node.get("name") if isinstance(node.get("name"), str) else None,
            version=node.get("version") if isinstance(node.get("version"), int) else None,
            doc=node.get("doc") if isinstance(node.get("doc"), str) else None,
            parameters=tuple(params.items()) if params else None,
            **extra,
        )
    except DataError:
        raise DataError(f"Unknown schema type: {node['type']}") from None
    if node.get("default") is not None:
        schema = _with_default(schema, from_json_value(schema, node["default"]))
    return schema


def _with_default(schema: Schema, default: Any) -> Schema:
    from dataclasses import replace

    return replace(schema, default=default)


def _schema_children_from_json(kind: str, node: dict) -> dict[str, Any]:
    if kind == "array":
        if node.get("items") is None:
            raise DataError("Array schema did not specify the element type")
        return {"value_schema": schema_from_json(node["items"])}
    if kind == "map":
        if "keys" not in node or "values" not in node:
            raise DataError("Map schema did not specify the key and value types")
        return {"key_schema": schema_from_json(node["keys"]), "value_schema": schema_from_json(node["values"])}
    if kind == "struct":
        fields = node.get("fields")
        if not isinstance(fields, list):
            raise DataError("Struct schema's \"fields\" argument is not an array.")
        built = []
        for field_node in fields:
            if not isinstance(field_node, dict) or not isinstance(field_node.get("field"), str):
                raise DataError("Struct schema's field name not specified properly")
            built.append((field_node["field"], schema_from_json(field_node)))
        return {"fields": Schema.struct(built).fields}
    return {}


# --- values -----------------------------------------------------------------------------------

class _Float32(float):
    """Marks a float to be written the way Java writes a `float` (shortest single-precision digits)."""


def to_json_value(schema: Schema | None, value: Any) -> Any:
    """Connect value → JSON-ready tree (Kafka's convertToJson)."""
    if value is None:
        if schema is None:
            return None
        if schema.default is not None:
            return to_json_value(schema, schema.default)
        if schema.optional:
            return None
        raise DataError("Conversion error: null value for field that is required and has no default value")
    kind = schema.type if schema is not None else infer_type(value)
    if schema is not None:
        validate(schema, value)
    if kind in ("int8", "int16", "int32", "int64", "boolean", "string"):
        return value
    if kind in ("float32", "float64"):
        return _Float32(value) if kind == "float32" else float(value)
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "array":
        items = schema.value_schema if schema is not None else None
        return [to_json_value(items, item) for item in value]
    if kind == "map":
        return _map_to_json(schema, value)
    if not isinstance(value, Struct) or (schema is not None and value.schema != schema):
        raise DataError("Mismatching schema.")
    return {f.name: to_json_value(f.schema, value.get(f.name)) for f in value.schema.fields}


def _map_to_json(schema: Schema | None, value: dict) -> Any:
    key_schema = schema.key_schema if schema is not None else None
    value_schema = schema.value_schema if schema is not None else None
    string_keys = key_schema.type == "string" if key_schema is not None else all(isinstance(k, str) for k in value)
    if string_keys:
        return {k: to_json_value(value_schema, v) for k, v in value.items()}
    return [[to_json_value(key_schema, k), to_json_value(value_schema, v)] for k, v in value.items()]


def from_json_value(schema: Schema | None, node: Any) -> Any:
    """JSON tree → Connect value (Kafka's convertToConnect)."""
    if node is None:
        if schema is None:
            return None
        if schema.default is not None:
            return schema.default
        if schema.optional:
            return None
        raise DataError(f"Invalid null value for required {schema.type} field")
    if schema is None:
        return node
    kind = schema.type
    if kind in ("int8", "int16", "int32", "int64"):
        return _expect(node, int, kind, lambda n: not isinstance(n, bool))
    if kind in ("float32", "float64"):
        return float(_expect(node, (int, float, str), kind, lambda n: not isinstance(n, bool)))
    if kind in ("boolean", "string"):
        return _expect(node, bool if kind == "boolean" else str, kind)
    if kind == "bytes":
        try:
            return base64.b64decode(_expect(node, str, kind), validate=True)
        except ValueError:
            raise DataError("Invalid base64 in a bytes field") from None
    if kind == "array":
        return [from_json_value(schema.value_schema, item) for item in _expect(node, list, kind)]
    if kind == "map":
        return _map_from_json(schema, node)
    struct_value = Struct(schema)
    for f in schema.fields:
        struct_value.put(f.name, from_json_value(f.schema, _expect(node, dict, kind).get(f.name)))
    return struct_value


def _map_from_json(schema: Schema, node: Any) -> dict:
    if isinstance(node, dict) and schema.key_schema.type == "string":
        return {k: from_json_value(schema.value_schema, v) for k, v in node.items()}
    pairs = _expect(node, list, "map")
    result = {}
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise DataError("Found invalid map entry instead of array tuple")
        result[from_json_value(schema.key_schema, pair[0])] = from_json_value(schema.value_schema, pair[1])
    return result


def _expect(node: Any, kinds, name: str, extra=lambda n: True) -> Any:
    if not isinstance(node, kinds) or not extra(node):
        raise DataError(f"Invalid JSON for {name}: {json.dumps(node)[:60]}")
    return node


# --- Jackson-compatible text ------------------------------------------------------------------

_CONTROL_ESCAPE = re.compile(r"\\u00[0-9a-f]{2}|\\.")


def dumps_jackson(node: Any) -> str:
    """Compact JSON text as Jackson's ObjectMapper writes it."""
    if node is None:
        return "null"
    if node is True:
        return "true"
    if node is False:
        return "false"
    if isinstance(node, float):
        return _java_float_text(node)
    if isinstance(node, int):
        return str(node)
    if isinstance(node, str):
        return _jackson_string(node)
    if isinstance(node, dict):
        return "{" + ",".join(_jackson_string(k) + ":" + dumps_jackson(v) for k, v in node.items()) + "}"
    if isinstance(node, (list, tuple)):
        return "[" + ",".join(dumps_jackson(item) for item in node) + "]"
    raise DataError(f"cannot write {type(node).__name__} as JSON")


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def _jackson_string(text: str) -> str:
    """Jackson's escaping: control characters as `\\u00XX` (upper-case hex), and characters outside
    the Basic Multilingual Plane as an escaped surrogate pair (`\\uD834\\uDD1E`), as Kafka's
    JsonConverter writes them (checked against Kafka 4.1.1)."""
    encoded = encode_basestring(text)  # json.dumps(text, ensure_ascii=False) without its set-up cost
    encoded = _CONTROL_ESCAPE.sub(_upper_hex, encoded)
    return _ASTRAL.sub(_surrogate_escape, encoded)


def _upper_hex(match: re.Match) -> str:
    token = match.group(0)  # `\\u00xx`, or a two-character escape left as it is
    return "\\u" + token[2:].upper() if len(token) == 6 else token


def _surrogate_escape(match: re.Match) -> str:
    code = ord(match.group(0)) - 0x10000
    return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"


def _java_float_text(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    digits_text = _shortest_float32(value) if isinstance(value, _Float32) else repr(float(value))
    sign, digits, exponent = decimal.Decimal(digits_text).as_tuple()
    digits = "".join(map(str, digits)).rstrip("0") or "0"
    # position of the decimal point relative to the first digit, for value = 0.d1d2… × 10^point
    point = len(decimal.Decimal(digits_text).as_tuple().digits) + exponent
    prefix = "-" if sign else ""
    magnitude = abs(float(value))
    if magnitude == 0 or 1e-3 <= magnitude < 1e7:
        return prefix + _plain_decimal(digits, point if magnitude != 0 else 1)
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{prefix}{mantissa}E{point - 1}"


def _plain_decimal(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * (-point) + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits)) + ".0"
    return digits[:point] + "." + digits[point:]


def _shortest_float32(value: float) -> str:
    target = struct.unpack("<f", struct.pack("<f", value))[0]
    for precision in range(1, 10):
        text = f"{target:.{precision - 1}e}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == target:
            return text
    return repr(target)


CONVERTER_CLASSES = {
    "org.apache.kafka.connect.json.JsonConverter": JsonConverter,
    "org.apache.kafka.connect.storage.StringConverter": StringConverter,
    "org.apache.kafka.connect.converters.ByteArrayConverter": ByteArrayConverter,
}
