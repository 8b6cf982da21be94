"""Converters: Kafka's JsonConverter bytes, StringConverter, ByteArrayConverter."""

import pytest

from moldau.connect.converters import ByteArrayConverter, JsonConverter, StringConverter, dumps_jackson
from moldau.connect.data import DataError, Schema, Struct


def json_converter(schemas_enable="true", is_key=False):
    converter = JsonConverter()
    converter.configure({"schemas.enable": schemas_enable}, is_key)
    return converter


def test_string_envelope_is_byte_exact():
    data = json_converter().from_connect_data("t", Schema.STRING, "foo")
    assert data == b'{"schema":{"type":"string","optional":false},"payload":"foo"}'
    assert json_converter().to_connect_data("t", data) == (Schema.STRING, "foo")


def test_schemas_disabled_writes_bare_payload():
    assert json_converter("false").from_connect_data("t", Schema.STRING, "foo") == b'"foo"'
    assert json_converter("false").to_connect_data("t", b'{"a":[1,2.5,null]}') == (None, {"a": [1, 2.5, None]})


def test_null_without_schema_is_a_null_record():
    assert json_converter().from_connect_data("t", None, None) is None
    assert json_converter().to_connect_data("t", None) == (None, None)


def test_optional_null_keeps_envelope():
    data = json_converter().from_connect_data("t", Schema.OPTIONAL_STRING, None)
    assert data == b'{"schema":{"type":"string","optional":true},"payload":null}'


def test_schemaless_value_with_schemas_enabled():
    data = json_converter().from_connect_data("t", None, {"a": 1})
    assert data == b'{"schema":null,"payload":{"a":1}}'


def test_struct_schema_key_order_matches_kafka():
    schema = Schema(
        "struct", name="com.example.Point", version=2, doc="a point", parameters=(("p", "v"),),
        fields=Schema.struct([("x", Schema.INT32), ("label", Schema.OPTIONAL_STRING)]).fields,
    )
    value = Struct(schema).put("x", 3)
    data = json_converter().from_connect_data("t", schema, value)
    assert data == (
        b'{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"x"},'
        b'{"type":"string","optional":true,"field":"label"}],"optional":false,"name":"com.example.Point",'
        b'"version":2,"doc":"a point","parameters":{"p":"v"}},"payload":{"x":3,"label":null}}'
    )
    schema_back, value_back = json_converter().to_connect_data("t", data)
    assert schema_back == schema and value_back == value


def test_array_map_and_bytes():
    schema = Schema.struct([
        ("items", Schema.array(Schema.INT64)),
        ("names", Schema.map(Schema.STRING, Schema.BOOLEAN)),
        ("pairs", Schema.map(Schema.INT32, Schema.STRING)),
        ("raw", Schema.BYTES),
    ])
    value = Struct(schema).put("items", [1, 2]).put("names", {"a": True}).put("pairs", {7: "x"}).put("raw", b"\x00\xff")
    data = json_converter().from_connect_data("t", schema, value)
    assert b'"payload":{"items":[1,2],"names":{"a":true},"pairs":[[7,"x"]],"raw":"AP8="}' in data
    assert b'{"type":"array","items":{"type":"int64","optional":false},"optional":false,"field":"items"}' in data
    assert json_converter().to_connect_data("t", data)[1] == value


@pytest.mark.parametrize("value, text", [
    (1.0, "1.0"), (100.0, "100.0"), (0.001, "0.001"), (0.0001, "1.0E-4"), (1e7, "1.0E7"),
    (1.25e-5, "1.25E-5"), (123456.789, "123456.789"), (-0.0, "-0.0"), (12345678.9, "1.23456789E7"),
    (float("nan"), '"NaN"'), (float("-inf"), '"-Infinity"'),
])
def test_doubles_written_like_java(value, text):
    assert dumps_jackson(value) == text


def test_float32_uses_shortest_single_precision_digits():
    data = json_converter("false").from_connect_data("t", Schema.FLOAT32, 0.1)
    assert data == b"0.1"
    assert json_converter("false").from_connect_data("t", Schema.FLOAT64, 0.1) == b"0.1"


def test_string_escaping_like_jackson():
    assert dumps_jackson('a"b\\c\n\t\x01\x1f é €/') == '"a\\"b\\\\c\\n\\t\\u0001\\u001F é €/"'
    assert dumps_jackson("clef 𝄞 \U0010FFFF") == '"clef \\uD834\\uDD1E \\uDBFF\\uDFFF"'


def test_required_null_is_an_error():
    with pytest.raises(DataError, match="null value"):
        json_converter().from_connect_data("t", Schema.STRING, None)


def test_wrong_type_for_schema_is_an_error():
    with pytest.raises(DataError):
        json_converter().from_connect_data("t", Schema.INT32, "nope")
    with pytest.raises(DataError):
        json_converter().from_connect_data("t", Schema.INT8, 300)


def test_envelope_required_when_schemas_enabled():
    with pytest.raises(DataError, match="schemas.enable=false"):
        json_converter().to_connect_data("t", b'{"a":1}')
    with pytest.raises(DataError, match="serialization error"):
        json_converter().to_connect_data("t", b"{not json")


def test_bad_schemas_enable_value():
    with pytest.raises(DataError, match="schemas.enable"):
        json_converter("yes")


def test_string_converter():
    converter = StringConverter()
    converter.configure({}, False)
    assert converter.from_connect_data("t", Schema.STRING, "héllo") == "héllo".encode()
    assert converter.from_connect_data("t", Schema.INT32, 42) == b"42"
    assert converter.from_connect_data("t", None, None) is None
    assert converter.to_connect_data("t", "héllo".encode()) == (Schema.OPTIONAL_STRING, "héllo")
    with pytest.raises(DataError):
        converter.to_connect_data("t", b"\xff\xfe")


def test_byte_array_converter():
    converter = ByteArrayConverter()
    converter.configure({}, True)
    assert converter.from_connect_data("t", Schema.BYTES, b"\x00\x01") == b"\x00\x01"
    assert converter.to_connect_data("t", b"\x02") == (Schema.OPTIONAL_BYTES, b"\x02")
    with pytest.raises(DataError, match="not compatible"):
        converter.from_connect_data("t", Schema.STRING, "text")
