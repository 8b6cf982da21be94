"""Sans-IO Kafka wire codec: frames, request headers, request bodies, response frames.

Theory of operation. A Kafka connection carries size-prefixed frames (int32 length, then the
payload). A request payload is a header — api_key, api_version, correlation_id, client_id and,
for flexible ("compact") versions, a tagged-field section — followed by the body. Message
layouts are declared, not hand-packed: the bodies are kio's dataclasses, generated from Kafka's
own JSON schemas, read by kio's native parser.

kio's parser raises on a tagged field it does not know, while the protocol says unknown tags
must be skipped (they are how newer clients extend old versions). So when the fast path fails
on an unknown tag, `read_body` re-reads the body with `_TolerantReader`, a slower reader that
walks the same dataclass declarations and skips what it does not know. Request headers are
parsed by hand (a handful of fixed fields) because every request pays for them.

Responses are written with kio's writer; the response header is v1 (with an empty tag section)
for flexible versions, except ApiVersions, whose response header is always v0 so that a client
can parse it before it knows which versions the broker speaks.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    classify_field,
    get_field_tag,
    is_optional,
)
from kio.serial._parse import get_field_reader

from moldau import limits

_HEADER_FIXED = struct.Struct(">hhih")  # api_key, api_version, correlation_id, client_id length
_INT32 = struct.Struct(">i")
API_VERSIONS_KEY = 18


class MalformedRequest(Exception):
    """The peer sent bytes that do not parse as the request it announced."""


class UnsupportedVersion(Exception):
    """A request for an API or version this broker does not serve."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int


def read_uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Return (value, new position) of an unsigned varint at `pos`."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise MalformedRequest("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise MalformedRequest("varint too long")


def write_uvarint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def skip_tagged_fields(buf: bytes | memoryview, pos: int) -> int:
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        pos += size
        if pos > len(buf):
            raise MalformedRequest("tagged field runs past the end of the frame")
    return pos


@lru_cache(maxsize=None)
def request_schema(api_key: int, api_version: int) -> type:
    return load_request_schema(api_key, api_version)


@lru_cache(maxsize=None)
def response_schema(api_key: int, api_version: int) -> type:
    return load_response_schema(api_key, api_version)


def is_flexible(api_key: int, api_version: int) -> bool:
    try:
        return bool(request_schema(api_key, api_version).__flexible__)
    except Exception:
        return False


def read_request_header(payload: bytes | memoryview, flexible: bool | None = None) -> RequestHeader:
    """Parse a request header. `flexible=None` decides from the api key and version."""
    if len(payload) < _HEADER_FIXED.size:
        raise MalformedRequest("request shorter than its header")
    api_key, api_version, correlation_id, client_id_len = _HEADER_FIXED.unpack_from(payload, 0)
    pos = _HEADER_FIXED.size
    client_id = None
    if client_id_len >= 0:
        end = pos + client_id_len
        if end > len(payload):
            raise MalformedRequest("client_id runs past the end of the frame")
        client_id = bytes(payload[pos:end]).decode("utf-8", "replace")
        pos = end
    elif client_id_len != -1:
        raise MalformedRequest("negative client_id length")
    if flexible is None:
        flexible = is_flexible(api_key, api_version)
    if flexible:
        pos = skip_tagged_fields(payload, pos)
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def read_body(schema: type, payload: bytes | memoryview, offset: int) -> Any:
    """Parse a request body; unknown tagged fields are skipped, malformed bytes raise."""
    try:
        value, _size = entity_reader(schema)(payload, offset)
        return value
    except KeyError as error:
        if "Unknown tagged field" not in str(error):
            raise MalformedRequest(str(error)) from None
    except Exception as error:  # kio raises a variety of types on bad input
        raise MalformedRequest(f"{type(error).__name__}: {error}") from None
    try:
        value, _pos = _TolerantReader(payload).entity(schema, offset)
        return value
    except MalformedRequest:
        raise
    except Exception as error:
        raise MalformedRequest(f"{type(error).__name__}: {error}") from None


class _TolerantReader:
    """Reads a kio entity field by field, skipping tagged fields the declaration lacks."""

    def __init__(self, buf: bytes | memoryview):
        self.buf = buf

    def entity(self, schema: type, pos: int) -> tuple[Any, int]:
        flexible = bool(schema.__flexible__)
        values: dict[str, Any] = {}
        tagged: dict[int, Any] = {}
        for field in fields(schema):
            tag = get_field_tag(field)
            if tag is not None:
                tagged[tag] = field
                continue
            values[field.name], pos = self.field(schema, field, flexible, pos)
        if flexible:
            pos = self.tagged_section(schema, tagged, values, pos)
        return schema(**values), pos

    def field(self, schema: type, field: Any, flexible: bool, pos: int) -> tuple[Any, int]:
        kind = classify_field(field)
        if isinstance(kind, EntityField):
            if is_optional(field):
                marker = struct.unpack_from(">b", self.buf, pos)[0]
                pos += 1
                if marker < 0:
                    return None, pos
            return self.entity(kind.type_, pos)
        if isinstance(kind, EntityTupleField):
            count, pos = self.array_length(flexible, pos)
            if count < 0:
                return (None if is_optional(field) else ()), pos
            items = []
            for _ in range(count):
                item, pos = self.entity(kind.type_, pos)
                items.append(item)
            return tuple(items), pos
        reader = get_field_reader(schema, field, schema.__name__ == "RequestHeader", False)
        value, size = reader(self.buf, pos)
        return value, pos + size

    def array_length(self, flexible: bool, pos: int) -> tuple[int, int]:
        if flexible:
            count, pos = read_uvarint(self.buf, pos)
            count -= 1
        else:
            count = _INT32.unpack_from(self.buf, pos)[0]
            pos += 4
        if count > len(self.buf):
            raise MalformedRequest("array longer than the frame")
        return count, pos

    def tagged_section(self, schema: type, tagged: dict, values: dict, pos: int) -> int:
        count, pos = read_uvarint(self.buf, pos)
        for _ in range(count):
            tag, pos = read_uvarint(self.buf, pos)
            size, pos = read_uvarint(self.buf, pos)
            field = tagged.get(tag)
            if field is not None:
                reader = get_field_reader(schema, field, False, True)
                values[field.name], _ = reader(self.buf, pos)
            pos += size
            if pos > len(self.buf):
                raise MalformedRequest("tagged field runs past the end of the frame")
        return pos


def response_header_flexible(api_key: int, api_version: int) -> bool:
    return api_key != API_VERSIONS_KEY and is_flexible(api_key, api_version)


def encode_response(correlation_id: int, flexible_header: bool, response: Any) -> bytes:
    """A whole response frame (size prefix, header, body) for a kio response entity."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    buffer.write(_INT32.pack(correlation_id))
    if flexible_header:
        buffer.write(b"\0")
    entity_writer(type(response))(buffer, response)
    frame = buffer.getbuffer()
    _INT32.pack_into(frame, 0, len(frame) - 4)
    del frame
    return buffer.getvalue()


def frame_size(prefix: bytes) -> int:
    """The payload length announced by a 4-byte frame prefix, checked against our limit."""
    (size,) = _INT32.unpack(prefix)
    if size < 0:
        raise MalformedRequest(f"negative frame size {size}")
    return size


def check_frame_size(size: int, maximum: int = limits.frame_bytes_max) -> None:
    if size > maximum:
        raise MalformedRequest(f"frame of {size} bytes is over the {maximum}-byte limit")


# --- the client side: requests this node sends other nodes, and their responses -----------
def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None, body: Any) -> bytes:
    """A whole request frame (size prefix, header v1 or v2, body) for a kio request entity."""
    buffer = io.BytesIO()
    buffer.write(b"\0\0\0\0")
    encoded_id = None if client_id is None else client_id.encode("utf-8")
    buffer.write(_HEADER_FIXED.pack(api_key, api_version, correlation_id, -1 if encoded_id is None else len(encoded_id)))
    if encoded_id:
        buffer.write(encoded_id)
    if is_flexible(api_key, api_version):
        buffer.write(b"\0")  # request header v2: empty tag section
    entity_writer(type(body))(buffer, body)
    frame = buffer.getbuffer()
    _INT32.pack_into(frame, 0, len(frame) - 4)
    del frame
    return buffer.getvalue()


def read_response(api_key: int, api_version: int, payload: bytes | memoryview) -> tuple[int, Any]:
    """(correlation id, kio response) of a response payload (no size prefix)."""
    (correlation_id,) = _INT32.unpack_from(payload, 0)
    pos = 4
    if response_header_flexible(api_key, api_version):
        pos = skip_tagged_fields(payload, pos)
    return correlation_id, read_body(response_schema(api_key, api_version), payload, pos)


def response_correlation_id(payload: bytes | memoryview) -> int:
    (correlation_id,) = _INT32.unpack_from(payload, 0)
    return correlation_id
